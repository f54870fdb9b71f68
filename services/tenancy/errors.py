"""Tenancy's domain errors (api/ maps them to statuses)."""
from __future__ import annotations

from shared.errors import DomainError, Unavailable


class NotFound(DomainError):
    code = "not_found"
    message = "Not found."


class Forbidden(DomainError):
    code = "forbidden"
    message = "Your role does not allow this."


class EmailNotVerified(DomainError):
    code = "email_not_verified"
    message = "Verify your email address first."


class Conflict(DomainError):
    code = "conflict"
    message = "The request conflicts with the current state."


class AlreadyMember(Conflict):
    code = "already_member"
    message = "This person is already a member of the workspace."


class InvitationPending(Conflict):
    code = "invitation_pending"
    message = "An invitation to this address is already pending for this workspace."


class LastOwner(Conflict):
    code = "last_owner"
    message = "The last owner cannot leave or be demoted; make someone else owner first."


class LastWorkspace(Conflict):
    code = "last_workspace"
    message = "An organization keeps at least one workspace; delete the organization instead."


class InvitationTokenInvalid(DomainError):
    code = "token_invalid"
    message = "The invitation link is not valid."


class InvitationExpired(DomainError):
    code = "token_expired"
    message = "The invitation has expired; ask for a new one."


class IdentityUnavailable(Unavailable):
    """503 `dependency_unavailable` with Retry-After, as every shared `Unavailable`."""

    message = "The identity service did not answer; try again shortly."


class InvalidCursor(DomainError):
    """A list's `cursor` argument that is not the `next` of a page of that list."""

    code = "validation_failed"
    field = "cursor"
    message = "The cursor is not one this list gave out; start again without it."
