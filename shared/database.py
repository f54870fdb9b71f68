"""Engines and sessions. Nothing is connected at import time: services call `make_engine`."""
from __future__ import annotations

import os
import sqlite3
import time
import uuid
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event, text
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import sessionmaker


class ImmediateSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, with every transaction opened by BEGIN IMMEDIATE.

    pysqlite's own transaction handling defers BEGIN; taking the write lock at BEGIN instead keeps the
    read-then-write transactions of two processes from deadlocking into "database is locked". Done in
    the dialect rather than in a `begin` event listener: an engine with any event listener runs every
    statement through SQLAlchemy's event dispatch, which cost a third of a short read.
    """

    supports_statement_cache = True  # it compiles SQL exactly as its parent does

    def do_begin(self, dbapi_connection) -> None:
        if dbapi_connection.isolation_level is not None:  # None: AUTOCOMMIT was asked for
            dbapi_connection.execute("BEGIN IMMEDIATE")


#: Every engine of this process, so that a fork can leave none of their connections shared (close_pools).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def close_pools() -> None:
    """Close the pooled connections of every engine of this process (they reconnect on next use).

    gunicorn's master calls it before it forks a worker; a forked child also drops, without closing,
    whatever it inherited (at-fork hook below), since closing would end the parent's connection too."""
    for engine in list(_ENGINES):
        engine.dispose()


def _drop_inherited_pools() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_drop_inherited_pools)


def make_engine(url: str, pool_size: int = 5, autocommit: bool = False, ping_after_idle: float = 10.0) -> Engine:
    """One engine per process (and, with `autocommit=True`, a second one for statements that stand alone).

    SQLite gets WAL and a busy timeout so several processes can share a file. An autocommit engine runs
    each statement as its own transaction: a single read or upsert then costs no BEGIN and COMMIT (round
    trips on PostgreSQL) and takes no write lock on SQLite. Anything that must see or change several
    rows at once belongs in a unit of work on the ordinary engine. PostgreSQL connections that sat in
    the pool for `ping_after_idle` seconds are checked before use.
    """
    # An autocommit connection has no transaction to roll back when it returns to the pool: skipping
    # that reset saves a driver call per checkout (a hundred microseconds on PostgreSQL).
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None} if autocommit else {}
    options["hide_parameters"] = True
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        registry.register("sqlite.threshold", __name__, ImmediateSQLiteDialect.__name__)
        engine = create_engine(make_url(url).set(drivername="sqlite+threshold"),
                               connect_args={"timeout": 30, "check_same_thread": False}, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        _ENGINES.add(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=10, **options)
    _ping_after_idle(engine, ping_after_idle)
    _ENGINES.add(engine)
    return engine


def _ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use when it sat idle for `idle_seconds` or more.

    A database restart, a failover or an idle timeout kills connections while they wait in the pool;
    such a connection is found before a request uses it and replaced (the pool retries the checkout).
    One that came back a moment ago has just worked, so it goes out unchecked: `pool_pre_ping` would
    spend a round trip on every checkout, a third of a short request on PostgreSQL.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            if not getattr(dbapi_connection, "autocommit", True):
                dbapi_connection.rollback()  # the ping opened a transaction; the checkout owner begins its own
        except Exception as error:  # whatever broke, this connection is no use: the pool makes a new one
            raise DisconnectionError(f"pooled connection failed its ping: {type(error).__name__}") from error


def is_unique_violation(error: IntegrityError) -> bool:
    """Whether the database refused a write because a unique index already holds its key."""
    orig = error.orig
    return (getattr(orig, "sqlstate", None) == "23505"
            or getattr(orig, "sqlite_errorname", None) in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"))


def describe_error(error: BaseException | None) -> str | None:
    """A line naming the database error in `error` or its chain, with no value in it; None when the
    chain holds none. A database error's own text can quote what was written (psycopg's
    `DETAIL: Key (email)=(…)` or `Failing row contains (…)`, a trigger's message), so a log gets this
    line instead: the driver's error class, its code (SQLSTATE), constraint and statement (placeholders only)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (StatementError, psycopg.Error, sqlite3.Error)):
            orig = getattr(error, "orig", None) or error
            diag = getattr(orig, "diag", None)
            parts = [f"{type(error).__name__} ({type(orig).__module__}.{type(orig).__name__})"]
            parts += [f"{label} {value}" for label, value in (
                ("code", getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)),
                ("constraint", getattr(diag, "constraint_name", None)),
                ("in", getattr(error, "statement", None))) if value]
            return ", ".join(parts)
        error = error.__cause__ or error.__context__
    return None


# SQLSTATEs of a database that is away rather than refusing a statement: connection exceptions (class 08),
# an administrator's shutdown or a server still starting (57P01-57P03), too many connections (53300).
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def is_unavailable(error: BaseException | None) -> bool:
    """Whether `error` (or its chain) says the database could not be reached or dropped the connection:
    a fault that passes without a restart, so the caller is told to try again (503), not a bug (500)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (DisconnectionError, PoolTimeout)):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, psycopg.OperationalError):
            sqlstate = error.sqlstate or ""
            return not sqlstate or sqlstate.startswith(UNAVAILABLE_SQLSTATES)
        if isinstance(error, sqlite3.OperationalError):
            return getattr(error, "sqlite_errorname", None) == "SQLITE_CANTOPEN"
        error = error.__cause__ or error.__context__
    return False


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

