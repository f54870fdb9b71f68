"""`python -m services.web {migrate,serve}`."""
from __future__ import annotations

import argparse
from pathlib import Path

from shared import processes
from shared.migrations import upgrade

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.web")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="upgrade the schema to head")
    serve = commands.add_parser("serve", help="serve HTTP with gunicorn")
    serve.add_argument("--workers", type=int)
    args = parser.parse_args()

    from services.web.settings import Settings

    settings = processes.load_settings(Settings.from_env)
    if args.command == "migrate":
        upgrade(MIGRATIONS, settings.database_url)
    elif args.command == "serve":
        processes.serve("services.web.app:create_app()", settings, args.workers)


if __name__ == "__main__":
    main()
