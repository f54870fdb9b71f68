"""Every service's command line, `python -m services.<name> <command>`: `migrate` and `serve` for all,
each service adding its own commands. Settings are loaded (and logging set up) only once the arguments
are read, so `--help` and a mistyped command need neither; a bad setting is one line and exit 2."""
from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared import processes
from shared.migrations import upgrade


class Commands:
    def __init__(self, service: str, *, serve_help: str = "serve HTTP with gunicorn", workers: int | None = None,
                 migrate_help: str = "upgrade the schema to head"):
        self.service = service
        self.parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
        self._commands = self.parser.add_subparsers(dest="command", required=True)
        self.add("migrate", migrate_help)
        self.add("serve", serve_help).add_argument("--workers", type=int, default=workers)

    def add(self, name: str, help: str) -> argparse.ArgumentParser:
        """A command of the service's own; its arguments go on the parser returned."""
        return self._commands.add_parser(name, help=help)

    def parse(self) -> tuple[argparse.Namespace, Any]:
        """The arguments, then the service's settings."""
        args = self.parser.parse_args()
        settings = importlib.import_module(f"services.{self.service}.settings").Settings
        return args, processes.load_settings(settings.from_env)

    def run(self, args: argparse.Namespace, settings: Any, **own: Callable[[], object]) -> None:
        """Run the command `args` names: `serve`, `migrate` (the schema to head, unless `own` has a
        `migrate` that does more), or one of `own`, keyed by name with `_` for `-`."""
        if args.command == "serve":
            processes.serve(f"services.{self.service}.app:create_app()", settings, args.workers)
            return
        if args.command == "migrate" and "migrate" not in own:
            migrations = Path(importlib.import_module(f"services.{self.service}").__file__ or "").parent
            upgrade(migrations / "migrations", settings.database_url)
            return
        own[args.command.replace("-", "_")]()
