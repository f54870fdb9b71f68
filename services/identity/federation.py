"""Accounts through an OpenID provider: one-time login codes, first and returning sign-in, linking.

The provider's verified claims are kept with a one-time `login_code` (60 s) that the callback hands
to the browser; `POST /v1/sessions/oidc` turns it into a session, creating the account on a first
sign-in. An existing password account is linked silently only when the provider vouches for the
email, the account's own address is verified, and the operator allows linking for that provider
(a pre-registered, unverified account may not be its owner's); otherwise the answer is 409 with a
`link_code` the person uses, once signed in with the password, to link from their profile.

No account is created from an address the provider does not vouch for: whoever holds that provider
identity has not shown they own the address, and the address's real owner could otherwise verify (or
reset into) an account someone else still signs in to.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime

from services.identity import events, one_time_tokens
from services.identity.errors import (
    AccountExists,
    AccountNotFound,
    IdentityAlreadyLinked,
    ProviderEmailMissing,
    ProviderEmailNotVerified,
    TokenInvalid,
)
from services.identity.keys import KeyStore
from services.identity.metrics import SIGN_INS
from services.identity.models import Account, Device, FederatedIdentity
from services.identity.oidc import ProviderConfig
from services.identity.sessions import mfa_challenge, start_session
from services.identity.settings import Settings
from services.identity.unit_of_work import IdentityUnitOfWork
from shared import addresses, names

log = logging.getLogger("threshold.identity.federation")
LOGIN_CODE = "oidc_login"
LINK_CODE = "oidc_link"
LOGIN_CODE_TTL = 60
LINK_CODE_TTL = 600


def _code(uow: IdentityUnitOfWork, *, purpose: str, ttl: int, data: dict, now: datetime) -> str:
    return one_time_tokens.issue(uow, purpose=purpose, ttl=ttl, now=now, data=json.dumps(data))[0]


def issue_login_code(uow: IdentityUnitOfWork, *, provider: ProviderConfig, claims: dict, now: datetime) -> str:
    """Called by the callback once the ID token is verified; nothing about accounts is decided yet."""
    data = {"provider": provider.name, "issuer": claims["iss"], "subject": str(claims["sub"]),
            "email": claims.get("email"), "email_verified": claims.get("email_verified") is True,
            "given_name": claims.get("given_name"), "family_name": claims.get("family_name")}
    with uow:
        code = _code(uow, purpose=LOGIN_CODE, ttl=LOGIN_CODE_TTL, data=data, now=now)
        uow.commit()
    return code


def _spend(uow: IdentityUnitOfWork, *, code: str, purpose: str, now: datetime) -> dict:
    return json.loads(one_time_tokens.spend(uow, token=code, purpose=purpose, now=now).data or "{}")


def _name(value, fallback: str) -> str:
    """The provider's name if it passes our name rule (people read it in mail), else `fallback`, else "-"."""
    for text in (" ".join(str(value or "").split())[:100], fallback):
        try:
            names.check_name(text)
        except names.NameRejected:
            continue
        return text
    return "-"


def _new_account(uow: IdentityUnitOfWork, *, data: dict, now: datetime) -> Account:
    try:
        email = addresses.normalise(data["email"])
    except addresses.AddressRejected:
        raise ProviderEmailMissing("The provider shared an email address we cannot send mail to, which an "
                                   "account needs.") from None
    account = Account(email=email, password_hash=None, first_name=_name(data.get("given_name"), email.split("@")[0]),
                      last_name=_name(data.get("family_name"), "-"), email_verified=True,
                      mfa_enabled=False, created_at=now, updated_at=now)
    uow.accounts.add(account)
    uow.record(events.account_registered(account_id=account.id, email=email, first_name=account.first_name,
                                         last_name=account.last_name))
    return account


def sign_in(uow: IdentityUnitOfWork, *, keys: KeyStore, settings: Settings, providers: dict[str, ProviderConfig],
            login_code: str, now: datetime, device: Device) -> dict:
    """A session (amr fed) for the person behind the login code; 2FA only where the provider requires it."""
    with uow:
        data = _spend(uow, code=login_code, purpose=LOGIN_CODE, now=now)
        provider = providers.get(data["provider"])
        if provider is None:
            raise TokenInvalid()
        linked = uow.federated.get(data["issuer"], data["subject"])
        if linked is not None:
            account = uow.accounts.get(linked.account_id)
            assert account is not None  # a linked identity goes with its account (ON DELETE CASCADE)
        else:
            if not isinstance(data.get("email"), str) or "@" not in data["email"]:
                raise ProviderEmailMissing()
            account = uow.accounts.by_email(addresses.lookup_form(data["email"]))
            # Never silently into an account whose own address is unproven: whoever registered it may not
            # own the address (pre-account hijacking); they link from the profile once it is theirs.
            if account is not None and not (provider.allow_linking and data["email_verified"]
                                            and account.email_verified):
                link_code = _code(uow, purpose=LINK_CODE, ttl=LINK_CODE_TTL, data=data, now=now)
                uow.commit()  # the login code stays spent; the link code is what the person uses next
                raise AccountExists(link_code)
            if account is None:
                if not data["email_verified"]:
                    raise ProviderEmailNotVerified()
                account = _new_account(uow, data=data, now=now)
            uow.federated.add(FederatedIdentity(issuer=data["issuer"], subject=data["subject"],
                                                provider=provider.name, account_id=account.id,
                                                email=data.get("email"), created_at=now))
        if provider.require_mfa and account.mfa_enabled:
            answer = mfa_challenge(uow, account=account, settings=settings, now=now, first_factor="fed")
        else:
            answer = start_session(uow, account=account, amr="fed", keys=keys, settings=settings, now=now,
                                   device=device)
        uow.commit()
    SIGN_INS.labels("fed", "mfa_required" if "mfa_token" in answer else "success").inc()
    log.info("federated sign-in", extra={"event": "sign_in_succeeded", "account_id": account.id,
                                          "provider": provider.name})
    return answer


def link(uow: IdentityUnitOfWork, *, account_id: str, link_code: str, now: datetime) -> list[dict]:
    """Link the provider identity behind `link_code` to the signed-in account."""
    with uow:
        account = uow.accounts.get(account_id)
        if account is None:
            raise AccountNotFound()
        data = _spend(uow, code=link_code, purpose=LINK_CODE, now=now)
        existing = uow.federated.get(data["issuer"], data["subject"])
        if existing is not None and existing.account_id != account_id:
            raise IdentityAlreadyLinked()
        if existing is None:
            uow.federated.add(FederatedIdentity(issuer=data["issuer"], subject=data["subject"],
                                                provider=data["provider"], account_id=account_id,
                                                email=data.get("email"), created_at=now))
        uow.commit()
        return [_document(i) for i in uow.federated.of_account(account_id)]


def _document(identity: FederatedIdentity) -> dict:
    return {"provider": identity.provider, "issuer": identity.issuer, "subject": identity.subject,
            "email": identity.email, "created_at": identity.created_at}


def identities(uow: IdentityUnitOfWork, *, account_id: str) -> list[dict]:
    with uow:
        return [_document(i) for i in uow.federated.of_account(account_id)]
