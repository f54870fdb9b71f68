"""Invitations by email into a workspace: invite, list mine, accept, revoke or decline."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from services.tenancy import events
from services.tenancy.access import Caller, require_role, workspace_role
from services.tenancy.directory import IdentityDirectory
from services.tenancy.errors import (
    AlreadyMember,
    Forbidden,
    InvitationExpired,
    InvitationPending,
    InvitationTokenInvalid,
    NotFound,
)
from services.tenancy.models import RANK, Invitation, OrganizationMember, WorkspaceMember
from services.tenancy.pagination import Keyset, PageRequest
from services.tenancy.unit_of_work import TenancyUnitOfWork
from shared import addresses, opaque_tokens
from shared.throttle import Throttle


@dataclass(frozen=True)
class InvitationLimits:
    """How many invitations one person may send per hour, and one workspace receive per day (each invitation
    is a mail to an address of the inviter's choosing)."""

    throttle: Throttle
    per_inviter_per_hour: int
    per_workspace_per_day: int

    def count(self, inviter_id: str, workspace_id: str) -> None:
        """Count one invitation; RateLimited (with the wait) past either limit. Refused ones count too."""
        self.throttle.hit(f"invitations:inviter:{inviter_id}", self.per_inviter_per_hour, 3600)
        self.throttle.hit(f"invitations:workspace:{workspace_id}", self.per_workspace_per_day, 86400)

INVITATIONS = Keyset("invitations", datetime, str)


def invitation_document(invitation: Invitation, workspace_name: str | None = None,
                        organization: dict | None = None) -> dict:
    document = {"id": invitation.id, "workspace_id": invitation.workspace_id, "email": invitation.email,
                "role": invitation.role, "status": invitation.status, "created_at": invitation.created_at,
                "expires_at": invitation.expires_at}
    if workspace_name is not None:
        document["workspace_name"] = workspace_name
    if organization is not None:
        document["organization"] = organization
    return document


def invite(uow: TenancyUnitOfWork, *, directory: IdentityDirectory, limits: InvitationLimits, caller: Caller,
           workspace_id: str, email: str, role: str, accept_base_url: str, ttl: int, now: datetime) -> dict:
    """Invite an address; the notifier mails it an accept link. Owners may invite owners. Counted against
    the inviter's and the workspace's limits once the caller may invite (outsiders cannot spend them)."""
    email = addresses.normalise(email)  # the API has refused what this would; other callers get ValueError
    with uow:
        _workspace, caller_role = workspace_role(uow, workspace_id=workspace_id, user_id=caller.user_id)
        require_role(caller_role, "admin")
        if RANK[role] > RANK[caller_role]:
            raise Forbidden("You cannot invite with a role above your own.")
        member_ids = [m.user_id for m in uow.workspaces.members(workspace_id)]
    limits.count(caller.user_id, workspace_id)
    members = directory.accounts(member_ids)
    if any(str(account.get("email", "")).lower() == email for account in members.values()):
        raise AlreadyMember()
    token, token_hash = opaque_tokens.generate()
    with uow:
        uow.workspaces.lock(workspace_id)  # a double submit finds the first invitation pending, not a 500
        workspace, _role = workspace_role(uow, workspace_id=workspace_id, user_id=caller.user_id)
        uow.invitations.expire_stale(now, workspace_id=workspace_id, email=email)
        if uow.invitations.pending_for(workspace_id, email) is not None:
            raise InvitationPending()
        invitation = Invitation(workspace_id=workspace_id, email=email, role=role, token_hash=token_hash,
                                invited_by=caller.user_id, inviter_name=caller.name, status="pending", created_at=now,
                                expires_at=now + timedelta(seconds=ttl))
        uow.invitations.add(invitation)
        accept_url = f"{accept_base_url}?{urlencode({'invitation': invitation.id, 'token': token})}"
        uow.record(events.invitation_created(
            invitation_id=invitation.id, workspace_id=workspace_id, workspace_name=workspace.name, email=email,
            inviter_name=caller.name, accept_url=accept_url, expires_at=invitation.expires_at, role=role))
        uow.commit()
        return invitation_document(invitation, workspace.name)


def list_mine(uow: TenancyUnitOfWork, *, caller: Caller, now: datetime, page: PageRequest) -> dict:
    """A page of the invitations pending for the caller's verified email, oldest first."""
    after = INVITATIONS.position(page.cursor)
    if not caller.email_verified:
        return INVITATIONS.page([], None)
    with uow:
        rows, last = uow.invitations.pending_for_email(caller.email, now, after, page.limit)
        return INVITATIONS.page([invitation_document(inv, ws.name, {"id": org.id, "name": org.name})
                                 for inv, ws, org in rows], last)


def _visible_to_invitee(invitation: Invitation | None, caller: Caller) -> Invitation:
    if invitation is None or not caller.email_verified or invitation.email != caller.email:
        raise NotFound()
    return invitation


def accept(uow: TenancyUnitOfWork, *, caller: Caller, invitation_id: str, token: str, now: datetime) -> dict:
    """Only the holder of the invited, verified address accepts, with the token from the mail."""
    with uow:
        invitation = _visible_to_invitee(uow.invitations.get(invitation_id, lock=True), caller)  # double clicks
        if invitation.token_hash != opaque_tokens.digest(token) or invitation.status in ("revoked", "accepted"):
            raise InvitationTokenInvalid()
        if invitation.status == "expired" or invitation.expires_at <= now:
            raise InvitationExpired()
        workspace = uow.workspaces.get(invitation.workspace_id)
        assert workspace is not None  # an invitation goes with its workspace (ON DELETE CASCADE)
        uow.organizations.lock(workspace.organization_id)  # one person accepting two invitations at once
        if uow.workspaces.membership(workspace.id, caller.user_id) is not None:
            raise AlreadyMember()
        uow.workspaces.add(WorkspaceMember(workspace_id=workspace.id, user_id=caller.user_id, role=invitation.role,
                                           created_at=now))
        if uow.organizations.membership(workspace.organization_id, caller.user_id) is None:
            uow.organizations.add(OrganizationMember(organization_id=workspace.organization_id, user_id=caller.user_id,
                                                     role="member", created_at=now))
        invitation.status = "accepted"
        invitation.accepted_by = caller.user_id
        uow.record(events.member_added(workspace_id=workspace.id, user_id=caller.user_id, role=invitation.role))
        uow.commit()
        return {"workspace_id": workspace.id, "organization_id": workspace.organization_id,
                "user_id": caller.user_id, "role": invitation.role, "joined_at": now}


def preview(uow: TenancyUnitOfWork, *, invitation_id: str, token: str, now: datetime) -> dict:
    """What the mail's link invites to, for whoever holds the link (signed out too): the token proves it, and
    is only compared, never spent. An unknown invitation or a wrong token: NotFound; an expired one:
    InvitationExpired. Accepted and revoked ones answer with their state."""
    with uow:
        invitation = uow.invitations.get(invitation_id)
        if invitation is None or invitation.token_hash != opaque_tokens.digest(token):
            raise NotFound()
        if invitation.status == "expired" or (invitation.status == "pending" and invitation.expires_at <= now):
            raise InvitationExpired()
        workspace = uow.workspaces.get(invitation.workspace_id)
        assert workspace is not None  # an invitation goes with its workspace, a workspace with its organization
        organization = uow.organizations.get(workspace.organization_id)
        assert organization is not None
        return {"id": invitation.id, "workspace_id": workspace.id, "organization_name": organization.name,
                "workspace_name": workspace.name,
                "inviter_name": invitation.inviter_name, "email": invitation.email, "role": invitation.role,
                "expires_at": invitation.expires_at, "state": invitation.status}


def revoke(uow: TenancyUnitOfWork, *, caller: Caller, invitation_id: str) -> None:
    """Workspace owners and admins revoke; the invitee may decline. Anyone else: not found."""
    with uow:
        invitation = uow.invitations.get(invitation_id)
        if invitation is None:
            raise NotFound()
        is_invitee = caller.email_verified and invitation.email == caller.email
        if not is_invitee:
            _workspace, role = workspace_role(uow, workspace_id=invitation.workspace_id, user_id=caller.user_id)
            require_role(role, "admin")
        if invitation.status == "pending":
            invitation.status = "revoked"
            uow.commit()


def list_for_workspace(uow: TenancyUnitOfWork, *, caller: Caller, workspace_id: str, now: datetime,
                       page: PageRequest) -> dict:
    """A page of the invitations pending in the workspace, oldest first (owners and admins)."""
    after = INVITATIONS.position(page.cursor)
    with uow:
        _workspace, role = workspace_role(uow, workspace_id=workspace_id, user_id=caller.user_id)
        require_role(role, "admin")
        rows, last = uow.invitations.pending_in_workspace(workspace_id, now, after, page.limit)
        return INVITATIONS.page([invitation_document(invitation) for invitation, in rows], last)
