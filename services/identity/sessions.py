"""Sign-in, token pairs, refresh-token rotation and sign-out."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from services.identity import passwords
from services.identity.accounts import email_key, failure_policy, normalise_email
from services.identity.errors import (EmailNotVerified, InvalidCredentials, RefreshTokenExpired,
                                      RefreshTokenInvalid, RefreshTokenReused)
from services.identity.keys import KeyStore
from services.identity.metrics import SIGN_INS
from services.identity.models import Account, AuthSession, MfaChallenge, RefreshToken
from services.identity.settings import Settings
from shared import jwt, opaque_tokens
from shared.database import new_id
from shared.throttle import Throttle

log = logging.getLogger("threshold.identity.sessions")


def access_token(account: Account, auth_session: AuthSession, keys: KeyStore, settings: Settings,
                 now: datetime) -> str:
    key = keys.signing_key()
    issued = int(now.timestamp())
    claims = {
        "iss": settings.issuer,
        "sub": account.id,
        "aud": settings.audience,
        "exp": issued + settings.access_token_ttl,
        "iat": issued,
        "jti": new_id(),
        "sid": auth_session.id,
        "email": account.email,
        "email_verified": account.email_verified,
        "given_name": account.first_name,
        "family_name": account.last_name,
        "amr": auth_session.amr.split(),
        "auth_time": int(auth_session.auth_time.timestamp()),
    }
    return jwt.sign(claims, key.signing, key.kid, "ES256")


def _token_pair(uow, account: Account, auth_session: AuthSession, keys: KeyStore, settings: Settings,
                now: datetime) -> dict:
    refresh, refresh_hash = opaque_tokens.generate()
    uow.refresh_tokens.add(RefreshToken(token_hash=refresh_hash, session_id=auth_session.id, created_at=now,
                                        expires_at=now + timedelta(seconds=settings.refresh_token_ttl)))
    return {
        "access_token": access_token(account, auth_session, keys, settings, now),
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl,
        "refresh_token": refresh,
    }


def start_session(uow, account: Account, amr: str, keys: KeyStore, settings: Settings, now: datetime) -> dict:
    """Open a session for an authenticated account (inside the caller's unit of work) and issue a pair."""
    auth_session = AuthSession(account_id=account.id, amr=amr, auth_time=now, created_at=now)
    uow.sessions.add(auth_session)
    return _token_pair(uow, account, auth_session, keys, settings, now)


MFA_METHODS = ["totp", "recovery_code"]


def mfa_challenge(uow, account: Account, settings: Settings, now: datetime, first_factor: str = "pwd") -> dict:
    """The answer to a passed first factor when 2FA is on: a short-lived mfa_token for the second step."""
    token, token_hash = opaque_tokens.generate()
    uow.mfa_challenges.add(MfaChallenge(token_hash=token_hash, account_id=account.id, created_at=now,
                                        expires_at=now + timedelta(seconds=settings.mfa_token_ttl), failures=0,
                                        first_factor=first_factor))
    return {"mfa_required": True, "mfa_token": token, "methods": MFA_METHODS, "expires_in": settings.mfa_token_ttl}


def sign_in(uow, throttle: Throttle, keys: KeyStore, settings: Settings, email: str, password: str,
            now: datetime) -> dict:
    """Check the password (the argon2 work happens outside any transaction) and open a session.

    Unknown email and wrong password fail alike, in the same time; failures are counted per
    address in the database, and past a few of them the address is blocked for a growing delay.
    """
    email = normalise_email(email)
    key = email_key("sign-in", email)
    earlier_failures = throttle.check_blocked(key)
    with uow:
        account = uow.accounts.by_email(email)
        password_hash = account.password_hash if account is not None else None
    if not passwords.verify(password_hash, password):
        throttle.record_failure(key, **failure_policy(settings))
        SIGN_INS.labels("pwd", "failure").inc()
        log.info("sign-in failed", extra={"event": "sign_in_failed"})
        raise InvalidCredentials()
    if not account.email_verified:
        raise EmailNotVerified()
    if earlier_failures:
        throttle.clear(key)
    with uow:
        account = uow.accounts.get(account.id)
        if passwords.needs_rehash(account.password_hash):
            account.password_hash = passwords.hash_password(password)
        if account.mfa_enabled:
            answer = mfa_challenge(uow, account, settings, now)
            uow.commit()
            SIGN_INS.labels("pwd", "mfa_required").inc()
            return answer
        pair = start_session(uow, account, "pwd", keys, settings, now)
        uow.commit()
    SIGN_INS.labels("pwd", "success").inc()
    log.info("sign-in succeeded", extra={"event": "sign_in_succeeded", "account_id": account.id})
    return pair


def refresh(uow, keys: KeyStore, settings: Settings, refresh_token: str, now: datetime) -> dict:
    """Rotate a refresh token. Presenting one that was already rotated ends the whole session."""
    with uow:
        row = uow.refresh_tokens.get(opaque_tokens.digest(refresh_token))
        if row is None:
            raise RefreshTokenInvalid()
        auth_session = uow.sessions.get(row.session_id)
        if auth_session is None or auth_session.revoked_at is not None:
            raise RefreshTokenInvalid()
        if row.rotated_at is not None or not uow.refresh_tokens.rotate(row, now):
            uow.sessions.revoke(auth_session.id, now)
            uow.commit()
            log.warning("refresh token reused; session revoked", extra={"event": "refresh_token_reused",
                                                                          "session_id": auth_session.id})
            raise RefreshTokenReused()
        if row.expires_at <= now:
            raise RefreshTokenExpired()
        account = uow.accounts.get(auth_session.account_id)
        pair = _token_pair(uow, account, auth_session, keys, settings, now)
        uow.commit()
        return pair


def sign_out(uow, refresh_token: str, now: datetime) -> None:
    """End the session of a refresh token. Unknown tokens are ignored (RFC 7009)."""
    with uow:
        row = uow.refresh_tokens.get(opaque_tokens.digest(refresh_token))
        if row is not None:
            uow.sessions.revoke(row.session_id, now)
            uow.commit()

