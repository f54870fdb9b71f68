"""Identity's tables (SQLAlchemy 2 declarative, one metadata for the identity database)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.database import UTCDateTime, new_id, utcnow
from shared.outbox import define_outbox
from shared.throttle import define_throttles


class Model(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class Account(Model):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    # The Account document of the API: what `public()` gives and what `autocommit.Reads` selects.
    PUBLIC_FIELDS = ("id", "email", "first_name", "last_name", "email_verified", "mfa_enabled", "created_at")

    def public(self) -> dict:
        return {name: getattr(self, name) for name in self.PUBLIC_FIELDS}


class OneTimeToken(Model):
    """Email verification and password reset tokens: only the SHA-256 of the token is stored."""

    __tablename__ = "one_time_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(40))
    # None for a sign-in code of someone who has no account yet (OIDC): `data` says who they are.
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    data: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class Device:
    """Where a sign-in came from, kept on its session for the sessions list (each part cut to its column)."""

    user_agent: str | None = None
    ip_address: str | None = None

    @classmethod
    def of(cls, user_agent: str | None, ip_address: str | None) -> Device:
        return cls((user_agent or "")[:300] or None, (ip_address or "")[:45] or None)


class AuthSession(Model):
    """A signed-in device: the family of refresh tokens issued from one sign-in."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    amr: Mapped[str] = mapped_column(String(40))  # space-separated methods, e.g. "pwd otp"
    auth_time: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # The device that signed in, as the sessions list shows it (none on sessions from before revision 0007).
    user_agent: Mapped[str | None] = mapped_column(String(300))
    ip_address: Mapped[str | None] = mapped_column(String(45))


class RefreshToken(Model):
    """A refresh token of a session (only its SHA-256 is stored).

    A refresh inserts the next token, which names the one it replaces in `previous_hash`. The unique
    index there gives a token one successor at most: of two refreshes presenting the same token, exactly
    one gets its successor in, and a token that has a successor has been used (a reuse ends the session).
    """

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]  # how rotations were marked before revision 0005; read, not written
    previous_hash: Mapped[str | None] = mapped_column(String(64))


Index("uq_refresh_tokens_previous_hash", RefreshToken.previous_hash, unique=True)


class SigningKey(Model):
    """An access-token signing key. The private key is PKCS#8, encrypted with SECRET_KEY."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(10))
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activates_at: Mapped[datetime]


Index("ix_signing_keys_activates_at", SigningKey.activates_at)



class TotpCredential(Model):
    """An account's authenticator secret (encrypted). Active once `confirmed_at` is set."""

    __tablename__ = "totp_credentials"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    # The last accepted time step: a code is accepted only for a later step (RFC 6238 5.2, no replay).
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Model):
    __tablename__ = "recovery_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class MfaChallenge(Model):
    """The second step of a sign-in with 2FA: `mfa_token` (hashed), short-lived, dies after a few wrong codes."""

    __tablename__ = "mfa_challenges"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    failures: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None]
    first_factor: Mapped[str] = mapped_column(String(10), default="pwd", server_default="pwd")  # or "fed"


class AuditRecord(Model):
    """Security-relevant actions taken on an account by someone other than its owner (support, admins)."""

    __tablename__ = "audit_records"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class ServiceClient(Model):
    """A service allowed to get tokens with client credentials; only a SHA-256 of its secret is kept
    (the secret is 256 random bits, so a fast hash suffices and keeps token requests cheap)."""

    __tablename__ = "service_clients"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(500))  # space-separated
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FederatedIdentity(Model):
    """An account's identity at an OpenID provider, keyed by (issuer, subject) as OIDC requires."""

    __tablename__ = "federated_identities"

    issuer: Mapped[str] = mapped_column(String(300), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

class RelyingPartyRecord(Model):
    """An OpenID Provider client added with `python -m services.identity clients add` (those of OIDC_CLIENTS
    live in the settings). `metadata_json` holds the rest of the registration, in the OIDC_CLIENTS shape."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    metadata_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthorizationRequest(Model):
    """A relying party's `/authorize` request while the person signs in on the hosted pages, then the
    authorization code it ended in (only the code's SHA-256 is kept) and the grant that code opened."""

    __tablename__ = "authorization_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[str] = mapped_column(Text)  # the validated request, as JSON
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(String(36))
    auth_time: Mapped[datetime | None]
    amr: Mapped[str | None] = mapped_column(String(40))
    scope: Mapped[str | None] = mapped_column(String(500))
    workspace: Mapped[str | None] = mapped_column(Text)  # {"workspace_id", "organization_id", "workspace_role"}
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime | None]
    code_used_at: Mapped[datetime | None]
    grant_id: Mapped[str | None] = mapped_column(String(36))


class OAuthGrant(Model):
    """What one authorization code opened: the tokens of one client for one person and session.
    Revoking it ends its refresh tokens, and its access tokens at userinfo and introspection."""

    __tablename__ = "oauth_grants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    scope: Mapped[str] = mapped_column(String(500))
    auth_time: Mapped[datetime]
    amr: Mapped[str] = mapped_column(String(40))
    workspace: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class OAuthRefreshToken(Model):
    """A relying party's refresh token (SHA-256 only). Rotated like the first-party ones: the successor
    names it in `previous_hash`, unique, so a token is used once; presenting a used one revokes the grant."""

    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    previous_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


outbox = define_outbox(Model.metadata)
throttles = define_throttles(Model.metadata)
