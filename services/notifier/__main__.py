"""`python -m services.notifier {migrate,serve,consume}`."""
from __future__ import annotations

import contextlib
import os
import threading

from shared import cli, processes


def main() -> None:
    commands = cli.Commands("notifier", serve_help="serve health, readiness and metrics with gunicorn", workers=1)
    commands.add("consume", "consume events and send mail")
    dead = commands.add("dead-letters", "list or replay messages that could not be mailed")
    dead.add_argument("action", choices=["list", "replay"])
    dead.add_argument("--id", help="replay only the event with this id")
    args, settings = commands.parse()
    commands.run(args, settings, consume=lambda: consume(settings),
                 dead_letters=lambda: dead_letters(settings, args.action, args.id))


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
