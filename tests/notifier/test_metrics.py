"""The notifier's /metrics: the consumer's counters and the queue depths read from the broker."""
from __future__ import annotations

import re
import time

from services.notifier.app import create_app
from services.notifier.settings import Settings
from tests.notifier.test_mail import (  # noqa: F401
    deliveries,
    events_bus,
    notifier_db,
    smtp_sink,
    start_consumer,
    unique_address,
    verification_event,
    wait_mail,
)


def sample(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_deliveries_and_show_queue_depths(events_bus, start_consumer, smtp_sink, deliveries,
                                                        notifier_db, tmp_path):
    app = create_app(Settings.from_env({"NOTIFIER_DATABASE_URL": notifier_db, "BROKER_URL": "memory://",
                                        "VAR_DIR": str(tmp_path)}))
    client = app.test_client()
    before = client.get("/metrics").get_data(as_text=True)

    # Two events wait in the queue before any consumer runs: that is the consumer lag.
    first, second = unique_address("m1"), unique_address("m2")
    events_bus.publish(verification_event(first))
    events_bus.publish(verification_event(second))
    waiting = client.get("/metrics").get_data(as_text=True)
    assert sample(waiting, "threshold_notifier_queue_messages", '{queue="notifier.mail"}') == 2

    consumer = start_consumer()
    wait_mail(smtp_sink, consumer, second)
    delivered = "threshold_notifier_mail_delivered_total", '{template="verification"}'
    deadline = time.monotonic() + 10
    while True:  # the counter moves just after the mail is recorded: poll, bounded
        after = client.get("/metrics").get_data(as_text=True)
        if sample(after, *delivered) - sample(before, *delivered) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sample(after, *delivered) - sample(before, *delivered) == 2
    assert sample(after, "threshold_notifier_queue_messages", '{queue="notifier.mail"}') == 0
    assert 'queue="notifier.mail.dead"' in after
