"""Entry points every service shares: migrate, serve (gunicorn), relay (outbox to bus)."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from sqlalchemy import Table

from shared import bus, logs
from shared.database import make_engine
from shared.outbox import Relay

GUNICORN_CONF = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"


def configure_logging() -> None:
    logs.configure()


def serve(app_factory: str, port: int, workers: int | None = None) -> None:
    """Replace this process with gunicorn serving `app_factory` (e.g. 'services.identity.app:create_app()')."""
    conf = os.environ.get("GUNICORN_CONF", str(GUNICORN_CONF))
    argv = [sys.executable, "-m", "gunicorn", "--config", conf, "--bind", f"{os.environ.get('BIND_HOST', '127.0.0.1')}:{port}"]
    if workers:
        argv += ["--workers", str(workers)]
    os.execv(sys.executable, argv + [app_factory])


def stop_event_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_relay(database_url: str, table: Table, broker_url: str, var_dir: Path) -> None:
    """Publish a service's outbox until SIGINT or SIGTERM."""
    engine = make_engine(database_url)
    relay = Relay(engine, table, bus.connect(broker_url, var_dir))
    logging.getLogger("threshold.outbox").info("outbox relay started for %s", engine.url.render_as_string())
    relay.run(stop_event_on_signals())
