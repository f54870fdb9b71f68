"""Two-factor authentication with TOTP: enrolment, recovery codes, the second sign-in step, turning it off."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from services.identity import events, one_time_tokens, totp
from services.identity.accounts import check_password, failure_policy
from services.identity.errors import (
    AccountNotFound,
    InvalidCode,
    MfaAlreadyEnabled,
    MfaEnrolmentNotStarted,
    MfaNotEnabled,
    MfaTokenExpired,
    MfaTokenInvalid,
    MfaUnavailable,
)
from services.identity.keys import KeyStore
from services.identity.metrics import SIGN_INS
from services.identity.models import Account, AuditRecord, Device, TotpCredential
from services.identity.sessions import start_session
from services.identity.settings import Settings
from shared import addresses, opaque_tokens
from shared.throttle import Throttle

if TYPE_CHECKING:
    from services.identity.unit_of_work import IdentityUnitOfWork

log = logging.getLogger("threshold.identity.mfa")
T = TypeVar("T")


def _throttle_key(account_id: str) -> str:
    return f"mfa:{account_id}"


def _check_code(uow: IdentityUnitOfWork, *, box: totp.SecretBox, account_id: str, code: str, now: datetime,
                allow_recovery: bool, confirmed: bool = True) -> bool:
    """True when `code` is a fresh TOTP code (or an unused recovery code); spends it atomically."""
    code = code.strip()
    if totp.looks_like_totp(code):
        credential = uow.totp.get(account_id)
        if credential is None or (credential.confirmed_at is not None) != confirmed:
            return False
        try:
            secret = box.decrypt(credential.secret_encrypted)
        except totp.SecretUnreadable:
            # The server's configuration, not the user's code: no failure is counted, the code is not spent.
            log.error("a TOTP secret cannot be decrypted with TOTP_ENCRYPTION_KEYS (missing key?)",
                      extra={"event": "totp_secret_unreadable", "account_id": account_id})
            raise MfaUnavailable() from None
        step = totp.matching_step(secret, code, now)
        return step is not None and uow.totp.accept_step(account_id, step)
    if allow_recovery:
        return uow.recovery_codes.use(account_id, totp.recovery_code_hash(code), now)
    return False


def _require_code(uow: IdentityUnitOfWork, *, box: totp.SecretBox, account_id: str, code: str, now: datetime,
                  allow_recovery: bool, confirmed: bool = True) -> None:
    if not _check_code(uow, box=box, account_id=account_id, code=code, now=now, allow_recovery=allow_recovery,
                       confirmed=confirmed):
        raise InvalidCode()


def _throttled(throttle: Throttle, *, settings: Settings, account_id: str, attempt: Callable[[], T]) -> T:
    """Run `attempt` under the account's code throttle (`Throttle.guess`): InvalidCode counts as a failure,
    success clears.

    The throttle has its own short statements, so this wraps the unit of work, never runs inside it."""
    try:
        return throttle.guess(_throttle_key(account_id), attempt, InvalidCode, **failure_policy(settings))
    except InvalidCode:
        log.info("2FA code rejected", extra={"event": "mfa_code_rejected", "account_id": account_id})
        raise


def _new_recovery_codes(uow: IdentityUnitOfWork, *, account_id: str, now: datetime) -> list[str]:
    codes = totp.new_recovery_codes()
    uow.recovery_codes.replace(account_id, [totp.recovery_code_hash(c) for c in codes], now)
    return codes


def _account(uow: IdentityUnitOfWork, account_id: str) -> Account:
    account = uow.accounts.get(account_id)
    if account is None:
        raise AccountNotFound()
    return account


def _turn_off(uow: IdentityUnitOfWork, *, account: Account, now: datetime) -> None:
    uow.totp.delete(account.id)
    uow.recovery_codes.delete_all(account.id)
    account.mfa_enabled = False
    account.updated_at = now
    uow.record(events.mfa_disabled(account_id=account.id, email=account.email))


@dataclass(frozen=True)
class TwoFactor:
    """The 2FA use cases of one request, with what every one of them needs bound once: the unit of
    work, the code throttle, the settings and the box that holds TOTP secrets."""

    uow: IdentityUnitOfWork
    _: KW_ONLY
    throttle: Throttle
    settings: Settings
    box: totp.SecretBox

    def start_enrolment(self, account_id: str, *, password: str, now: datetime) -> dict:
        """New secret, not active until confirmed with a code. Needs the password again."""
        uow = self.uow
        account = check_password(uow, throttle=self.throttle, settings=self.settings, account_id=account_id,
                                 password=password)
        if account.mfa_enabled:
            raise MfaAlreadyEnabled()
        secret = totp.new_secret()
        with uow:
            uow.totp.put(TotpCredential(account_id=account_id, secret_encrypted=self.box.encrypt(secret),
                                        created_at=now))
            uow.commit()
        uri = totp.provisioning_uri(secret, account.email, self.settings.mfa_issuer)
        return {"secret": secret, "otpauth_uri": uri, "qr_svg": totp.qr_svg(uri)}

    def confirm_enrolment(self, account_id: str, *, code: str, now: datetime) -> list[str]:
        """Turn 2FA on with a first valid code; returns the ten recovery codes (shown this once)."""
        uow = self.uow

        def attempt() -> list[str]:
            with uow:
                account = _account(uow, account_id)
                if account.mfa_enabled:
                    raise MfaAlreadyEnabled()
                credential = uow.totp.get(account_id)
                if credential is None:
                    raise MfaEnrolmentNotStarted()
                _require_code(uow, box=self.box, account_id=account_id, code=code, now=now, allow_recovery=False,
                              confirmed=False)
                credential.confirmed_at = now
                account.mfa_enabled = True
                account.updated_at = now
                codes = _new_recovery_codes(uow, account_id=account_id, now=now)
                uow.record(events.mfa_enabled(account_id=account_id, email=account.email))
                uow.commit()
                return codes

        codes = _throttled(self.throttle, settings=self.settings, account_id=account_id, attempt=attempt)
        log.info("2FA enabled", extra={"event": "mfa_enabled", "account_id": account_id})
        return codes

    def regenerate_recovery_codes(self, account_id: str, *, code: str, now: datetime) -> list[str]:
        """Replace every recovery code; needs a TOTP code."""
        uow = self.uow

        def attempt() -> list[str]:
            with uow:
                if not _account(uow, account_id).mfa_enabled:
                    raise MfaNotEnabled()
                _require_code(uow, box=self.box, account_id=account_id, code=code, now=now, allow_recovery=False)
                codes = _new_recovery_codes(uow, account_id=account_id, now=now)
                uow.commit()
                return codes

        return _throttled(self.throttle, settings=self.settings, account_id=account_id, attempt=attempt)

    def disable(self, account_id: str, *, code: str | None = None, password: str | None = None,
                now: datetime) -> None:
        """Turn 2FA off with a TOTP or recovery code, or with the password (exactly one of them; a wrong
        password counts against the sign-in throttle, like every password re-check); the owner gets a
        security notice."""
        uow = self.uow

        def attempt() -> None:
            with uow:
                account = _account(uow, account_id)
                if not account.mfa_enabled:
                    raise MfaNotEnabled()
                if code is not None:
                    _require_code(uow, box=self.box, account_id=account_id, code=code, now=now, allow_recovery=True)
                _turn_off(uow, account=account, now=now)
                uow.commit()

        if password is not None:
            check_password(uow, throttle=self.throttle, settings=self.settings, account_id=account_id,
                           password=password)
            attempt()
        else:
            _throttled(self.throttle, settings=self.settings, account_id=account_id, attempt=attempt)
        log.info("2FA disabled", extra={"event": "mfa_disabled", "account_id": account_id})

    def complete_sign_in(self, mfa_token: str, *, code: str, keys: KeyStore, device: Device, now: datetime) -> dict:
        """Second step: a TOTP or recovery code for the mfa_token opens the session (amr pwd+otp).

        Each wrong code counts against the token, which dies after `mfa_max_failures`, and against the
        account's code throttle."""
        uow, settings = self.uow, self.settings
        token_hash = opaque_tokens.digest(mfa_token)
        with uow:
            pending = uow.mfa_challenges.get(token_hash)
            if pending is not None and pending.failures >= settings.mfa_max_failures:
                raise MfaTokenInvalid()
            pending = one_time_tokens.live(pending, now, invalid=MfaTokenInvalid, expired=MfaTokenExpired)
            account_id = pending.account_id
            amr = f"{pending.first_factor} otp"

        def attempt() -> dict:
            # Counted before the code is checked, in one statement, so concurrent codes for one token get
            # `mfa_max_failures` checks in all; a right code spends the token, so its count no longer matters.
            with uow:
                if not uow.mfa_challenges.count_attempt(token_hash, settings.mfa_max_failures, now):
                    raise MfaTokenInvalid()
                uow.commit()
            try:
                with uow:
                    if not _check_code(uow, box=self.box, account_id=account_id, code=code, now=now,
                                       allow_recovery=True):
                        raise InvalidCode()
                    if not uow.mfa_challenges.use(token_hash, now):
                        raise MfaTokenInvalid()
                    pair = start_session(uow, account=_account(uow, account_id), amr=amr, keys=keys,
                                         settings=settings, now=now, device=device)
                    uow.commit()
                    return pair
            except MfaUnavailable:  # the server's fault: the try is given back
                with uow:
                    uow.mfa_challenges.give_back(token_hash)
                    uow.commit()
                raise

        try:
            pair = _throttled(self.throttle, settings=settings, account_id=account_id, attempt=attempt)
        except InvalidCode:
            SIGN_INS.labels("otp", "failure").inc()
            raise
        SIGN_INS.labels("otp", "success").inc()
        log.info("sign-in succeeded", extra={"event": "sign_in_succeeded", "account_id": account_id, "amr": amr})
        return pair


def admin_reset(uow: IdentityUnitOfWork, *, email: str, actor: str, reason: str, now: datetime) -> str:
    """Support path for a lost phone: turn 2FA off, keep an audit record, mail the owner. Returns the account id."""
    with uow:
        account = uow.accounts.by_email(addresses.lookup_form(email))
        if account is None:
            raise AccountNotFound(f"No account with the email {email!r}.")
        if not account.mfa_enabled and uow.totp.get(account.id) is None:
            raise MfaNotEnabled()
        _turn_off(uow, account=account, now=now)
        uow.audit.add(AuditRecord(at=now, actor=actor, action="mfa.reset", account_id=account.id, detail=reason))
        uow.commit()
    log.warning("2FA reset by support", extra={"event": "mfa_reset", "account_id": account.id, "actor": actor})
    return account.id


def rotate_encryption(uow: IdentityUnitOfWork, *, box: totp.SecretBox) -> int:
    """Re-encrypt every TOTP secret with the first configured key; returns how many."""
    with uow:
        credentials = uow.totp.all()
        for credential in credentials:
            credential.secret_encrypted = box.rotate(credential.secret_encrypted)
        uow.commit()
    return len(credentials)
