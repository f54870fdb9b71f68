"""Entry points every service shares: migrate, serve (gunicorn), relay (outbox to bus); and the gunicorn
worker every HTTP service runs."""
from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from shared import config, logs
from shared.config import ServerSettings, ServiceSettings

if TYPE_CHECKING:
    from sqlalchemy import Table

    from shared.bus import ConsumerQueues

# gunicorn's master imports this module for ProblemWorker: what only a worker or a relay needs (Flask,
# SQLAlchemy, kombu) is imported where it is used, so each master stays at gunicorn's own size.

GUNICORN_CONF = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"
#: The worker each GUNICORN_WORKER_CLASS names (config.WORKER_CLASSES).
WORKERS = {"gthread": "shared.processes.ProblemThreadWorker", "sync": "shared.processes.ProblemWorker"}


def load_settings(loader: Callable[[Mapping[str, str]], ServiceSettings]) -> Any:
    """An entry point's settings, then its logging; a bad value is one line and exit 2 (config.load_or_exit)."""
    settings = config.load_or_exit(loader)
    logs.configure(settings.log_level, settings.log_format)
    return settings


def serve(app_factory: str, settings: ServiceSettings, workers: int | None = None) -> None:
    """Replace this process with gunicorn serving `app_factory` (e.g. 'services.identity.app:create_app()')."""
    conf = settings.server.conf
    bind = f"{settings.bind_host}:{settings.port}"
    argv = [sys.executable, "-m", "gunicorn", "--config", conf, "--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    os.execv(sys.executable, argv + [app_factory])


def on_starting(server: ServerSettings) -> None:
    """gunicorn's master, starting: with several workers, /metrics must merge every worker's samples."""
    if server.metrics_dir:
        os.makedirs(server.metrics_dir, exist_ok=True)


def before_fork() -> None:
    """gunicorn's master, before it forks a worker. With preload_app the app was built here: the database
    connections it used (the signing keys' first load) are closed, so no worker shares one, and every
    object built so far moves to the collector's permanent generation, which the workers' collections
    never walk: the pages holding them stay shared between the workers instead of being copied into each."""
    from shared import database

    database.close_pools()
    gc.freeze()


def worker_exited(server: ServerSettings, pid: int) -> None:
    if server.metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


# What gunicorn itself answers, before any request reaches the app, by status; anything else is a 500.
SERVER_PROBLEMS = {
    400: ("bad_request", "The request is not valid HTTP."),
    403: ("forbidden", "The request was refused."),
    414: ("uri_too_long", "The request line is longer than the service accepts."),
    417: ("expectation_failed", "The request's Expect header cannot be met."),
    431: ("headers_too_large", "The request has more or longer headers than the service accepts."),
    501: ("not_implemented", "The request's transfer coding is not supported."),
}


class ProblemAnswers:
    """What a gunicorn worker answers for its own refusals (a bad request line, too many or too long
    headers, a URI over its limit): problem+json like every other error, not gunicorn's HTML page."""

    log: Any

    def handle_error(self, req, client, addr, exc):
        from shared import errors

        page = _Page()
        super().handle_error(req, page, addr, exc)  # gunicorn picks the status, logs, writes its page to `page`
        _version, status, reason = page.data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        code, detail = SERVER_PROBLEMS.get(int(status), ("internal_error", "Something went wrong on our side."))
        body = errors.problem(int(status), code, detail).get_data()
        head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {errors.PROBLEM_JSON}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n")
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except Exception:  # the client is gone: nothing to tell it
            self.log.debug("Failed to send error message.")


class ProblemWorker(ProblemAnswers, SyncWorker):
    """gunicorn's sync worker (GUNICORN_WORKER_CLASS=sync): one request per connection, closed after it."""


class ProblemThreadWorker(ProblemAnswers, ThreadWorker):
    """gunicorn's gthread worker (GUNICORN_WORKER_CLASS=gthread, the default): connections kept alive, and
    GUNICORN_THREADS requests served at once, so a sign-in's password hash holds up no other request."""


class _Page:
    """Stands in for the client socket while gunicorn writes its error page, which is kept, not sent."""

    data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


def stop_event_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_relay(settings: ServiceSettings, table: Table, consumers: tuple[ConsumerQueues, ...],
              stop: threading.Event | None = None) -> None:
    """Publish a service's outbox until `stop` is set, by default on SIGINT or SIGTERM (`consumers`: the
    queues it declares before its first publish)."""
    from shared import bus
    from shared.database import make_engine
    from shared.outbox import Relay

    engine = make_engine(settings.database_url)
    relay = Relay(engine, table, bus.connect(settings.broker_url, settings.var_dir), consumers=consumers)
    logging.getLogger("threshold.outbox").info("outbox relay started for %s", engine.url.render_as_string())
    try:
        relay.run(stop or stop_event_on_signals())
    finally:
        engine.dispose()
