"""Account use cases: sign-up, email verification, profile, password change and reset."""
from __future__ import annotations

import hashlib
from datetime import datetime

from services.identity import events, one_time_tokens, passwords
from services.identity.autocommit import Reads
from services.identity.errors import AccountNotFound, EmailTaken, InvalidCredentials, TokenInvalid
from services.identity.models import Account, OneTimeToken
from services.identity.settings import Settings
from services.identity.unit_of_work import IdentityUnitOfWork
from shared import addresses
from shared.errors import RateLimited
from shared.throttle import Throttle

EMAIL_VERIFICATION = "email_verification"
PASSWORD_RESET = "password_reset"


def email_key(prefix: str, email: str) -> str:
    """Throttle key for an address, without storing the address itself."""
    return f"{prefix}:{hashlib.sha256(addresses.lookup_form(email).encode()).hexdigest()[:40]}"


def _issue_token(uow: IdentityUnitOfWork, *, account: Account, purpose: str, ttl: int,
                 now: datetime) -> tuple[str, datetime]:
    uow.tokens.expire_unused(account.id, purpose, now)
    return one_time_tokens.issue(uow, purpose=purpose, ttl=ttl, now=now, account_id=account.id)


def record_verification_mail(uow: IdentityUnitOfWork, *, account: Account, settings: Settings, now: datetime) -> None:
    token, expires_at = _issue_token(uow, account=account, purpose=EMAIL_VERIFICATION,
                                     ttl=settings.email_verification_ttl, now=now)
    uow.record(events.email_verification_requested(
        account_id=account.id, email=account.email, first_name=account.first_name,
        verification_url=f"{settings.links_url}/verify-email?token={token}", expires_at=expires_at))


def register(uow: IdentityUnitOfWork, *, settings: Settings, email: str, password: str, first_name: str,
             last_name: str, now: datetime) -> dict:
    """Create an unverified account and, in the same transaction, the verification mail event."""
    email = addresses.normalise(email)  # the API has refused what this would; other callers get ValueError
    passwords.check_policy(password, email, settings.password_min_length)
    password_hash = passwords.hash_password(password)
    with uow:
        if uow.accounts.by_email(email) is not None:
            raise EmailTaken()
        account = Account(email=email, password_hash=password_hash, first_name=first_name, last_name=last_name,
                          email_verified=False, mfa_enabled=False, created_at=now, updated_at=now)
        uow.accounts.add(account)
        uow.record(events.account_registered(account_id=account.id, email=email, first_name=first_name,
                                             last_name=last_name))
        record_verification_mail(uow, account=account, settings=settings, now=now)
        uow.commit()
        return account.public()


def _address_allowance(throttle: Throttle, *, prefix: str, email: str, settings: Settings) -> bool:
    """Per-address cooldown and hourly cap for mails we send on request; False means skip quietly."""
    try:
        throttle.hit(email_key(prefix + "-cooldown", email), 1, max(settings.resend_cooldown, 1))
        throttle.hit(email_key(prefix + "-hourly", email), settings.resend_hourly_cap, 3600)
    except RateLimited:
        return False
    return True


def resend_verification(uow: IdentityUnitOfWork, *, throttle: Throttle, settings: Settings, email: str,
                        now: datetime) -> None:
    """Send the verification mail again if the address has an unverified account. Silent either way."""
    if not _address_allowance(throttle, prefix="verify", email=email, settings=settings):
        return
    with uow:
        account = uow.accounts.by_email(addresses.lookup_form(email))
        if account is None or account.email_verified:
            return
        record_verification_mail(uow, account=account, settings=settings, now=now)
        uow.commit()


def _verification_token(uow: IdentityUnitOfWork, *, token: str, now: datetime) -> OneTimeToken:
    """A verification token, used or live: a second click on the link still shows its account. Spends nothing."""
    row = one_time_tokens.find(uow, token=token, purpose=EMAIL_VERIFICATION)
    return row if row.used_at is not None else one_time_tokens.live(row, now)


def _verification_account(uow: IdentityUnitOfWork, *, row: OneTimeToken, used: bool) -> Account:
    """The account a verification token names; a used token still shows it only once it is verified."""
    account = _token_account(uow, row)
    if account is None or (used and not account.email_verified):
        raise TokenInvalid()
    return account


def _token_account(uow: IdentityUnitOfWork, row: OneTimeToken) -> Account | None:
    """The account a verification or reset token was issued for (these are always issued for one)."""
    return uow.accounts.get(row.account_id) if row.account_id is not None else None


def verification_link(uow: IdentityUnitOfWork, *, token: str, now: datetime) -> dict:
    """The account a verification link would confirm, read without spending the token: the page a
    link opens shows this and a button, and only the button's POST (`confirm_email`) changes anything."""
    with uow:
        row = _verification_token(uow, token=token, now=now)
        return _verification_account(uow, row=row, used=row.used_at is not None).public()


def confirm_email(uow: IdentityUnitOfWork, *, token: str, now: datetime) -> dict:
    """Verify the address. Confirming again with the same token is harmless (a second click, a retry)."""
    with uow:
        row = _verification_token(uow, token=token, now=now)
        already_used = row.used_at is not None
        if not already_used:
            try:
                one_time_tokens.spend(uow, token=token, purpose=EMAIL_VERIFICATION, now=now)
            except TokenInvalid:  # a concurrent confirmation spent it a moment ago
                already_used = True
        account = _verification_account(uow, row=row, used=already_used)
        if not account.email_verified:
            account.email_verified = True
            account.updated_at = now
            uow.record(events.account_verified(account_id=account.id, email=account.email))
        uow.commit()
        return account.public()


def get_account(reads: Reads, *, account_id: str) -> dict:
    account = reads.public_account(account_id)
    if account is None:
        raise AccountNotFound()
    return account


def update_profile(uow: IdentityUnitOfWork, *, account_id: str, changes: dict, now: datetime) -> dict:
    with uow:
        account = uow.accounts.get(account_id)
        if account is None:
            raise AccountNotFound()
        for name in ("first_name", "last_name"):
            if name in changes:
                setattr(account, name, changes[name])
        account.updated_at = now
        uow.commit()
        return account.public()


def failure_policy(settings: Settings) -> dict:
    """How wrong guesses at a secret (passwords, codes, client secrets) block a target: see Throttle.guess."""
    return {"free_failures": settings.sign_in_free_failures, "base_delay": settings.sign_in_base_delay,
            "max_delay": settings.sign_in_max_delay, "forget_after": settings.sign_in_max_delay * 4}


def check_password(uow: IdentityUnitOfWork, *, throttle: Throttle, settings: Settings, account_id: str,
                   password: str) -> Account:
    """Re-check a signed-in account's password (throttled like sign-in); returns the account, detached."""
    with uow:
        account = uow.accounts.get(account_id)
        if account is None:
            raise AccountNotFound()

    def check() -> None:
        if not passwords.verify(account.password_hash, password):
            raise InvalidCredentials("The password is wrong.")

    throttle.guess(email_key("sign-in", account.email), check, InvalidCredentials, **failure_policy(settings))
    return account


def change_password(uow: IdentityUnitOfWork, *, throttle: Throttle, settings: Settings, account_id: str,
                    session_id: str, current_password: str, new_password: str, now: datetime) -> None:
    """Change the password after checking the current one; every other session is signed out."""
    email = check_password(uow, throttle=throttle, settings=settings, account_id=account_id,
                           password=current_password).email
    passwords.check_policy(new_password, email, settings.password_min_length, field="new_password")
    new_hash = passwords.hash_password(new_password)
    with uow:
        account = uow.accounts.get(account_id)
        assert account is not None  # check_password read it a moment ago
        account.password_hash = new_hash
        account.updated_at = now
        uow.sessions.revoke_all(account_id, now, keep=session_id)
        uow.commit()


def request_password_reset(uow: IdentityUnitOfWork, *, throttle: Throttle, settings: Settings, email: str,
                           now: datetime) -> None:
    """Mail a reset link if the account exists. The answer is the same either way."""
    if not _address_allowance(throttle, prefix="reset", email=email, settings=settings):
        return
    with uow:
        account = uow.accounts.by_email(addresses.lookup_form(email))
        if account is None:
            return
        token, expires_at = _issue_token(uow, account=account, purpose=PASSWORD_RESET,
                                         ttl=settings.password_reset_ttl, now=now)
        uow.record(events.password_reset_requested(
            account_id=account.id, email=account.email, first_name=account.first_name,
            reset_url=f"{settings.links_url}/reset-password?token={token}", expires_at=expires_at))
        uow.commit()


def reset_password(uow: IdentityUnitOfWork, *, throttle: Throttle, settings: Settings, token: str, new_password: str,
                   now: datetime) -> None:
    """Set a new password with a reset token; every session is signed out. 2FA stays on."""
    with uow:
        row = one_time_tokens.live(one_time_tokens.find(uow, token=token, purpose=PASSWORD_RESET), now)  # spent below
        account = _token_account(uow, row)
        assert account is not None  # a token goes with its account (ON DELETE CASCADE)
        email = account.email
    passwords.check_policy(new_password, email, settings.password_min_length, field="new_password")
    new_hash = passwords.hash_password(new_password)
    with uow:
        row = one_time_tokens.spend(uow, token=token, purpose=PASSWORD_RESET, now=now)
        account = _token_account(uow, row)
        assert account is not None
        account.password_hash = new_hash
        account.updated_at = now
        if not account.email_verified:
            # Following the link proved the address, as a verification link would have.
            account.email_verified = True
            uow.record(events.account_verified(account_id=account.id, email=account.email))
        uow.sessions.revoke_all(account.id, now)
        uow.commit()
    throttle.clear_every_source(email_key("sign-in", email))
