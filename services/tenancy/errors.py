"""Tenancy's domain errors (api/ maps them to statuses)."""
from __future__ import annotations

from shared.errors import DomainError


class NotFound(DomainError):
    """Not found."""

    code = "not_found"


class Forbidden(DomainError):
    """Your role does not allow this."""

    code = "forbidden"


class EmailNotVerified(DomainError):
    """Verify your email address first."""

    code = "email_not_verified"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    code = "conflict"


class AlreadyMember(Conflict):
    """This person is already a member of the workspace."""

    code = "already_member"


class InvitationPending(Conflict):
    """An invitation to this address is already pending for this workspace."""

    code = "invitation_pending"


class LastOwner(Conflict):
    """The last owner cannot leave or be demoted; make someone else owner first."""

    code = "last_owner"


class LastWorkspace(Conflict):
    """An organization keeps at least one workspace; delete the organization instead."""

    code = "last_workspace"


class InvitationTokenInvalid(DomainError):
    """The invitation link is not valid."""

    code = "token_invalid"


class InvitationExpired(DomainError):
    """The invitation has expired; ask for a new one."""

    code = "token_expired"


class IdentityUnavailable(DomainError):
    """The identity service did not answer; try again shortly."""

    code = "dependency_unavailable"
    retry_after = 5  # seconds, sent as Retry-After: about what identity needs to restart or fail over


class InvalidCursor(DomainError):
    """A list's `cursor` argument that is not the `next` of a page of that list."""

    code = "validation_failed"
    field = "cursor"
    message = "The cursor is not one this list gave out; start again without it."

    def __init__(self):
        super().__init__(self.message)
