"""Sign-in, token pairs, refresh-token rotation and sign-out."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NoReturn

from services.identity import passwords
from services.identity.accounts import email_key, failure_policy
from services.identity.autocommit import Reads, Rotations
from services.identity.errors import (
    EmailNotVerified,
    InvalidCredentials,
    RefreshTokenExpired,
    RefreshTokenInvalid,
    RefreshTokenReused,
    SessionNotFound,
)
from services.identity.keys import KeyStore
from services.identity.metrics import SIGN_INS
from services.identity.models import Device, MfaChallenge
from services.identity.settings import Settings
from services.identity.unit_of_work import IdentityUnitOfWork
from shared import addresses, jwt, opaque_tokens
from shared.database import new_id
from shared.throttle import Throttle

log = logging.getLogger("threshold.identity.sessions")


def access_token(account, *, session_id: str, amr: str, auth_time: datetime, keys: KeyStore, settings: Settings,
                 now: datetime) -> str:
    """`account` is anything with the Account columns as attributes (an Account, or a Row of them)."""
    key = keys.signing_key()
    claims = person_claims(account, session_id=session_id, amr=amr, auth_time=auth_time)
    return jwt.mint(key=key.signing, kid=key.kid, algorithm=key.algorithm, issuer=settings.issuer,
                    subject=account.id, audience=settings.audience, issued_at=now,
                    lifetime=settings.access_token_ttl, claims=claims)


def person_claims(account, *, session_id: str, amr: str, auth_time: datetime) -> dict:
    """What a user access token says of the person and their session."""
    return {
        "sid": session_id,
        "email": account.email,
        "email_verified": account.email_verified,
        "given_name": account.first_name,
        "family_name": account.last_name,
        "amr": amr.split(),
        "auth_time": int(auth_time.timestamp()),
    }


def _token_pair(account, *, session_id: str, amr: str, auth_time: datetime, refresh_token: str, keys: KeyStore,
                settings: Settings, now: datetime) -> dict:
    return {
        "access_token": access_token(account, session_id=session_id, amr=amr, auth_time=auth_time, keys=keys,
                                     settings=settings, now=now),
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl,
        "refresh_token": refresh_token,
    }


def start_session(uow: IdentityUnitOfWork, *, account, amr: str, keys: KeyStore, settings: Settings, now: datetime,
                  device: Device) -> dict:
    """Open a session for an authenticated account (inside the caller's unit of work) and issue a pair."""
    session_id = new_id()
    uow.sessions.add(session_id, account.id, amr, now, device)
    refresh_token, refresh_hash = opaque_tokens.generate()
    uow.refresh_tokens.add(refresh_hash, session_id, now, now + timedelta(seconds=settings.refresh_token_ttl))
    return _token_pair(account, session_id=session_id, amr=amr, auth_time=now, refresh_token=refresh_token, keys=keys,
                       settings=settings, now=now)


MFA_METHODS = ["totp", "recovery_code"]


def mfa_challenge(uow: IdentityUnitOfWork, *, account, settings: Settings, now: datetime,
                  first_factor: str = "pwd") -> dict:
    """The answer to a passed first factor when 2FA is on: a short-lived mfa_token for the second step."""
    token, token_hash = opaque_tokens.generate()
    uow.mfa_challenges.add(MfaChallenge(token_hash=token_hash, account_id=account.id, created_at=now,
                                        expires_at=now + timedelta(seconds=settings.mfa_token_ttl), failures=0,
                                        first_factor=first_factor))
    return {"mfa_required": True, "mfa_token": token, "methods": MFA_METHODS, "expires_in": settings.mfa_token_ttl}


def sign_in(uow: IdentityUnitOfWork, *, reads: Reads, throttle: Throttle, keys: KeyStore, settings: Settings,
            email: str, password: str, now: datetime, device: Device) -> dict:
    """Check the password (the argon2 work happens outside any transaction) and open a session.

    Unknown email and wrong password fail alike, in the same time; guesses are counted per address
    and client address in the database before the check, and past a few failures the pair is
    blocked for a growing delay (`Throttle.guess`; `throttle` is bound to the client's address).
    The account is read once, before the hash; a change to it during the hash is no different
    from one just after a sign-in.
    """
    email = addresses.lookup_form(email)
    account = reads.sign_in_account(email)
    password_hash = account.password_hash if account is not None else None

    def check() -> None:
        if not passwords.verify(password_hash, password):
            raise InvalidCredentials()

    try:
        throttle.guess(email_key("sign-in", email), check, InvalidCredentials, **failure_policy(settings))
    except InvalidCredentials:
        SIGN_INS.labels("pwd", "failure").inc()
        log.info("sign-in failed", extra={"event": "sign_in_failed"})
        raise
    if not account.email_verified:
        raise EmailNotVerified()
    assert password_hash is not None  # check() passed
    new_hash = passwords.hash_password(password) if passwords.needs_rehash(password_hash) else None
    with uow:
        if new_hash is not None:
            stored = uow.accounts.get(account.id)
            assert stored is not None  # read a moment ago
            stored.password_hash = new_hash
        if account.mfa_enabled:
            answer = mfa_challenge(uow, account=account, settings=settings, now=now)
            uow.commit()
            SIGN_INS.labels("pwd", "mfa_required").inc()
            return answer
        pair = start_session(uow, account=account, amr="pwd", keys=keys, settings=settings, now=now, device=device)
        uow.commit()
    SIGN_INS.labels("pwd", "success").inc()
    log.info("sign-in succeeded", extra={"event": "sign_in_succeeded", "account_id": account.id})
    return pair


def refresh(rotations: Rotations, *, keys: KeyStore, settings: Settings, refresh_token: str, now: datetime) -> dict:
    """Rotate a refresh token. Presenting one that was already rotated ends the whole session.

    Two statements, no transaction around them (see `Rotations`): read the token with its session,
    then insert its successor, which only one refresh of a token can do.
    """
    token_hash = opaque_tokens.digest(refresh_token)
    row = rotations.current(token_hash)
    if row is None or row.revoked_at is not None:
        raise RefreshTokenInvalid()
    if row.rotated_at is not None or row.successor_hash is not None:
        _end_reused_session(rotations, session_id=row.session_id, now=now)
    if row.expires_at <= now:
        raise RefreshTokenExpired()
    next_token, next_hash = opaque_tokens.generate()
    if not rotations.add_successor(token_hash=next_hash, previous_hash=token_hash, session_id=row.session_id,
                                   now=now, expires_at=now + timedelta(seconds=settings.refresh_token_ttl)):
        _end_reused_session(rotations, session_id=row.session_id, now=now)  # a concurrent refresh of the same token won
    return _token_pair(row, session_id=row.session_id, amr=row.amr, auth_time=row.auth_time, refresh_token=next_token,
                       keys=keys, settings=settings, now=now)


def _end_reused_session(rotations: Rotations, *, session_id: str, now: datetime) -> NoReturn:
    rotations.revoke_session(session_id, now)
    log.warning("refresh token reused; session revoked", extra={"event": "refresh_token_reused",
                                                                  "session_id": session_id})
    raise RefreshTokenReused()


def sign_out(uow: IdentityUnitOfWork, *, refresh_token: str, now: datetime) -> None:
    """End the session of a refresh token. Unknown tokens are ignored (RFC 7009)."""
    with uow:
        session_id = uow.refresh_tokens.session_id(opaque_tokens.digest(refresh_token))
        if session_id is not None:
            uow.sessions.revoke(session_id, now)
            uow.commit()


def list_sessions(uow: IdentityUnitOfWork, *, account_id: str, current_session_id: str, now: datetime) -> list[dict]:
    """The account's signed-in devices, the caller's own marked `current`."""
    with uow:
        return [{"id": row.id, "created_at": row.created_at, "last_used_at": row.last_used_at,
                 "amr": row.amr.split(), "user_agent": row.user_agent, "ip_address": row.ip_address,
                 "current": row.id == current_session_id}
                for row in uow.sessions.of_account(account_id, now)]


def revoke_session(uow: IdentityUnitOfWork, *, account_id: str, session_id: str, now: datetime) -> None:
    """Sign one of the account's devices out: its refresh tokens stop working (its access tokens run out
    within their lifetime). Another account's session, or none: SessionNotFound."""
    with uow:
        if not uow.sessions.belongs_to(session_id, account_id):
            raise SessionNotFound()
        uow.sessions.revoke(session_id, now)
        uow.commit()
