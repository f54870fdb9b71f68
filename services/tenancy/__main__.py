"""`python -m services.tenancy {migrate,serve,relay}`."""
from __future__ import annotations

import threading

from shared import cli, processes


def main() -> None:
    commands = cli.Commands("tenancy")
    commands.add("relay", "publish the outbox to the bus")
    args, settings = commands.parse()
    commands.run(args, settings, relay=lambda: relay(settings))


def relay(settings, stop: threading.Event | None = None) -> None:
    """Publish the outbox until `stop` is set (SIGINT or SIGTERM by default): a process, or a thread of
    `services.embedded_workers`."""
    from services.notifier import subscriptions  # the queues its events feed
    from services.tenancy.models import outbox

    processes.run_relay(settings, outbox, (subscriptions.mail_queues(queue_type=settings.bus_queue_type),), stop)


if __name__ == "__main__":
    main()
