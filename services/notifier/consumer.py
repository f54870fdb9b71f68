"""The notifier's consumer: events from the bus become mail, each exactly once.

A message is acknowledged only after the SMTP server accepted the mail and the delivery is
recorded. A message whose event id was already delivered is acknowledged without sending again.
Messages that can never become a mail are rejected (dead-lettered where the broker supports it).
"""
from __future__ import annotations

import logging
import time

from kombu import Connection
from kombu.mixins import ConsumerMixin

from services.notifier.messages import MessageRejected, Renderer
from services.notifier.repository import Deliveries
from services.notifier.senders import PermanentSendError, TransientSendError
from shared import bus
from shared.database import utcnow
from shared.events import EnvelopeInvalid, parse_envelope

log = logging.getLogger("threshold.notifier.consumer")


class MailConsumer(ConsumerMixin):
    def __init__(self, connection: Connection, renderer: Renderer, sender, deliveries: Deliveries,
                 prefetch_count: int = 10, retry_delays: tuple[float, ...] = (1, 2, 5, 10, 30)):
        self.connection = connection
        self.renderer = renderer
        self.sender = sender
        self.deliveries = deliveries
        self.prefetch_count = prefetch_count
        self.retry_delays = retry_delays

    def get_consumers(self, Consumer, channel):
        bus.declare_topology(self.connection)
        return [Consumer(queues=bus.notifier_queues(), callbacks=[self.on_message], accept=["json"],
                         prefetch_count=self.prefetch_count)]

    def on_message(self, body, message) -> None:
        try:
            envelope = parse_envelope(body)
        except EnvelopeInvalid as exc:
            log.error("rejecting a message that is not an event: %s", exc)
            message.reject(requeue=False)
            return
        if self.deliveries.delivered(envelope["id"]):
            message.ack()
            return
        try:
            mail = self.renderer.render(envelope)
            self._send_with_retries(mail)
        except (MessageRejected, PermanentSendError) as exc:
            log.error("event %s (%s) cannot be mailed: %s", envelope["id"], envelope["type"], exc)
            message.reject(requeue=False)
            return
        except TransientSendError as exc:
            log.warning("event %s: mail not accepted yet (%s); returning it to the queue", envelope["id"], exc)
            message.requeue()
            return
        self.deliveries.record(envelope["id"], envelope["type"], mail.template, utcnow())
        message.ack()

    def _send_with_retries(self, mail) -> None:
        for attempt, delay in enumerate((*self.retry_delays, None)):
            try:
                self.sender.send(mail.message, mail.event_id, mail.links)
                return
            except TransientSendError:
                if delay is None or self.should_stop:
                    raise
                log.warning("event %s: SMTP not available (attempt %d); retrying in %ss", mail.event_id,
                            attempt + 1, delay)
                time.sleep(delay)
