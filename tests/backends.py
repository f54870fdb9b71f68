"""Where the real PostgreSQL and RabbitMQ are, and fresh databases for each test.

Locally a test that needs PostgreSQL or RabbitMQ skips when the server does not answer on loopback;
with CI=true it fails instead, so CI can never go green on skipped database or bus tests.
"""
from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest

from support import databases as support_databases

CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
_counter = itertools.count()


def require(available: object, what: str, missing: str = "does not answer on loopback") -> None:
    """Go on when `available` is true; else skip, and with CI=true fail: in CI every test must run."""
    if available:
        return
    if CI:
        pytest.fail(f"{what} {missing} and CI=true: this test must run")
    pytest.skip(f"{what} {missing}")


def migrate(module: str, url: str) -> None:
    """Migrate the database at `url` of `module` (services.<name>) in test mode."""
    env = dict(os.environ, **{f"{module.rsplit('.', 1)[1].upper()}_DATABASE_URL": url, "APP_ENV": "test"})
    support_databases.migrate(module, env)


def _admin_execute(statement: str) -> None:
    support_databases.admin_execute(POSTGRES_ADMIN_URL, statement)


class DatabaseFactory:
    """Fresh migrated databases: one template per service per test run.

    SQLite: the template file is copied for each test. PostgreSQL: creating and dropping a database
    per test costs seconds (each asks for a checkpoint), so each service has one working database
    per run that is reset between tests instead: leftover sessions are ended, every table is
    emptied and the rows the migration seeded (signing key, service clients) are put back. A test
    that needs a second database of the same service at once gets a real copy of the template.
    """

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.templates: dict[tuple[str, str], str] = {}
        self.created: list[str] = []
        self.run_id = f"{os.getpid()}"
        self.working: dict[str, str] = {}  # module -> the reusable PostgreSQL database
        self.seeded: dict[str, dict[str, tuple[list[str], list[tuple]]]] = {}
        self.in_use: set[str] = set()

    def _template(self, backend: str, module: str) -> str:
        key = (backend, module)
        if key not in self.templates:
            service = module.rsplit(".", 1)[1]
            if backend == "sqlite":
                path = self.workdir / f"template-{service}.db"
                migrate(module, f"sqlite:///{path}")
                self.templates[key] = str(path)
            else:
                name = f"thr_tpl_{service}_{self.run_id}"
                _admin_execute(f"DROP DATABASE IF EXISTS {name}")
                _admin_execute(f"CREATE DATABASE {name}")
                self.created.append(name)
                migrate(module, _pg_url(name))
                self.templates[key] = name
                working = f"thr_w_{service}_{self.run_id}"
                _admin_execute(f"DROP DATABASE IF EXISTS {working}")
                _admin_execute(f"CREATE DATABASE {working} TEMPLATE {name}")
                self.created.append(working)
                self.working[module] = working
                self.seeded[module] = _seeded_rows(working)
        return self.templates[key]

    def fresh(self, backend: str, module: str, disposable: bool = False) -> str:
        """`disposable=True`: a real copy even on PostgreSQL, for a test that makes it go away."""
        template = self._template(backend, module)
        number = next(_counter)
        if backend == "sqlite":
            path = self.workdir / f"db-{number}.db"
            shutil.copyfile(template, path)
            return f"sqlite:///{path}"
        working = self.working[module]
        if working not in self.in_use and not disposable:
            _reset(working, self.seeded[module])
            self.in_use.add(working)
            return _pg_url(working)
        name = f"thr_t{number}_{self.run_id}"
        _admin_execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        self.created.append(name)
        return _pg_url(name)

    def drop(self, url: str) -> None:
        if url.startswith("postgresql"):
            name = url.rsplit("/", 1)[1]
            if name in self.in_use:
                self.in_use.discard(name)  # reset when it is next handed out
                return
            _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(reversed(self.created)):
            _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.created.clear()


def _tables(conn) -> list[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables "
                        "WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
    return sorted(row[0] for row in rows)


def _seeded_rows(name: str) -> dict[str, tuple[list[str], list[tuple]]]:
    """What the migration put in each table of a fresh database (to restore after emptying it)."""
    import psycopg

    seeded = {}
    with psycopg.connect(_pg_url(name).replace("+psycopg", "")) as conn:
        for table in _tables(conn):
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            rows = cursor.fetchall()
            if rows:
                seeded[table] = ([column.name for column in cursor.description], rows)
    return seeded


def _reset(name: str, seeded: dict[str, tuple[list[str], list[tuple]]]) -> None:
    import psycopg

    # End whatever an earlier test left connected (an app's pool, a killed process's session).
    _admin_execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    with psycopg.connect(_pg_url(name).replace("+psycopg", "")) as conn:
        tables = _tables(conn)
        # A test may have added triggers or functions of its own (fault injection): drop them too.
        for (trigger, table) in conn.execute("SELECT tgname, tgrelid::regclass::text FROM pg_trigger "
                                             "WHERE NOT tgisinternal").fetchall():
            conn.execute(f'DROP TRIGGER IF EXISTS "{trigger}" ON {table}')
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
        for table, (columns, rows) in seeded.items():
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join(["%s"] * len(columns))
            conn.cursor().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)


def refuse_connections(url: str) -> None:
    """The database goes away as in a restart or failover: new connections refused, open ones ended."""
    name = url.rsplit("/", 1)[1]
    _admin_execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    _admin_execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


def allow_connections(url: str) -> None:
    _admin_execute(f"ALTER DATABASE {url.rsplit('/', 1)[1]} ALLOW_CONNECTIONS true")


def _pg_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
