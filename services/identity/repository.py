"""Identity's repositories: the only place (besides migrations) that queries its tables."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.identity.models import Account, AuthSession, OneTimeToken, RefreshToken, SigningKey


class Accounts:
    def __init__(self, session: Session):
        self.session = session

    def add(self, account: Account) -> None:
        self.session.add(account)
        self.session.flush()

    def get(self, account_id: str) -> Account | None:
        return self.session.get(Account, account_id)

    def by_email(self, email: str) -> Account | None:
        return self.session.scalars(select(Account).where(Account.email == email)).first()

    def many(self, ids: list[str]) -> list[Account]:
        return list(self.session.scalars(select(Account).where(Account.id.in_(ids))))


class OneTimeTokens:
    def __init__(self, session: Session):
        self.session = session

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


class Sessions:
    def __init__(self, session: Session):
        self.session = session

    def add(self, auth_session: AuthSession) -> None:
        self.session.add(auth_session)
        self.session.flush()

    def get(self, session_id: str) -> AuthSession | None:
        return self.session.get(AuthSession, session_id)

    def revoke(self, session_id: str, now: datetime) -> None:
        self.session.execute(
            update(AuthSession).where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now).execution_options(synchronize_session=False)
        )

    def revoke_all(self, account_id: str, now: datetime, keep: str | None = None) -> None:
        query = update(AuthSession).where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None))
        if keep is not None:
            query = query.where(AuthSession.id != keep)
        self.session.execute(query.values(revoked_at=now).execution_options(synchronize_session=False))


class RefreshTokens:
    def __init__(self, session: Session):
        self.session = session

    def add(self, token: RefreshToken) -> None:
        self.session.add(token)

    def get(self, token_hash: str) -> RefreshToken | None:
        return self.session.get(RefreshToken, token_hash)

    def rotate(self, token: RefreshToken, now: datetime) -> bool:
        """Mark the token rotated out; False when it already was (a reuse, or a concurrent refresh)."""
        result = self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token.token_hash, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


class SigningKeys:
    def __init__(self, session: Session):
        self.session = session

    def add(self, key: SigningKey) -> None:
        self.session.add(key)

    def all(self) -> list[SigningKey]:
        return list(self.session.scalars(select(SigningKey).order_by(SigningKey.activates_at)))
