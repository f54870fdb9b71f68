"""Revision 0005 (refresh-token successors) keeps every rotation made before it, and its downgrade keeps
every rotation made after it: a used refresh token stays used across the migration either way."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import Boolean, column, create_engine, select, table

from services.identity.app import create_app
from services.identity.settings import Settings
from shared.database import UTCDateTime
from shared.migrations import alembic_config, upgrade
from shared.opaque_tokens import digest
from support.outbox import Outbox
from tests.conftest import AuthActions, assert_problem, identity_env
from tests.shared.test_key_rotation import run_identity_cli

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "identity" / "migrations"
NOW = datetime.now(UTC).replace(microsecond=0)

# The tables as revision 0004 has them (no previous_hash yet).
accounts = table("accounts", column("id"), column("email"), column("password_hash"), column("first_name"),
                 column("last_name"), column("email_verified", Boolean), column("mfa_enabled", Boolean),
                 column("created_at", UTCDateTime), column("updated_at", UTCDateTime))
sessions = table("sessions", column("id"), column("account_id"), column("amr"), column("auth_time", UTCDateTime),
                 column("created_at", UTCDateTime), column("revoked_at", UTCDateTime))
refresh_tokens = table("refresh_tokens", column("token_hash"), column("session_id"),
                       column("created_at", UTCDateTime), column("expires_at", UTCDateTime),
                       column("rotated_at", UTCDateTime))


def refresh(client, token: str):
    return client.post("/v1/tokens/refresh", json={"refresh_token": token})


def test_tokens_rotated_before_the_migration_still_count_as_used(empty_identity_database, tmp_path, clock):
    upgrade(MIGRATIONS, empty_identity_database, "0004")
    engine = create_engine(empty_identity_database)
    with engine.begin() as conn:
        conn.execute(accounts.insert(), [{"id": "acc-1", "email": "ada@example.com", "password_hash": None,
                                          "first_name": "Ada", "last_name": "Lovelace", "email_verified": True,
                                          "mfa_enabled": False, "created_at": NOW, "updated_at": NOW}])
        conn.execute(sessions.insert(), [{"id": session, "account_id": "acc-1", "amr": "pwd", "auth_time": NOW,
                                          "created_at": NOW, "revoked_at": None} for session in ("s-1", "s-2")])
        expires = NOW + timedelta(days=30)
        conn.execute(refresh_tokens.insert(), [
            {"token_hash": digest("used-before"), "session_id": "s-1", "created_at": NOW, "expires_at": expires,
             "rotated_at": NOW},
            {"token_hash": digest("current-of-s1"), "session_id": "s-1", "created_at": NOW, "expires_at": expires,
             "rotated_at": None},
            {"token_hash": digest("current-of-s2"), "session_id": "s-2", "created_at": NOW, "expires_at": expires,
             "rotated_at": None}])
    engine.dispose()

    migrated = run_identity_cli(empty_identity_database, tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    clock.now = NOW
    app = create_app(Settings.from_env(identity_env(empty_identity_database, tmp_path)), clock=clock)
    client = app.test_client()

    assert refresh(client, "current-of-s2").status_code == 200  # a token in use keeps working
    assert_problem(refresh(client, "used-before"), 401, "token_reused")
    assert_problem(refresh(client, "current-of-s1"), 401, "token_invalid")  # the reuse ended its session
    app.extensions["threshold.identity"].session_factory.kw["bind"].dispose()


def test_downgrading_keeps_tokens_rotated_after_the_migration_used(empty_identity_database, tmp_path, clock):
    migrated = run_identity_cli(empty_identity_database, tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    app = create_app(Settings.from_env(identity_env(empty_identity_database, tmp_path)), clock=clock)
    outbox = Outbox(empty_identity_database)
    _account, first = AuthActions(app.test_client(), outbox).verified_account("ada@example.com")
    second = refresh(app.test_client(), first["refresh_token"]).get_json()
    app.extensions["threshold.identity"].session_factory.kw["bind"].dispose()
    outbox.engine.dispose()

    command.downgrade(alembic_config(MIGRATIONS, empty_identity_database), "0004")

    engine = create_engine(empty_identity_database)
    with engine.connect() as conn:
        rotated = dict(conn.execute(select(refresh_tokens.c.token_hash, refresh_tokens.c.rotated_at)).all())
    engine.dispose()
    assert rotated[digest(first["refresh_token"])] is not None
    assert rotated[digest(second["refresh_token"])] is None
