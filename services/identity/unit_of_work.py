"""Identity's unit of work: one transaction with its repositories and its outbox."""
from __future__ import annotations

from sqlalchemy.orm import sessionmaker

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
    relying_parties: repository.RelyingPartyRecords
    authorization_requests: repository.AuthorizationRequests
    grants: repository.OAuthGrants
    op_refresh_tokens: repository.OAuthRefreshTokens

    def __init__(self, session_factory: sessionmaker, request_id: str | None = None):
        super().__init__(session_factory, outbox, SOURCE, request_id)

    def open_repositories(self) -> None:
        self.accounts = repository.Accounts(self)
        self.tokens = repository.OneTimeTokens(self)
        self.sessions = repository.Sessions(self)
        self.refresh_tokens = repository.RefreshTokens(self)
        self.signing_keys = repository.SigningKeys(self)
        self.totp = repository.TotpCredentials(self)
        self.recovery_codes = repository.RecoveryCodes(self)
        self.mfa_challenges = repository.MfaChallenges(self)
        self.audit = repository.AuditRecords(self)
        self.clients = repository.ServiceClients(self)
        self.federated = repository.FederatedIdentities(self)
        self.relying_parties = repository.RelyingPartyRecords(self)
        self.authorization_requests = repository.AuthorizationRequests(self)
        self.grants = repository.OAuthGrants(self)
        self.op_refresh_tokens = repository.OAuthRefreshTokens(self)
