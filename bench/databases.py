"""The benchmark's databases: a SQLite file in a fresh VAR_DIR, or a throwaway PostgreSQL database."""
from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


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
