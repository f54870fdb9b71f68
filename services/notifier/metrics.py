"""The notifier's metrics: counters from the consumer, queue depths read from the broker at scrape time."""
from __future__ import annotations

import logging
from collections.abc import Callable

from kombu import Connection
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from shared.bus import ConsumerQueues

log = logging.getLogger("threshold.notifier.metrics")

DELIVERED = Counter("threshold_notifier_mail_delivered_total", "Mails accepted by the SMTP server (or written)",
                    ["template"])
DUPLICATES = Counter("threshold_notifier_duplicates_skipped_total", "Redelivered events whose mail was already sent")
RETRIED = Counter("threshold_notifier_mail_retried_total", "Mails sent to a retry queue after a transient failure")
DEAD_LETTERED = Counter("threshold_notifier_dead_lettered_total", "Messages moved to the dead-letter queue",
                        ["reason"])


class QueueDepthCollector:
    """`threshold_notifier_queue_messages{queue=…}`: ready messages per queue (the main queue's is the
    consumer lag), read with a passive declare when Prometheus scrapes."""

    def __init__(self, connect: Callable[[], Connection], queues: ConsumerQueues):
        self.connect = connect
        self.queues = queues

    def collect(self):
        gauge = GaugeMetricFamily("threshold_notifier_queue_messages", "Messages waiting in each notifier queue",
                                  labels=["queue"])
        connection = self.connect()
        try:
            channel = connection.default_channel
            for queue in self.queues.all():
                try:
                    _name, messages, _consumers = channel.queue_declare(queue.name, passive=True)
                except Exception:  # not declared yet, or the broker is away: report nothing for it
                    continue
                gauge.add_metric([queue.name], messages)
        except Exception as exc:
            log.warning("queue depths unavailable: %s", exc)
        finally:
            connection.release()
        yield gauge
