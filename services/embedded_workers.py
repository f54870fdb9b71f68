"""`python -m services.embedded_workers`: the background loops of the embedded default, as threads of one process.

Identity's and tenancy's outbox relays and the notifier's mailer (consumer) each take 30-70 MB as a
process of their own, most of it the same libraries. With SQLite files and kombu's filesystem bus
(`make run`'s default) nothing ties a loop to a process: they run here as three threads. A loop that
raises, or returns before it was asked to stop, is started again as `services.run` starts a process
again: after 1 s, doubling up to 30 s while it keeps failing, back to 1 s once it ran a minute; each
failure and restart is logged. SIGINT or SIGTERM stops every loop, and the process exits once they
have. A process that dies as a whole is `services.run`'s to restart.

With PostgreSQL or RabbitMQ configured (and in compose and Kubernetes) each loop stays a process of its
own (`python -m services.identity relay`, `... tenancy relay`, `... notifier consume`), so each scales and
restarts on its own; `services.run` picks the layout with `shares_one_process`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("threshold.workers")

FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0  # seconds up after which a loop's next failure counts as a first one
STOP_TIMEOUT = 20.0  # seconds to wait for the loops once asked to stop


def restart_delay(previous: float | None, uptime: float) -> float:
    """How long to wait before starting a loop (or a process) again that ended after `uptime` seconds."""
    if previous is None or uptime >= STABLE_AFTER:
        return FIRST_RESTART_DELAY
    return min(previous * 2, MAX_RESTART_DELAY)


def shares_one_process(database_urls: list[str], broker_url: str) -> bool:
    """True for the embedded default: every database a SQLite file and the bus kombu's filesystem transport.
    A server on either side (PostgreSQL, RabbitMQ) keeps each loop in a process of its own."""
    return broker_url.startswith("filesystem") and all(url.startswith("sqlite") for url in database_urls)


@dataclass
class Loop:
    """One background loop: `run(stop)` works until `stop` is set; raising or returning early is a failure."""

    name: str
    run: Callable[[threading.Event], None]


def supervise(loop: Loop, stop: threading.Event) -> None:
    """Run `loop` until `stop` is set, starting it again after each failure with a growing delay."""
    delay: float | None = None
    while not stop.is_set():
        started = time.monotonic()
        try:
            loop.run(stop)
        except Exception as exc:  # any failure of one loop: log it, keep the others going, start it again
            reason = f"{type(exc).__name__}: {exc}"
            log.exception("%s failed", loop.name)
        else:
            if stop.is_set():
                return
            reason = "it returned"
        delay = restart_delay(delay, time.monotonic() - started)
        log.warning("%s stopped (%s); restarting in %gs", loop.name, reason, delay)
        if stop.wait(delay):
            return
        log.warning("restarting %s", loop.name)


def run(loops: list[Loop], stop: threading.Event, stop_timeout: float = STOP_TIMEOUT) -> None:
    """Each loop in a thread of its own until `stop` is set, then wait up to `stop_timeout` for them all."""
    threads = [threading.Thread(target=supervise, args=(loop, stop), name=loop.name, daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    stop.wait()
    deadline = time.monotonic() + stop_timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.error("%s did not stop within %gs", thread.name, stop_timeout)


def embedded_loops(notifier) -> list[Loop]:
    """The relays of identity and tenancy and the notifier's mailer, each with its own service's settings."""
    from services.identity import __main__ as identity_commands
    from services.identity.settings import Settings as IdentitySettings
    from services.notifier.__main__ import mail_loop
    from services.tenancy import __main__ as tenancy_commands
    from services.tenancy.settings import Settings as TenancySettings
    from shared import config

    identity = config.load_or_exit(IdentitySettings.from_env)
    tenancy = config.load_or_exit(TenancySettings.from_env)
    return [Loop("identity relay", lambda stop: identity_commands.relay(identity, stop)),
            Loop("tenancy relay", lambda stop: tenancy_commands.relay(tenancy, stop)),
            Loop("mailer", lambda stop: mail_loop(notifier, stop))]


def main() -> None:
    from services.notifier.__main__ import name_consumer_metrics
    from services.notifier.settings import Settings as NotifierSettings
    from shared import processes

    notifier = processes.load_settings(NotifierSettings.from_env)  # and the process's logging
    name_consumer_metrics()
    stop = processes.stop_event_on_signals()
    loops = embedded_loops(notifier)
    log.info("running %s as threads of one process", ", ".join(loop.name for loop in loops))
    run(loops, stop)


if __name__ == "__main__":
    main()
