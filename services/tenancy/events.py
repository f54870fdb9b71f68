"""Every event tenancy publishes, each made by one constructor named for what happened.

The payloads are the contract with the consumers (../docs/events.md and CONTRACT.md list them); the
notifier mails `tenancy.invitation.created`, so a field it renders may only be added to, never renamed.
"""
from __future__ import annotations

from datetime import datetime

from shared.events import Event

ORGANIZATION_CREATED = "tenancy.organization.created"
WORKSPACE_CREATED = "tenancy.workspace.created"
INVITATION_CREATED = "tenancy.invitation.created"
MEMBER_ADDED = "tenancy.member.added"
MEMBER_ROLE_CHANGED = "tenancy.member.role_changed"
MEMBER_REMOVED = "tenancy.member.removed"
TYPES = (ORGANIZATION_CREATED, WORKSPACE_CREATED, INVITATION_CREATED, MEMBER_ADDED, MEMBER_ROLE_CHANGED,
         MEMBER_REMOVED)


def organization_created(*, organization_id: str, name: str, owner_id: str) -> Event:
    return Event(ORGANIZATION_CREATED, {"organization_id": organization_id, "name": name, "owner_id": owner_id})


def workspace_created(*, workspace_id: str, organization_id: str, name: str) -> Event:
    return Event(WORKSPACE_CREATED, {"workspace_id": workspace_id, "organization_id": organization_id, "name": name})


def invitation_created(*, invitation_id: str, workspace_id: str, workspace_name: str, email: str, inviter_name: str,
                       accept_url: str, expires_at: datetime, role: str) -> Event:
    return Event(INVITATION_CREATED, {"invitation_id": invitation_id, "workspace_id": workspace_id,
                                      "workspace_name": workspace_name, "email": email, "inviter_name": inviter_name,
                                      "accept_url": accept_url, "expires_at": expires_at.isoformat(), "role": role})


def member_added(*, workspace_id: str, user_id: str, role: str) -> Event:
    return Event(MEMBER_ADDED, {"workspace_id": workspace_id, "user_id": user_id, "role": role})


def member_role_changed(*, workspace_id: str, user_id: str, role: str) -> Event:
    return Event(MEMBER_ROLE_CHANGED, {"workspace_id": workspace_id, "user_id": user_id, "role": role})


def member_removed(*, workspace_id: str, user_id: str, role: str) -> Event:
    return Event(MEMBER_REMOVED, {"workspace_id": workspace_id, "user_id": user_id, "role": role})
