"""`python -m services.web {migrate,serve}`."""
from __future__ import annotations

from shared import cli


def main() -> None:
    commands = cli.Commands("web")
    args, settings = commands.parse()
    commands.run(args, settings)


if __name__ == "__main__":
    main()
