"""`python -m services.<name> migrate`, and statements on the PostgreSQL server's admin connection."""
from __future__ import annotations

import subprocess
from collections.abc import Mapping
from functools import cache

from support import ROOT
from support.ports import port_open
from support.processes import python_module

POSTGRES_PORT = 5432


@cache
def postgres_available() -> bool:
    """Whether PostgreSQL answers on loopback (asked once per process)."""
    return port_open(POSTGRES_PORT)


def migrate(module: str, env: Mapping[str, str], timeout: float = 300) -> None:
    """Run `python -m <module> migrate` with `env`; RuntimeError with the end of its stderr if it fails."""
    result = subprocess.run(python_module(module, "migrate"), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{module} migrate failed ({result.returncode}):\n{result.stderr[-2000:]}")


def admin_execute(admin_url: str, statement: str) -> None:
    """One statement in autocommit (CREATE and DROP DATABASE need it) on `admin_url`, a SQLAlchemy or libpq URL."""
    import psycopg

    with psycopg.connect(admin_url.replace("+psycopg", "", 1), autocommit=True) as conn:
        conn.execute(statement)
