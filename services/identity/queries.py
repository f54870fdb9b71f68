"""Read-only queries for the hot paths: one statement each on the autocommit engine, no unit of work.

A single SELECT needs no transaction around it: on PostgreSQL that saves the BEGIN and ROLLBACK round
trips, on SQLite the write lock that every transaction here takes. The statements are precompiled
(`shared.statements`) and rows come back as named tuples, not ORM objects.
"""
from __future__ import annotations

from sqlalchemy import Engine, bindparam, select

from services.identity.models import Account, RelyingPartyRecord, ServiceClient
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
