"""Identity's repositories, inside a unit of work (`unit_of_work.py`): with `autocommit.py` (statements that
stand alone) and the migrations, the only code that queries its tables."""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from services.identity.errors import EmailTaken
from services.identity.models import (
    Account,
    AuditRecord,
    AuthorizationRequest,
    AuthSession,
    Device,
    FederatedIdentity,
    MfaChallenge,
    OAuthGrant,
    OAuthRefreshToken,
    OneTimeToken,
    RecoveryCode,
    RefreshToken,
    RelyingPartyRecord,
    ServiceClient,
    SigningKey,
    TotpCredential,
)
from shared.database import is_unique_violation, new_id
from shared.statements import Precompiled
from shared.unit_of_work import Repository


class Accounts(Repository):
    def add(self, account: Account) -> None:
        """Insert the account; EmailTaken when its address has one already, also when a concurrent
        sign-up inserted it after this transaction looked (the unique index on `email` decides)."""
        self.session.add(account)
        try:
            self.session.flush()
        except IntegrityError as error:
            if not is_unique_violation(error):
                raise
            raise EmailTaken() from None

    def get(self, account_id: str) -> Account | None:
        return self.session.get(Account, account_id)

    def by_email(self, email: str) -> Account | None:
        return self.session.scalars(select(Account).where(Account.email == email)).first()

    def many(self, ids: list[str]) -> list[Account]:
        return list(self.session.scalars(select(Account).where(Account.id.in_(ids))))

    def claims(self, account_id: str):
        """What the OpenID Provider's tokens say of an account (id, email, email_verified, first_name,
        last_name, updated_at), read-only, or None: one precompiled statement on every token request."""
        self._uow.flush()
        return _ACCOUNT_CLAIMS.first(self.connection, {"id": account_id})


class OneTimeTokens(Repository):
    def add(self, token: OneTimeToken) -> None:
        self.session.add(token)

    def get(self, token_hash: str) -> OneTimeToken | None:
        return self.session.get(OneTimeToken, token_hash)

    def use(self, token: OneTimeToken, now: datetime) -> bool:
        """Mark the token used; False when a concurrent request used it first."""
        result = self.session.execute(
            update(OneTimeToken)
            .where(OneTimeToken.token_hash == token.token_hash, OneTimeToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        token.used_at = now
        return result.rowcount == 1

    def expire_unused(self, account_id: str, purpose: str, now: datetime) -> None:
        """Earlier unused tokens of the same purpose stop working when a new one is sent."""
        self.session.execute(
            update(OneTimeToken)
            .where(OneTimeToken.account_id == account_id, OneTimeToken.purpose == purpose,
                   OneTimeToken.used_at.is_(None), OneTimeToken.expires_at > now)
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )


_sessions = AuthSession.__table__
_refresh_tokens = RefreshToken.__table__
_accounts = Account.__table__

# The session and refresh-token statements run on every sign-in and refresh: precompiled Core (the ORM's
# per-object bookkeeping would cost more than the SQL), on a unit of work's connection. Rotation
# (`autocommit.Rotations`) runs REVOKE_SESSION and insert_refresh_token on the autocommit engine too.
_INSERT_SESSION = Precompiled(_sessions.insert())
REVOKE_SESSION = Precompiled(
    update(_sessions).where(_sessions.c.id == bindparam("session_id"), _sessions.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now")))
_INSERT_REFRESH_TOKEN = Precompiled(_refresh_tokens.insert())
_SESSION_ACTIVE = Precompiled(
    select(_sessions.c.id).where(_sessions.c.id == bindparam("session_id"), _sessions.c.revoked_at.is_(None)))


class AccountClaims(NamedTuple):
    """What `Accounts.claims` reads of an account, as `OAuthRefreshTokens.with_grant` gives it too."""

    id: str
    email: str
    email_verified: bool
    first_name: str
    last_name: str
    updated_at: datetime


_CLAIM_COLUMNS = [_accounts.c[name] for name in AccountClaims._fields]
_ACCOUNT_CLAIMS = Precompiled(select(*_CLAIM_COLUMNS).where(_accounts.c.id == bindparam("id")))
_SESSION_OF_REFRESH_TOKEN = Precompiled(
    select(_refresh_tokens.c.session_id).where(_refresh_tokens.c.token_hash == bindparam("token_hash")))


def insert_refresh_token(connection: Connection, token_hash: str, session_id: str, now: datetime,
                         expires_at: datetime, previous_hash: str | None = None) -> None:
    """A session's first refresh token (no `previous_hash`), or the one that replaces `previous_hash`."""
    _INSERT_REFRESH_TOKEN.rowcount(connection, {
        "token_hash": token_hash, "session_id": session_id, "created_at": now, "expires_at": expires_at,
        "rotated_at": None, "previous_hash": previous_hash,
    })


class Sessions(Repository):
    def add(self, session_id: str, account_id: str, amr: str, now: datetime, device: Device) -> None:
        # Whatever the unit of work holds goes first: an account created in it must exist before its session.
        self._uow.flush()
        _INSERT_SESSION.rowcount(self.connection, {
            "id": session_id, "account_id": account_id, "amr": amr, "auth_time": now, "created_at": now,
            "revoked_at": None, "user_agent": device.user_agent, "ip_address": device.ip_address,
        })

    def revoke(self, session_id: str, now: datetime) -> None:
        REVOKE_SESSION.rowcount(self.connection, {"session_id": session_id, "now": now})

    def active(self, session_id: str) -> bool:
        """Whether the session exists and has not ended (signed out, reused refresh token, password change)."""
        self._uow.flush()
        return _SESSION_ACTIVE.first(self.connection, {"session_id": session_id}) is not None

    def of_account(self, account_id: str, now: datetime) -> list:
        """The account's live sessions (not ended, a refresh token not yet expired), most recently used first:
        rows of id, created_at, amr and last_used_at (when its newest refresh token was issued)."""
        last_used = func.max(RefreshToken.created_at)
        return list(self.session.execute(
            select(AuthSession.id, AuthSession.created_at, AuthSession.amr, AuthSession.user_agent,
                   AuthSession.ip_address, last_used.label("last_used_at"))
            .join(RefreshToken, RefreshToken.session_id == AuthSession.id)
            .where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None))
            .group_by(AuthSession.id, AuthSession.created_at, AuthSession.amr, AuthSession.user_agent,
                      AuthSession.ip_address)
            .having(func.max(RefreshToken.expires_at) > now)
            .order_by(last_used.desc(), AuthSession.id)))

    def belongs_to(self, session_id: str, account_id: str) -> bool:
        return self.session.scalar(select(AuthSession.id).where(AuthSession.id == session_id,
                                                                AuthSession.account_id == account_id)) is not None

    def revoke_all(self, account_id: str, now: datetime, keep: str | None = None) -> None:
        query = update(AuthSession).where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None))
        if keep is not None:
            query = query.where(AuthSession.id != keep)
        self.session.execute(query.values(revoked_at=now).execution_options(synchronize_session=False))


class RefreshTokens(Repository):
    def add(self, token_hash: str, session_id: str, now: datetime, expires_at: datetime) -> None:
        insert_refresh_token(self.connection, token_hash, session_id, now, expires_at)

    def session_id(self, token_hash: str) -> str | None:
        row = _SESSION_OF_REFRESH_TOKEN.first(self.connection, {"token_hash": token_hash})
        return row.session_id if row is not None else None


class SigningKeys(Repository):
    def add(self, key: SigningKey) -> None:
        self.session.add(key)

    def all(self) -> list[SigningKey]:
        return list(self.session.scalars(select(SigningKey).order_by(SigningKey.activates_at)))


class TotpCredentials(Repository):
    def get(self, account_id: str) -> TotpCredential | None:
        return self.session.get(TotpCredential, account_id)

    def put(self, credential: TotpCredential) -> None:
        existing = self.get(credential.account_id)
        if existing is not None:
            self.session.delete(existing)
            self.session.flush()
        self.session.add(credential)

    def delete(self, account_id: str) -> None:
        self.session.execute(delete(TotpCredential).where(TotpCredential.account_id == account_id))

    def accept_step(self, account_id: str, step: int) -> bool:
        """Record `step` as used; False when it (or a later one) was used already: a replayed code.

        One conditional UPDATE, so two concurrent requests with the same code cannot both win."""
        result = self.session.execute(
            update(TotpCredential)
            .where(TotpCredential.account_id == account_id,
                   or_(TotpCredential.last_step.is_(None), TotpCredential.last_step < step))
            .values(last_step=step)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    def all(self) -> list[TotpCredential]:
        return list(self.session.scalars(select(TotpCredential)))


class RecoveryCodes(Repository):
    def replace(self, account_id: str, code_hashes: list[str], now: datetime) -> None:
        self.delete_all(account_id)
        self.session.add_all(RecoveryCode(code_hash=h, account_id=account_id, created_at=now) for h in code_hashes)

    def delete_all(self, account_id: str) -> None:
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))

    def use(self, account_id: str, code_hash: str, now: datetime) -> bool:
        """Spend a code once; False for an unknown or already used one."""
        result = self.session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.code_hash == code_hash, RecoveryCode.account_id == account_id,
                   RecoveryCode.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


class MfaChallenges(Repository):
    def add(self, challenge: MfaChallenge) -> None:
        self.session.add(challenge)

    def get(self, token_hash: str) -> MfaChallenge | None:
        return self.session.get(MfaChallenge, token_hash)

    def count_attempt(self, token_hash: str, max_attempts: int, now: datetime) -> bool:
        """Count one code against the token, unless it is used, expired or out of attempts (then False)."""
        result = self.session.execute(
            update(MfaChallenge).where(MfaChallenge.token_hash == token_hash, MfaChallenge.used_at.is_(None),
                                       MfaChallenge.expires_at > now, MfaChallenge.failures < max_attempts)
            .values(failures=MfaChallenge.failures + 1).execution_options(synchronize_session=False))
        return result.rowcount == 1

    def give_back(self, token_hash: str) -> None:
        self.session.execute(update(MfaChallenge)
                             .where(MfaChallenge.token_hash == token_hash, MfaChallenge.failures > 0)
                             .values(failures=MfaChallenge.failures - 1).execution_options(synchronize_session=False))

    def use(self, token_hash: str, now: datetime) -> bool:
        result = self.session.execute(
            update(MfaChallenge).where(MfaChallenge.token_hash == token_hash, MfaChallenge.used_at.is_(None))
            .values(used_at=now).execution_options(synchronize_session=False))
        return result.rowcount == 1


class AuditRecords(Repository):
    def add(self, record: AuditRecord) -> None:
        self.session.add(record)


class ServiceClients(Repository):
    def get(self, client_id: str) -> ServiceClient | None:
        return self.session.get(ServiceClient, client_id)

    def put(self, client: ServiceClient) -> None:
        self.session.merge(client)


class FederatedIdentities(Repository):
    def get(self, issuer: str, subject: str) -> FederatedIdentity | None:
        return self.session.get(FederatedIdentity, (issuer, subject))

    def add(self, identity: FederatedIdentity) -> None:
        self.session.add(identity)

    def of_account(self, account_id: str) -> list[FederatedIdentity]:
        return list(self.session.scalars(select(FederatedIdentity).where(FederatedIdentity.account_id == account_id)
                                         .order_by(FederatedIdentity.created_at)))


class RelyingPartyRecords(Repository):
    def get(self, client_id: str) -> RelyingPartyRecord | None:
        return self.session.get(RelyingPartyRecord, client_id)

    def put(self, record: RelyingPartyRecord) -> None:
        self.session.merge(record)


_auth_requests = AuthorizationRequest.__table__
_AUTH_REQUEST_BY_CODE = Precompiled(
    select(*_auth_requests.c).where(_auth_requests.c.code_hash == bindparam("code_hash")))
_SPEND_CODE = Precompiled(
    update(_auth_requests).where(_auth_requests.c.code_hash == bindparam("code_hash"),
                                 _auth_requests.c.client_id == bindparam("client_id"),
                                 _auth_requests.c.code_used_at.is_(None)).values(code_used_at=bindparam("now"))
    .returning(*_auth_requests.c))
_RECORD_GRANT = Precompiled(
    update(_auth_requests).where(_auth_requests.c.code_hash == bindparam("code_hash"))
    .values(grant_id=bindparam("grant_id")))


class AuthorizationRequests(Repository):
    def add(self, request: AuthorizationRequest) -> None:
        self.session.add(request)

    def get(self, request_id: str) -> AuthorizationRequest | None:
        return self.session.get(AuthorizationRequest, request_id)

    def by_code(self, code_hash: str):
        """The request a code was issued for (its columns, read-only: the token endpoint's path), or None."""
        self._uow.flush()
        return _AUTH_REQUEST_BY_CODE.first(self.connection, {"code_hash": code_hash})

    def spend_code(self, *, code_hash: str, client_id: str, now: datetime):
        """Mark the code of `client_id` used and return its request (columns, read-only, as `by_code`); None
        when there is no such code of that client or it was used already (one conditional UPDATE: of two
        racing exchanges exactly one wins)."""
        self._uow.flush()
        return _SPEND_CODE.first(self.connection, {"code_hash": code_hash, "client_id": client_id, "now": now})

    def record_grant(self, code_hash: str, grant_id: str) -> None:
        """The grant a code's exchange opened (a replayed code revokes it)."""
        _RECORD_GRANT.rowcount(self.connection, {"code_hash": code_hash, "grant_id": grant_id})


# The OpenID Provider's token endpoint reads a grant and its refresh token and writes the successor on every
# refresh: precompiled Core on the unit of work's connection, as the first-party refresh does (the ORM's
# identity map and flush cost more than the statements). Rows come back as named tuples, read-only.
_grants = OAuthGrant.__table__
_op_refresh_tokens = OAuthRefreshToken.__table__
_GRANT = Precompiled(select(*_grants.c).where(_grants.c.id == bindparam("id")))
_INSERT_GRANT = Precompiled(_grants.insert())


class GrantRow(NamedTuple):
    """A grant's columns, read-only: what `OAuthGrants.add` writes and returns (`get` reads the same)."""

    id: str
    client_id: str
    account_id: str
    session_id: str
    scope: str
    auth_time: datetime
    amr: str
    workspace: str | None
    created_at: datetime
    revoked_at: datetime | None


_successors = _op_refresh_tokens.alias("successors")
# A refresh token with all the refresh grant asks about it, in one statement (five reads a refresh before):
# its grant's columns, its own expiry, whether it has a successor (used), whether the grant's session is live,
# and its account's claims (`claim_*`).
_OP_REFRESH_TOKEN_WITH_GRANT = Precompiled(
    select(*_grants.c, _op_refresh_tokens.c.token_hash, _op_refresh_tokens.c.expires_at.label("token_expires_at"),
           exists().where(_successors.c.previous_hash == _op_refresh_tokens.c.token_hash).label("used"),
           _sessions.c.id.is_not(None).label("session_active"),
           *[column.label(f"claim_{column.key}") for column in _CLAIM_COLUMNS])
    .select_from(_op_refresh_tokens.join(_grants, _grants.c.id == _op_refresh_tokens.c.grant_id)
                 .outerjoin(_sessions, (_sessions.c.id == _grants.c.session_id) & _sessions.c.revoked_at.is_(None))
                 .outerjoin(_accounts, _accounts.c.id == _grants.c.account_id))
    .where(_op_refresh_tokens.c.token_hash == bindparam("token_hash")))
# A successor whose previous_hash already has one is not inserted (its unique index): the token was reused.
# Both dialects spell it alike; each gets its own statement.
_INSERT_OP_REFRESH_TOKEN = {
    dialect.__name__.rsplit(".", 1)[-1]: Precompiled(
        dialect.insert(_op_refresh_tokens).on_conflict_do_nothing(index_elements=["previous_hash"]))
    for dialect in (postgresql, sqlite)}


class OAuthGrants(Repository):
    def add(self, *, client_id: str, account_id: str, session_id: str, scope: str, auth_time: datetime, amr: str,
            workspace: str | None, now: datetime):
        """Insert a new grant (a precompiled INSERT, no ORM object) and return its columns (`GrantRow`, as
        `get` reads them)."""
        self._uow.flush()
        grant = GrantRow(id=new_id(), client_id=client_id, account_id=account_id, session_id=session_id, scope=scope,
                         auth_time=auth_time, amr=amr, workspace=workspace, created_at=now, revoked_at=None)
        _INSERT_GRANT.rowcount(self.connection, grant._asdict())
        return grant

    def get(self, grant_id: str):
        """The grant (its columns, read-only), or None."""
        self._uow.flush()
        return _GRANT.first(self.connection, {"id": grant_id})

    def revoke(self, grant_id: str, now: datetime) -> None:
        self.session.execute(update(OAuthGrant).where(OAuthGrant.id == grant_id, OAuthGrant.revoked_at.is_(None))
                             .values(revoked_at=now).execution_options(synchronize_session=False))

    def revoke_session(self, session_id: str, now: datetime) -> None:
        self.session.execute(update(OAuthGrant)
                             .where(OAuthGrant.session_id == session_id, OAuthGrant.revoked_at.is_(None))
                             .values(revoked_at=now).execution_options(synchronize_session=False))


class OAuthRefreshTokens(Repository):
    def add(self, *, token_hash: str, grant_id: str, now: datetime, expires_at: datetime,
            previous_hash: str | None) -> bool:
        """Insert the token; False when its `previous_hash` already has a successor (a reuse, or a race)."""
        self._uow.flush()  # a grant added in this unit of work goes first
        connection = self.connection
        return _INSERT_OP_REFRESH_TOKEN[connection.dialect.name].rowcount(connection, {
            "token_hash": token_hash, "grant_id": grant_id, "created_at": now, "expires_at": expires_at,
            "previous_hash": previous_hash}) == 1

    def with_grant(self, token_hash: str):
        """The token's grant (its columns, read-only, as `OAuthGrants.get` reads them) with `token_hash`,
        `token_expires_at`, `used` (it has a successor) and `session_active` (the grant's session has not
        ended), and its account's claims (`AccountClaims`, None without an account); None when there is
        no such token."""
        self._uow.flush()
        row = _OP_REFRESH_TOKEN_WITH_GRANT.first(self.connection, {"token_hash": token_hash})
        if row is None:
            return None
        claims = [getattr(row, f"claim_{key}") for key in AccountClaims._fields]
        return row, (AccountClaims(*claims) if row.claim_id is not None else None)
