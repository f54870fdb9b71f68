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
