"""`python -m services.notifier {migrate,serve,consume}`."""
from __future__ import annotations

import argparse
import contextlib
import os
import threading
from pathlib import Path

from shared import processes
from shared.migrations import upgrade

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.notifier")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="upgrade the schema to head")
    serve = commands.add_parser("serve", help="serve health, readiness and metrics with gunicorn")
    serve.add_argument("--workers", type=int, default=1)
    commands.add_parser("consume", help="consume events and send mail")
    dead = commands.add_parser("dead-letters", help="list or replay messages that could not be mailed")
    dead.add_argument("action", choices=["list", "replay"])
    dead.add_argument("--id", help="replay only the event with this id")
    args = parser.parse_args()

    from services.notifier.settings import Settings

    settings = processes.load_settings(Settings.from_env)
    if args.command == "migrate":
        upgrade(MIGRATIONS, settings.database_url)
    elif args.command == "serve":
        processes.serve("services.notifier.app:create_app()", settings, args.workers)
    elif args.command == "consume":
        consume(settings)
    elif args.command == "dead-letters":
        dead_letters(settings, args.action, args.id)


def dead_letters(settings, action: str, event_id: str | None) -> None:
    from services.notifier import dead_letters as letters
    from services.notifier import subscriptions
    from shared import bus

    connection = bus.connect(settings.broker_url, settings.var_dir)
    queues = subscriptions.mail_queues(settings.retry_delays, settings.bus_queue_type)
    try:
        if action == "list":
            found = letters.list_dead_letters(connection, queues)
            for letter in found:
                print(f"{letter.event_id or '-'}\t{letter.event_type or '-'}\t"
                      f"attempts={letter.attempts}\t{letter.error}")
            print(f"{len(found)} dead letter(s)")
        else:
            print(f"replayed {letters.replay(connection, queues, event_id)} message(s)")
    finally:
        connection.release()


def consume(settings) -> None:
    """The mailer as a process of its own, until SIGINT or SIGTERM."""
    name_consumer_metrics()
    mail_loop(settings, processes.stop_event_on_signals())


def name_consumer_metrics() -> None:
    # The consumer may share PROMETHEUS_MULTIPROC_DIR with the HTTP server's workers while living in
    # another container (its own pid namespace): name its sample files so they cannot collide.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import values

        values.ValueClass = values.MultiProcessValue(process_identifier=lambda: f"consumer{os.getpid()}")


def mail_loop(settings, stop: threading.Event) -> None:
    """Consume events and send mail until `stop` is set (in its own process, or as a thread of
    `services.embedded_workers`); whatever ends the consumer otherwise propagates."""
    from services.notifier.consumer import Heartbeat, MailConsumer
    from services.notifier.messages import Renderer
    from services.notifier.repository import Deliveries, Heartbeats
    from services.notifier.senders import make_sender
    from shared import bus
    from shared.database import make_engine

    class StoppableConsumer(MailConsumer):
        @property
        def should_stop(self) -> bool:
            return stop.is_set()

        @should_stop.setter
        def should_stop(self, value: bool) -> None:
            if value:
                stop.set()

    engine = make_engine(settings.database_url)
    heartbeat = Heartbeat(Heartbeats(engine), settings.heartbeat_interval)
    consumer = StoppableConsumer(
        bus.connect(settings.broker_url, settings.var_dir),
        Renderer(settings.mail_from),
        make_sender(settings.smtp_url, settings.mail_dir, settings.smtp_timeout),
        Deliveries(engine),
        prefetch_count=settings.prefetch_count,
        retry_delays=settings.retry_delays,
        queue_type=settings.bus_queue_type,
        heartbeat=heartbeat,
    )
    try:
        consumer.run()
    finally:
        consumer.close()
        with contextlib.suppress(Exception):  # a broken connection may fail to close; it is dropped anyway
            consumer.connection.release()
        heartbeat.stop()
        engine.dispose()


if __name__ == "__main__":
    main()
