"""Identity's domain errors (no HTTP here: api/ maps them to statuses)."""
from __future__ import annotations

from shared.errors import DomainError


class EmailTaken(DomainError):
    code = "email_taken"
    message = "An account with this email already exists."


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    message = "The email or password is wrong."


class EmailNotVerified(DomainError):
    code = "email_not_verified"
    message = "Verify your email address before signing in; we can send the link again."


class OneTimeTokenError(DomainError):
    """Base of the errors of one-time links (verification, reset)."""

    message = "This link cannot be used."


class TokenInvalid(OneTimeTokenError):
    code = "token_invalid"
    message = "This link is not valid (unknown, already used, or for something else)."


class TokenExpired(OneTimeTokenError):
    code = "token_expired"
    message = "This link has expired; ask for a new one."


class RefreshTokenError(DomainError):
    """Base of refresh-token errors: the client must sign in again."""

    message = "The refresh token cannot be used; sign in again."


class RefreshTokenInvalid(RefreshTokenError):
    code = "token_invalid"
    message = "The refresh token is not valid or its session has ended."


class RefreshTokenExpired(RefreshTokenError):
    code = "token_expired"
    message = "The refresh token has expired."


class RefreshTokenReused(RefreshTokenError):
    code = "token_reused"
    message = "This refresh token was already used; the session has been ended for safety."


class AccountNotFound(DomainError):
    code = "not_found"
    message = "The account no longer exists."


class SessionNotFound(DomainError):
    code = "not_found"
    message = "There is no such session of this account."


class MfaStateConflict(DomainError):
    code = "mfa_state_conflict"
    message = "Two-factor authentication is not in the state this request needs."


class MfaAlreadyEnabled(MfaStateConflict):
    code = "mfa_already_enabled"
    message = "Two-factor authentication is already on; turn it off first to enrol a new authenticator."


class MfaNotEnabled(MfaStateConflict):
    code = "mfa_not_enabled"
    message = "Two-factor authentication is not on for this account."


class MfaEnrolmentNotStarted(MfaStateConflict):
    code = "mfa_enrolment_not_started"
    message = "Start enrolment (POST /v1/me/mfa/totp) before confirming it."


class InvalidCode(DomainError):
    code = "invalid_code"
    message = "The code is wrong, expired or already used."


class MfaUnavailable(DomainError):
    code = "mfa_unavailable"
    message = "Authenticator codes cannot be checked right now; use a recovery code or try again later."


class MfaTokenInvalid(TokenInvalid):
    message = "The mfa_token is not valid (unknown, used, or voided by wrong codes); sign in again."


class MfaTokenExpired(TokenExpired):
    message = "The mfa_token has expired; sign in again."


class InvalidClient(DomainError):
    code = "invalid_client"
    message = "Client authentication failed."
    challenge = 'Basic realm="threshold"'  # RFC 6749 5.2: the scheme the client may authenticate with


class InvalidScope(DomainError):
    code = "invalid_scope"
    message = "The requested scope is not allowed for this client."


class UnsupportedGrantType(DomainError):
    code = "unsupported_grant_type"
    message = "Only grant_type=client_credentials is supported here."


class AccountExists(DomainError):
    code = "account_exists"
    message = ("An account with this email exists. Sign in with its password first, then link this provider "
               "from your profile (POST /v1/me/identities with the link_code).")

    def __init__(self, link_code: str):
        super().__init__()
        self.extra = {"link_code": link_code}


class IdentityAlreadyLinked(DomainError):
    code = "identity_linked_elsewhere"
    message = "This provider account is already linked to another account."


class ProviderEmailMissing(DomainError):
    code = "email_missing"
    message = "The provider did not share an email address, which an account needs."


class ProviderEmailNotVerified(DomainError):
    code = "email_not_verified"
    message = ("The provider does not vouch for this email address, so no account is made from it. Sign up "
               "with email and password instead (and link the provider from your profile later).")
