"""One-time tokens: verification and reset links, federation login and link codes.

The one place that issues them and that spends them: load by hash, check the purpose, that it is unused
and unexpired, and mark it used in one conditional statement (two requests racing for one token: one
wins). Only the hash is stored.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.identity.errors import TokenExpired, TokenInvalid
from services.identity.models import OneTimeToken
from services.identity.unit_of_work import IdentityUnitOfWork
from shared import opaque_tokens


def issue(uow: IdentityUnitOfWork, *, purpose: str, ttl: int, now: datetime, account_id: str | None = None,
          data: str | None = None) -> tuple[str, datetime]:
    """A new token of `purpose` living `ttl` seconds, and its expiry; the token itself is never stored."""
    token, token_hash = opaque_tokens.generate()
    expires_at = now + timedelta(seconds=ttl)
    uow.tokens.add(OneTimeToken(token_hash=token_hash, purpose=purpose, account_id=account_id, created_at=now,
                                expires_at=expires_at, data=data))
    return token, expires_at


def find(uow: IdentityUnitOfWork, *, token: str, purpose: str) -> OneTimeToken:
    """The token's row, used or not, if it exists for `purpose`; else TokenInvalid. Spends nothing."""
    row = uow.tokens.get(opaque_tokens.digest(token))
    if row is None or row.purpose != purpose:
        raise TokenInvalid()
    return row


def live(row: Any, now: datetime, *, invalid: type[TokenInvalid] = TokenInvalid,
         expired: type[TokenExpired] = TokenExpired) -> Any:
    """`row` (a one-time token or an MFA challenge) if it may still be spent: missing or used is `invalid`,
    past its expiry `expired`."""
    if row is None or row.used_at is not None:
        raise invalid()
    if row.expires_at <= now:
        raise expired()
    return row


def spend(uow: IdentityUnitOfWork, *, token: str, purpose: str, now: datetime) -> OneTimeToken:
    """Spend a live token of `purpose` and return its row: TokenInvalid when unknown, for another purpose
    or used (also by a concurrent request a moment ago), TokenExpired when past its expiry."""
    row = live(find(uow, token=token, purpose=purpose), now)
    if not uow.tokens.use(row, now):
        raise TokenInvalid()
    return row
