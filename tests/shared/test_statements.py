"""Precompiled statements give exactly what SQLAlchemy's own execution gives, on SQLite and PostgreSQL.

They skip SQLAlchemy's per-execution machinery but keep its SQL and its type conversions; these tests
run the same statements both ways on identity's real tables (booleans, timezone-aware datetimes,
NULLs, an upsert that names one parameter twice) and check that they run inside the transaction of
the connection they are given.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, case, exc, select, update
from sqlalchemy.dialects import postgresql, sqlite

from services.identity.models import Account, AuthSession
from shared.database import UTCDateTime, make_engine, new_id
from shared.statements import Precompiled

accounts = Account.__table__
sessions = AuthSession.__table__
MOMENT = datetime(2026, 11, 30, 23, 59, 58, 123456, tzinfo=UTC)


@pytest.fixture
def engine(identity_db):
    engine = make_engine(identity_db)
    yield engine
    engine.dispose()


def add_account(conn, **changes) -> str:
    row = {"id": new_id(), "email": f"{new_id()}@example.com", "password_hash": None, "first_name": "Ada",
           "last_name": "Lovelace", "email_verified": True, "mfa_enabled": False, "created_at": MOMENT,
           "updated_at": MOMENT, **changes}
    conn.execute(accounts.insert(), row)
    return row["id"]


def test_a_select_gives_the_values_and_types_core_gives(engine):
    query = select(accounts).where(accounts.c.id == bindparam("id"))
    with engine.begin() as conn:
        account_id = add_account(conn, email_verified=False, mfa_enabled=True)
        expected = conn.execute(query, {"id": account_id}).first()
        got = Precompiled(query).first(conn, {"id": account_id})

    assert tuple(got) == tuple(expected)
    assert got._fields == tuple(expected._fields)
    assert got.email_verified is False and got.mfa_enabled is True
    assert got.password_hash is None
    assert got.created_at == MOMENT and got.created_at.tzinfo is not None
    assert [type(value) for value in got] == [type(value) for value in expected]


def test_a_select_that_finds_nothing_gives_none(engine):
    with engine.connect() as conn:
        by_id = Precompiled(select(accounts.c.id).where(accounts.c.id == bindparam("id")))
        assert by_id.first(conn, {"id": "x"}) is None


def test_all_gives_every_row_core_gives_in_its_order(engine):
    query = (select(accounts.c.id, accounts.c.email_verified, accounts.c.created_at)
             .where(accounts.c.last_name == bindparam("last_name")).order_by(accounts.c.email))
    with engine.begin() as conn:
        for number in range(3):
            add_account(conn, email=f"all-{number}@example.com", last_name="Everyone", email_verified=number == 1)
        expected = conn.execute(query, {"last_name": "Everyone"}).all()
        got = Precompiled(query).all(conn, {"last_name": "Everyone"})
        nothing = Precompiled(query).all(conn, {"last_name": "Nobody"})

    assert [tuple(row) for row in got] == [tuple(row) for row in expected] and len(got) == 3
    assert [row.email_verified for row in got] == [False, True, False]
    assert all(row.created_at == MOMENT for row in got)
    assert nothing == []


def test_rows_written_precompiled_read_back_through_core_unchanged(engine):
    later = MOMENT + timedelta(days=30)
    with engine.begin() as conn:
        account_id = add_account(conn)
        session_id = new_id()
        assert Precompiled(sessions.insert()).rowcount(conn, {
            "id": session_id, "account_id": account_id, "amr": "pwd otp", "auth_time": MOMENT, "created_at": later,
            "revoked_at": None, "user_agent": "Mozilla/5.0 (X11; Linux) \u00e9t\u00e9", "ip_address": None}) == 1
        row = conn.execute(select(sessions).where(sessions.c.id == session_id)).one()

    assert row.amr == "pwd otp"
    assert row.user_agent == "Mozilla/5.0 (X11; Linux) \u00e9t\u00e9" and row.ip_address is None
    assert row.auth_time == MOMENT and row.created_at == later and row.revoked_at is None


def test_a_conditional_update_counts_the_rows_it_changed(engine):
    revoke = Precompiled(update(sessions)
                         .where(sessions.c.id == bindparam("session_id"), sessions.c.revoked_at.is_(None))
                         .values(revoked_at=bindparam("now")))
    with engine.begin() as conn:
        account_id = add_account(conn)
        session_id = new_id()
        conn.execute(sessions.insert(), {"id": session_id, "account_id": account_id, "amr": "pwd", "auth_time": MOMENT,
                                         "created_at": MOMENT})

        assert revoke.rowcount(conn, {"session_id": session_id, "now": MOMENT}) == 1
        assert revoke.rowcount(conn, {"session_id": session_id, "now": MOMENT}) == 0
        assert conn.execute(select(sessions.c.revoked_at).where(sessions.c.id == session_id)).scalar() == MOMENT


def test_an_upsert_that_names_a_parameter_twice_returns_what_it_wrote(engine):
    table = accounts
    insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)
    now = bindparam("now", type_=UTCDateTime)
    upsert = Precompiled(
        insert.values(id=bindparam("id"), email=bindparam("email"), first_name="Ada", last_name="Lovelace",
                      email_verified=False, mfa_enabled=False, created_at=now, updated_at=now)
        .on_conflict_do_update(index_elements=["id"], set_={
            "updated_at": now, "email_verified": case((table.c.updated_at < now, True), else_=False)})
        .returning(table.c.created_at, table.c.updated_at, table.c.email_verified))
    account_id = new_id()
    with engine.begin() as conn:
        first = upsert.first(conn, {"id": account_id, "email": "upsert@example.com", "now": MOMENT})
        second = upsert.first(conn, {"id": account_id, "email": "upsert@example.com",
                                     "now": MOMENT + timedelta(seconds=1)})

    assert tuple(first) == (MOMENT, MOMENT, False)
    assert tuple(second) == (MOMENT, MOMENT + timedelta(seconds=1), True)


def test_a_statement_runs_inside_the_transaction_of_its_connection(engine):
    insert = Precompiled(accounts.insert())
    kept, dropped = new_id(), new_id()
    row = {"email_verified": False, "mfa_enabled": False, "first_name": "A", "last_name": "B", "password_hash": None,
           "created_at": MOMENT, "updated_at": MOMENT}
    with engine.connect() as conn:
        conn.begin()
        insert.rowcount(conn, {**row, "id": dropped, "email": "dropped@example.com"})
        conn.rollback()
        conn.begin()
        insert.rowcount(conn, {**row, "id": kept, "email": "kept@example.com"})
        conn.commit()
    with engine.connect() as conn:
        found = set(conn.execute(select(accounts.c.id).where(accounts.c.id.in_([kept, dropped]))).scalars())

    assert found == {kept}


def test_a_naive_datetime_is_refused_as_core_refuses_it(engine):
    with engine.connect() as conn, pytest.raises(ValueError, match="naive"):
        Precompiled(select(accounts.c.id).where(accounts.c.created_at < bindparam("at", type_=UTCDateTime))).first(
            conn, {"at": datetime(2026, 1, 1)})


def test_a_failing_statement_raises_sqlalchemys_error_without_its_parameters(engine):
    insert = Precompiled(accounts.insert())
    row = {"id": new_id(), "email": "twice@example.com", "password_hash": "secret-hash-value", "first_name": "A",
           "last_name": "B", "email_verified": False, "mfa_enabled": False, "created_at": MOMENT, "updated_at": MOMENT}
    with engine.begin() as conn:
        insert.rowcount(conn, row)
    with engine.connect() as conn, pytest.raises(exc.IntegrityError) as raised:
        insert.rowcount(conn, {**row, "id": new_id()})  # the same email

    # SQLAlchemy's list of the statement's parameters is left out (PostgreSQL's own message still names the
    # conflicting key, as it does for SQLAlchemy's execution)
    assert "secret-hash-value" not in str(raised.value)
