"""Everything identity runs on the autocommit engine: statements that stand alone, outside any unit of work.

The persistence rule (docs/architecture.md): atomic work goes through the unit of work and its repositories;
a statement that needs no transaction around it lives here, on the autocommit engine. Each statement is
a transaction of its own: on PostgreSQL that saves the BEGIN and COMMIT (or ROLLBACK) round trips, on
SQLite the write lock that every transaction here takes. The statements are precompiled
(`shared.statements`) and rows come back as named tuples, not ORM objects.

- `Reads`: the hot paths' single-statement reads (an account, a client).
- `Rotations`: refresh-token rotation, a read and an insert that need nothing around them.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import IntegrityError

from services.identity.models import Account, AuthSession, RefreshToken, RelyingPartyRecord, ServiceClient
from services.identity.repository import REVOKE_SESSION, insert_refresh_token
from shared.statements import Precompiled

accounts = Account.__table__
PUBLIC_COLUMNS = tuple(accounts.c[name] for name in Account.PUBLIC_FIELDS)

_PUBLIC_BY_ID = Precompiled(select(*PUBLIC_COLUMNS).where(accounts.c.id == bindparam("id")))
_SIGN_IN_BY_EMAIL = Precompiled(
    select(*PUBLIC_COLUMNS, accounts.c.password_hash).where(accounts.c.email == bindparam("email")))
_relying_parties = RelyingPartyRecord.__table__
_RELYING_PARTY = Precompiled(
    select(_relying_parties.c.client_id, _relying_parties.c.secret_hash, _relying_parties.c.metadata_json)
    .where(_relying_parties.c.client_id == bindparam("client_id")))

_service_clients = ServiceClient.__table__
_SERVICE_CLIENT = Precompiled(
    select(_service_clients.c.client_id, _service_clients.c.secret_hash, _service_clients.c.scopes)
    .where(_service_clients.c.client_id == bindparam("client_id")))


class Reads:
    """The read-only queries, over the service's autocommit engine."""

    def __init__(self, autocommit_engine: Engine):
        self.engine = autocommit_engine

    def public_account(self, account_id: str) -> dict | None:
        """The Account document (as `Account.public()` gives it), or None."""
        with self.engine.connect() as conn:
            row = _PUBLIC_BY_ID.first(conn, {"id": account_id})
        return row._asdict() if row is not None else None

    def sign_in_account(self, email: str):
        """What a password sign-in needs of an account (the hash among it), by normalised email."""
        with self.engine.connect() as conn:
            return _SIGN_IN_BY_EMAIL.first(conn, {"email": email})

    def relying_party(self, client_id: str):
        """An OpenID Provider client the CLI registered (client_id, secret_hash, metadata_json), or None."""
        with self.engine.connect() as conn:
            return _RELYING_PARTY.first(conn, {"client_id": client_id})

    def service_client(self, client_id: str):
        """A service client (client_id, secret_hash, scopes), or None."""
        with self.engine.connect() as conn:
            return _SERVICE_CLIENT.first(conn, {"client_id": client_id})


_refresh_tokens = RefreshToken.__table__
_sessions = AuthSession.__table__
_successor = _refresh_tokens.alias("successor")
_REFRESH_TOKEN_WITH_SESSION = Precompiled(
    select(_refresh_tokens.c.session_id, _refresh_tokens.c.expires_at, _refresh_tokens.c.rotated_at,
           _successor.c.token_hash.label("successor_hash"),
           _sessions.c.amr, _sessions.c.auth_time, _sessions.c.revoked_at,
           accounts.c.id, accounts.c.email, accounts.c.email_verified, accounts.c.first_name,
           accounts.c.last_name)
    .join(_sessions, _sessions.c.id == _refresh_tokens.c.session_id)
    .join(accounts, accounts.c.id == _sessions.c.account_id)
    .outerjoin(_successor, _successor.c.previous_hash == _refresh_tokens.c.token_hash)
    .where(_refresh_tokens.c.token_hash == bindparam("token_hash")))


class Rotations:
    """Refresh-token rotation, outside any unit of work: each statement is a transaction of its own on
    the autocommit engine. Reading a token and inserting its successor need nothing around them: the
    unique index on `previous_hash` lets one successor in, so of two refreshes with one token exactly
    one succeeds, whatever happens between them."""

    def __init__(self, autocommit_engine: Engine):
        self.engine = autocommit_engine

    def current(self, token_hash: str):
        """The token, whether it has a successor, its session and the session's account, in one row."""
        with self.engine.connect() as conn:
            return _REFRESH_TOKEN_WITH_SESSION.first(conn, {"token_hash": token_hash})

    def add_successor(self, *, token_hash: str, previous_hash: str, session_id: str, now: datetime,
                      expires_at: datetime) -> bool:
        """Insert the token that replaces `previous_hash`; False when one already did."""
        try:
            with self.engine.connect() as conn:
                insert_refresh_token(conn, token_hash, session_id, now, expires_at, previous_hash)
        except IntegrityError:
            return False
        return True

    def revoke_session(self, session_id: str, now: datetime) -> None:
        with self.engine.connect() as conn:
            REVOKE_SESSION.rowcount(conn, {"session_id": session_id, "now": now})
