"""Notifier's HTTP app (health, readiness, metrics): `gunicorn 'services.notifier.app:create_app()'`."""
from __future__ import annotations

import os

from flask import Flask

from services.notifier import subscriptions
from services.notifier.metrics import QueueDepthCollector
from services.notifier.repository import Heartbeats
from services.notifier.settings import Settings
from shared import bus
from shared.database import make_engine, ping, utcnow
from shared.errors import ErrorMap
from shared.service_app import broker_check, build_app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env(os.environ)
    engine = make_engine(settings.database_url)
    connect = lambda: bus.connect(settings.broker_url, settings.var_dir)  # noqa: E731
    heartbeats = Heartbeats(engine)
    queues = subscriptions.mail_queues(settings.retry_delays, settings.bus_queue_type)
    app, _api = build_app("notifier", "Threshold notifier", "Turns events into mail.", ErrorMap({}), readiness={
        "database": lambda: ping(engine),
        "bus": broker_check(connect),
        # The consumer is another process (another container): its heartbeat row says it is at work.
        "consumer": lambda: heartbeats.check(utcnow(), settings.consumer_stale_after),
    }, collectors=[QueueDepthCollector(connect, queues)],
        settings=settings)
    return app
