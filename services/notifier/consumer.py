"""The notifier's consumer: events from the bus become mail, each exactly once.

A message is acknowledged only after the SMTP server accepted the mail and the delivery is
recorded; a redelivered event whose id is recorded is acknowledged without a second mail. Transient
failures go to a retry queue with a growing delay; what can never become a mail (not JSON, not an
event, a bad recipient, an SMTP 5xx) and what failed every retry goes to the dead-letter queue, and
later messages keep flowing. Republishing happens before the ack, on a separate connection that
waits for the broker's confirm, so no step can lose a message.

A database error never ends the consumer: before the send the message is put back on the queue, and
after the send the delivery is recorded again until it is; either way the consumer waits (1 s,
doubling up to 30 s) and the pool makes fresh connections. While it consumes, the consumer refreshes
its heartbeat row, which the notifier's /readyz reads from another process.
"""
from __future__ import annotations

import logging
import os
import socket
import time

from kombu import Connection, Producer
from kombu.mixins import ConsumerMixin
from sqlalchemy.exc import SQLAlchemyError

from services.notifier import metrics, subscriptions
from services.notifier.messages import MessageRejected, Renderer
from services.notifier.repository import BACKING_OFF, CONSUMING, Deliveries, Heartbeats
from services.notifier.senders import PermanentSendError, TransientSendError
from shared import bus
from shared.database import utcnow
from shared.events import EnvelopeInvalid, parse_envelope

log = logging.getLogger("threshold.notifier.consumer")
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0


class Heartbeat:
    """This consumer's row in `consumer_heartbeats`: written when its state changes, and at least every
    `interval` seconds while it stays the same. A write that fails is logged and tried an interval later."""

    def __init__(self, heartbeats: Heartbeats, interval: float, consumer_id: str | None = None):
        self.heartbeats = heartbeats
        self.interval = interval
        self.consumer_id = consumer_id or f"{socket.gethostname()}:{os.getpid()}"
        self._state: str | None = None
        self._tried_at = float("-inf")

    def __call__(self, state: str, detail: str = "") -> None:
        if state == self._state and time.monotonic() - self._tried_at < self.interval:
            return
        self._state, self._tried_at = state, time.monotonic()
        try:
            self.heartbeats.beat(self.consumer_id, state, detail, utcnow())
        except SQLAlchemyError as exc:  # the row goes stale, which /readyz reports
            log.warning("consumer heartbeat not written (%s)", type(exc).__name__)

    def stop(self) -> None:
        try:
            self.heartbeats.forget(self.consumer_id)
        except SQLAlchemyError as exc:
            log.warning("consumer heartbeat not removed (%s); it goes stale instead", type(exc).__name__)


class MailConsumer(ConsumerMixin):
    def __init__(self, connection: Connection, renderer: Renderer, sender, deliveries: Deliveries,
                 prefetch_count: int = 10, retry_delays: tuple[float, ...] = subscriptions.RETRY_DELAYS,
                 queue_type: str = "classic", heartbeat: Heartbeat | None = None):
        self.connection = connection
        self.renderer = renderer
        self.sender = sender
        self.deliveries = deliveries
        self.heartbeat = heartbeat or (lambda state, detail="": None)
        self.backoff = FIRST_BACKOFF
        self.prefetch_count = prefetch_count
        self.queues = subscriptions.mail_queues(tuple(retry_delays), queue_type)
        # RabbitMQ waits out retry delays in TTL queues; the embedded transports cannot, so there the
        # consumer waits itself before putting the message back.
        self.broker_delays = bus.supports_dead_lettering(connection)
        self._publisher = connection.clone()
        self._producer: Producer | None = None

    def get_consumers(self, Consumer, channel):
        bus.declare_topology(channel, (self.queues,))
        return [Consumer(queues=[self.queues.main()], callbacks=[self.on_message], accept=["json"],
                         prefetch_count=self.prefetch_count, on_decode_error=self.on_decode_error)]

    def on_consume_ready(self, connection, channel, consumers, **kwargs) -> None:
        self.heartbeat(CONSUMING)

    def on_iteration(self) -> None:
        self.heartbeat(CONSUMING)

    def on_connection_error(self, exc, interval) -> None:
        super().on_connection_error(exc, interval)
        self.heartbeat(BACKING_OFF, f"broker: {type(exc).__name__}")

    def on_decode_error(self, message, exc) -> None:
        self._dead_letter(message, f"undecodable body ({type(exc).__name__})")

    def on_message(self, body, message) -> None:
        try:
            envelope = parse_envelope(body)
        except EnvelopeInvalid as exc:
            self._dead_letter(message, f"not an event: {exc}")
            return
        try:
            delivered = self.deliveries.delivered(envelope["id"])
        except SQLAlchemyError as exc:  # nothing sent yet: the message goes back, we wait and try again
            message.requeue()
            self._back_off(exc)
            return
        self.backoff = FIRST_BACKOFF
        if delivered:
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
        if not self._record(envelope, mail.template):
            return  # stopping: left unacknowledged, so the broker delivers it again
        metrics.DELIVERED.labels(mail.template).inc()
        message.ack()
        log.info("mail delivered", extra={"event": "mail_delivered", "event_id": envelope["id"],
                                          "template": mail.template, "request_id": envelope.get("requestid")})

    def _record(self, envelope: dict, template: str) -> bool:
        """Record a sent mail, trying until the database takes it: a message put back now would be
        mailed twice. False only when asked to stop first."""
        while True:
            try:
                self.deliveries.record(envelope["id"], envelope["type"], template, utcnow())
            except SQLAlchemyError as exc:
                if self.should_stop:
                    log.error("event %s: mailed but not recorded; stopping (%s)", envelope["id"], type(exc).__name__)
                    return False
                self._back_off(exc)
                continue
            self.backoff = FIRST_BACKOFF
            return True

    def _back_off(self, exc: SQLAlchemyError) -> None:
        reason = f"database: {type(exc).__name__}"
        log.warning("notifier database error (%s); backing off %gs", reason, self.backoff)
        self.heartbeat(BACKING_OFF, reason)
        self._wait(self.backoff, BACKING_OFF, reason)
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)

    def _retry(self, message, envelope: dict, reason: str) -> None:
        attempt = int((message.headers or {}).get(bus.ATTEMPT_HEADER, 0))
        if attempt >= len(self.queues.retry_delays):
            self._dead_letter(message, f"gave up after {attempt} retries: {reason}")
            return
        delay = self.queues.retry_delays[attempt]
        log.warning("event %s: mail not accepted (%s); retry %d in %gs", envelope["id"], reason, attempt + 1, delay)
        if self.broker_delays:
            self._republish(message, bus.RETRY_EXCHANGE.name, self.queues.retry_routing_key(attempt),
                            attempt + 1, reason)
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

    def _wait(self, seconds: float, state: str = CONSUMING, detail: str = "") -> None:
        """Wait out a retry delay or a backoff, but stop early when asked to stop (the message is then
        redelivered). The heartbeat goes on meanwhile: waiting out a retry delay is consuming too."""
        deadline = time.monotonic() + seconds
        while not self.should_stop and time.monotonic() < deadline:
            self.heartbeat(state, detail)
            time.sleep(min(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        self._publisher.release()
