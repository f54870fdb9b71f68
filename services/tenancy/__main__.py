"""`python -m services.tenancy {migrate,serve,relay}`."""
from __future__ import annotations

import argparse
from pathlib import Path

from shared import processes
from shared.migrations import upgrade

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.tenancy")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="upgrade the schema to head")
    serve = commands.add_parser("serve", help="serve HTTP with gunicorn")
    serve.add_argument("--workers", type=int)
    commands.add_parser("relay", help="publish the outbox to the bus")
    args = parser.parse_args()

    from services.tenancy.settings import Settings

    settings = processes.load_settings(Settings.from_env)
    if args.command == "migrate":
        upgrade(MIGRATIONS, settings.database_url)
    elif args.command == "serve":
        processes.serve("services.tenancy.app:create_app()", settings, args.workers)
    elif args.command == "relay":
        from services.notifier import subscriptions  # the queues its events feed
        from services.tenancy.models import outbox

        processes.run_relay(settings, outbox, (subscriptions.mail_queues(queue_type=settings.bus_queue_type),))


if __name__ == "__main__":
    main()
