"""The benchmark's databases: a SQLite file in a fresh VAR_DIR, or a throwaway PostgreSQL database."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from support.databases import admin_execute

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _admin(statement: str) -> None:
    admin_execute(POSTGRES_ADMIN_URL, statement)


@contextlib.contextmanager
def fresh_postgres(label: str = "") -> Iterator[str]:
    """A new empty database for one run, dropped afterwards whatever happens."""
    name = f"threshold_bench_{label + '_' if label else ''}{os.getpid()}"
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _admin(f"CREATE DATABASE {name}")
    try:
        yield "postgresql+psycopg" + POSTGRES_ADMIN_URL[len("postgresql"):].rsplit("/", 1)[0] + "/" + name
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
