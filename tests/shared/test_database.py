"""Engines: pooled PostgreSQL connections that died while idle are replaced before use, and the
autocommit engine runs each statement as its own transaction."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import bindparam, exc, select, text
from sqlalchemy.engine import make_url

from services.identity.models import throttles
from shared.database import make_engine, utcnow
from shared.statements import Precompiled
from support.databases import postgres_available
from tests import backends


@pytest.fixture
def postgres_url(databases):
    backends.require(postgres_available(), "PostgreSQL")
    url = databases.fresh("postgres", "services.identity")
    yield url
    databases.drop(url)


def kill_connections_to(url: str) -> None:
    """What a database restart or an idle timeout does to the connections waiting in a pool."""
    name = make_url(url).database
    backends._admin_execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")


@pytest.mark.postgres
@pytest.mark.parametrize("autocommit", [False, True])
def test_a_pooled_connection_killed_while_idle_is_replaced_before_use(postgres_url, autocommit):
    engine = make_engine(postgres_url, autocommit=autocommit, ping_after_idle=0.2)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        kill_connections_to(postgres_url)
        time.sleep(0.3)

        with engine.connect() as conn:
            assert conn.execute(text("SELECT 2")).scalar() == 2
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_without_the_idle_check_the_killed_connection_fails(postgres_url):
    """The control for the test above: the same pool, checked only after an hour of idleness."""
    engine = make_engine(postgres_url, ping_after_idle=3600)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        kill_connections_to(postgres_url)

        with pytest.raises(exc.OperationalError), engine.connect() as conn:
            conn.execute(text("SELECT 2"))
        with engine.connect() as conn:  # the pool noticed and reconnects from then on
            assert conn.execute(text("SELECT 3")).scalar() == 3
    finally:
        engine.dispose()


def test_the_autocommit_engine_keeps_each_statement_without_a_commit(identity_db):
    autocommit = make_engine(identity_db, autocommit=True)
    engine = make_engine(identity_db)
    try:
        with autocommit.connect() as conn:
            conn.execute(throttles.insert().values(key="autocommit-test", hits=1, window_start=utcnow()))
        # closed without commit(): the row stays, and another connection sees it at once
        with engine.connect() as conn:
            assert conn.execute(select(throttles.c.hits).where(throttles.c.key == "autocommit-test")).scalar() == 1
    finally:
        autocommit.dispose()
        engine.dispose()


def test_the_ordinary_engine_drops_what_was_not_committed(identity_db):
    engine = make_engine(identity_db)
    try:
        with engine.connect() as conn:
            conn.execute(text("INSERT INTO throttles (key, hits, window_start) VALUES ('dropped', 1, '2026-01-01')"))
        with engine.connect() as conn:
            assert conn.execute(select(throttles.c.hits).where(throttles.c.key == "dropped")).scalar() is None
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_precompiled_statement_on_a_dead_connection_gives_it_up(postgres_url):
    engine = make_engine(postgres_url, ping_after_idle=3600)  # no check at checkout: the statement finds it dead
    query = Precompiled(select(throttles.c.hits).where(throttles.c.key == bindparam("key")))
    try:
        with engine.connect() as first, engine.connect() as second:  # two connections wait in the pool
            query.first(first, {"key": "x"})
            query.first(second, {"key": "x"})
        kill_connections_to(postgres_url)

        with engine.connect() as conn, pytest.raises(exc.OperationalError) as raised:
            query.first(conn, {"key": "x"})
        assert raised.value.connection_invalidated
        with engine.connect() as conn:  # neither that connection nor the other dead one is given out again
            assert query.first(conn, {"key": "x"}) is None
    finally:
        engine.dispose()
