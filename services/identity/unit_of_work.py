"""Identity's unit of work: one transaction with its repositories and its outbox."""
from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from services.identity import repository
from services.identity.models import outbox
from shared.unit_of_work import UnitOfWork

SOURCE = "/threshold/identity"


class IdentityUnitOfWork(UnitOfWork):
    accounts: repository.Accounts
    tokens: repository.OneTimeTokens
    sessions: repository.Sessions
    refresh_tokens: repository.RefreshTokens
    signing_keys: repository.SigningKeys
    totp: repository.TotpCredentials
    recovery_codes: repository.RecoveryCodes
    mfa_challenges: repository.MfaChallenges
    audit: repository.AuditRecords
    clients: repository.ServiceClients
    federated: repository.FederatedIdentities

    def __init__(self, session_factory: sessionmaker, request_id: str | None = None):
        super().__init__(session_factory, outbox, SOURCE, request_id)

    def open_repositories(self, session: Session) -> None:
        self.accounts = repository.Accounts(session)
        self.tokens = repository.OneTimeTokens(session)
        self.sessions = repository.Sessions(session)
        self.refresh_tokens = repository.RefreshTokens(session)
        self.signing_keys = repository.SigningKeys(session)
        self.totp = repository.TotpCredentials(session)
        self.recovery_codes = repository.RecoveryCodes(session)
        self.mfa_challenges = repository.MfaChallenges(session)
        self.audit = repository.AuditRecords(session)
        self.clients = repository.ServiceClients(session)
        self.federated = repository.FederatedIdentities(session)
