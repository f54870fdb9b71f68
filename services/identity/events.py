"""Every event identity publishes, each made by one constructor named for what happened.

The payloads are the contract with the consumers (../docs/events.md and CONTRACT.md list them); the
notifier mails four of these types, so a field it renders may only be added to, never renamed.
"""
from __future__ import annotations

from datetime import datetime

from shared.events import Event

ACCOUNT_REGISTERED = "identity.account.registered"
EMAIL_VERIFICATION_REQUESTED = "identity.email_verification.requested"
ACCOUNT_VERIFIED = "identity.account.verified"
PASSWORD_RESET_REQUESTED = "identity.password_reset.requested"
MFA_ENABLED = "identity.mfa.enabled"
MFA_DISABLED = "identity.mfa.disabled"
TYPES = (ACCOUNT_REGISTERED, EMAIL_VERIFICATION_REQUESTED, ACCOUNT_VERIFIED, PASSWORD_RESET_REQUESTED,
         MFA_ENABLED, MFA_DISABLED)


def account_registered(*, account_id: str, email: str, first_name: str, last_name: str) -> Event:
    return Event(ACCOUNT_REGISTERED, {"account_id": account_id, "email": email, "first_name": first_name,
                                      "last_name": last_name})


def email_verification_requested(*, account_id: str, email: str, first_name: str, verification_url: str,
                                 expires_at: datetime) -> Event:
    return Event(EMAIL_VERIFICATION_REQUESTED, {"account_id": account_id, "email": email, "first_name": first_name,
                                                "verification_url": verification_url,
                                                "expires_at": expires_at.isoformat()})


def account_verified(*, account_id: str, email: str) -> Event:
    return Event(ACCOUNT_VERIFIED, {"account_id": account_id, "email": email})


def password_reset_requested(*, account_id: str, email: str, first_name: str, reset_url: str,
                             expires_at: datetime) -> Event:
    return Event(PASSWORD_RESET_REQUESTED, {"account_id": account_id, "email": email, "first_name": first_name,
                                            "reset_url": reset_url, "expires_at": expires_at.isoformat()})


def mfa_enabled(*, account_id: str, email: str) -> Event:
    return Event(MFA_ENABLED, {"account_id": account_id, "email": email})


def mfa_disabled(*, account_id: str, email: str) -> Event:
    return Event(MFA_DISABLED, {"account_id": account_id, "email": email})
