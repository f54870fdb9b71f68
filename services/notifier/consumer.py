"""The notifier's consumer: events from the bus become mail, each exactly once.

A message is acknowledged only after the SMTP server accepted the mail and the delivery is
recorded; a redelivered event whose id is recorded is acknowledged without a second mail. Transient
failures go to a retry queue with a growing delay; what can never become a mail (not JSON, not an
event, a bad recipient, an SMTP 5xx) and what failed every retry goes to the dead-letter queue, and
later messages keep flowing. Republishing happens before the ack, on a separate connection that
waits for the broker's confirm, so no step can lose a message.
"""
from __future__ import annotations

import logging
import time

from kombu import Connection, Producer
from kombu.mixins import ConsumerMixin

from services.notifier import metrics
from services.notifier.messages import MessageRejected, Renderer
from services.notifier.repository import Deliveries
from services.notifier.senders import PermanentSendError, TransientSendError
from shared import bus
from shared.database import utcnow
from shared.events import EnvelopeInvalid, parse_envelope

log = logging.getLogger("threshold.notifier.consumer")


class MailConsumer(ConsumerMixin):
    def __init__(self, connection: Connection, renderer: Renderer, sender, deliveries: Deliveries,
                 prefetch_count: int = 10, retry_delays: tuple[float, ...] = bus.NOTIFIER_RETRY_DELAYS):
        self.connection = connection
        self.renderer = renderer
        self.sender = sender
        self.deliveries = deliveries
        self.prefetch_count = prefetch_count
        self.queues = bus.notifier(tuple(retry_delays))
        # RabbitMQ waits out retry delays in TTL queues; the embedded transports cannot, so there the
        # consumer waits itself before putting the message back.
        self.broker_delays = bus.supports_dead_lettering(connection)
        self._publisher = connection.clone()
        self._producer: Producer | None = None

    def get_consumers(self, Consumer, channel):
        bus.declare_topology(channel, (self.queues,))
        return [Consumer(queues=[self.queues.main()], callbacks=[self.on_message], accept=["json"],
                         prefetch_count=self.prefetch_count, on_decode_error=self.on_decode_error)]

    def on_decode_error(self, message, exc) -> None:
        self._dead_letter(message, f"undecodable body ({type(exc).__name__})")

    def on_message(self, body, message) -> None:
        try:
            envelope = parse_envelope(body)
        except EnvelopeInvalid as exc:
            self._dead_letter(message, f"not an event: {exc}")
            return
        if self.deliveries.delivered(envelope["id"]):
            metrics.DUPLICATES.inc()
            message.ack()
            return
        try:
            mail = self.renderer.render(envelope)
            self.sender.send(mail.message, mail.event_id, mail.links)
        except (MessageRejected, PermanentSendError) as exc:
            self._dead_letter(message, f"{envelope['type']}: {exc}")
            return
        except TransientSendError as exc:
            self._retry(message, envelope, str(exc))
            return
        self.deliveries.record(envelope["id"], envelope["type"], mail.template, utcnow())
        metrics.DELIVERED.labels(mail.template).inc()
        message.ack()
        log.info("mail delivered", extra={"event": "mail_delivered", "event_id": envelope["id"],
                                          "template": mail.template, "request_id": envelope.get("requestid")})

    def _retry(self, message, envelope: dict, reason: str) -> None:
        attempt = int((message.headers or {}).get(bus.ATTEMPT_HEADER, 0))
        if attempt >= len(self.queues.retry_delays):
            self._dead_letter(message, f"gave up after {attempt} retries: {reason}")
            return
        delay = self.queues.retry_delays[attempt]
        log.warning("event %s: mail not accepted (%s); retry %d in %gs", envelope["id"], reason, attempt + 1, delay)
        if self.broker_delays:
            self._republish(message, bus.RETRY_EXCHANGE.name, self.queues.retry_routing_key(attempt), attempt + 1, reason)
        else:
            self._wait(delay)
            self._republish(message, "", self.queues.name, attempt + 1, reason)
        metrics.RETRIED.inc()
        message.ack()

    def _dead_letter(self, message, reason: str) -> None:
        log.error("dead-lettering a message: %s", reason)
        attempt = int((message.headers or {}).get(bus.ATTEMPT_HEADER, 0))
        self._republish(message, bus.DEAD_LETTER_EXCHANGE.name, self.queues.dead_routing_key, attempt, reason)
        metrics.DEAD_LETTERED.labels(reason.split(":", 1)[0][:40]).inc()
        message.ack()

    def _republish(self, message, exchange: str, routing_key: str, attempt: int, reason: str) -> None:
        headers = dict(message.headers or {})
        headers.update({bus.ATTEMPT_HEADER: attempt, bus.ERROR_HEADER: reason[:500]})
        body = message.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        self._producer_for_republish().publish(
            body, exchange=exchange, routing_key=routing_key, headers=headers, delivery_mode=2,
            content_type=message.content_type or "application/octet-stream",
            content_encoding=message.content_encoding or "binary", retry=True,
            retry_policy={"max_retries": 5, "interval_start": 0.5, "interval_step": 1, "interval_max": 5},
        )

    def _producer_for_republish(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._publisher.default_channel)
        return self._producer

    def _wait(self, seconds: float) -> None:
        """Wait out a retry delay, but stop early when asked to stop (the message is then redelivered)."""
        deadline = time.monotonic() + seconds
        while not self.should_stop and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        self._publisher.release()
