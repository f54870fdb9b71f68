"""Identity's domain errors (no HTTP here: api/ maps them to statuses)."""
from __future__ import annotations

from shared.errors import DomainError


class EmailTaken(DomainError):
    """An account with this email already exists."""

    code = "email_taken"


class InvalidCredentials(DomainError):
    """The email or password is wrong."""

    code = "invalid_credentials"


class EmailNotVerified(DomainError):
    """Verify your email address before signing in; we can send the link again."""

    code = "email_not_verified"


class OneTimeTokenError(DomainError):
    """Base of the errors of one-time links (verification, reset)."""


class TokenInvalid(OneTimeTokenError):
    """This link is not valid (unknown, already used, or for something else)."""

    code = "token_invalid"


class TokenExpired(OneTimeTokenError):
    """This link has expired; ask for a new one."""

    code = "token_expired"


class RefreshTokenError(DomainError):
    """Base of refresh-token errors: the client must sign in again."""


class RefreshTokenInvalid(RefreshTokenError):
    """The refresh token is not valid or its session has ended."""

    code = "token_invalid"


class RefreshTokenExpired(RefreshTokenError):
    """The refresh token has expired."""

    code = "token_expired"


class RefreshTokenReused(RefreshTokenError):
    """This refresh token was already used; the session has been ended for safety."""

    code = "token_reused"


class AccountNotFound(DomainError):
    """The account no longer exists."""

    code = "not_found"


class MfaStateConflict(DomainError):
    """Two-factor authentication is not in the state this request needs."""

    code = "mfa_state_conflict"


class MfaAlreadyEnabled(MfaStateConflict):
    """Two-factor authentication is already on; turn it off first to enrol a new authenticator."""

    code = "mfa_already_enabled"


class MfaNotEnabled(MfaStateConflict):
    """Two-factor authentication is not on for this account."""

    code = "mfa_not_enabled"


class MfaEnrolmentNotStarted(MfaStateConflict):
    """Start enrolment (POST /v1/me/mfa/totp) before confirming it."""

    code = "mfa_enrolment_not_started"


class InvalidCode(DomainError):
    """The code is wrong, expired or already used."""

    code = "invalid_code"


class MfaUnavailable(DomainError):
    """Authenticator codes cannot be checked right now; use a recovery code or try again later."""

    code = "mfa_unavailable"


class MfaTokenInvalid(TokenInvalid):
    """The mfa_token is not valid (unknown, used, or voided by wrong codes); sign in again."""


class MfaTokenExpired(TokenExpired):
    """The mfa_token has expired; sign in again."""


class InvalidClient(DomainError):
    """Client authentication failed."""

    code = "invalid_client"
    challenge = 'Basic realm="threshold"'  # RFC 6749 5.2: the scheme the client may authenticate with


class InvalidScope(DomainError):
    """The requested scope is not allowed for this client."""

    code = "invalid_scope"


class UnsupportedGrantType(DomainError):
    """Only grant_type=client_credentials is supported here."""

    code = "unsupported_grant_type"


class AccountExists(DomainError):
    """An account with this email exists. Sign in with its password first, then link this provider
    from your profile (POST /v1/me/identities with the link_code)."""

    code = "account_exists"

    def __init__(self, link_code: str):
        super().__init__()
        self.extra = {"link_code": link_code}


class IdentityAlreadyLinked(DomainError):
    """This provider account is already linked to another account."""

    code = "identity_linked_elsewhere"


class ProviderEmailMissing(DomainError):
    """The provider did not share an email address, which an account needs."""

    code = "email_missing"


class ProviderEmailNotVerified(DomainError):
    """The provider does not vouch for this email address, so no account is made from it. Sign up with
    email and password instead (and link the provider from your profile later)."""

    code = "email_not_verified"
