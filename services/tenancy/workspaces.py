"""Workspace use cases: create more in an organization, the switcher list, read, rename, delete."""
from __future__ import annotations

from datetime import datetime

from services.tenancy.access import (Caller, effective_workspace_role, organization_role, require_role,
                                     workspace_role)
from services.tenancy.errors import LastWorkspace
from services.tenancy.members import leave_organization_if_no_workspace
from services.tenancy.models import Workspace, WorkspaceMember
from services.tenancy.organizations import record_workspace_created, workspace_document


def create(uow, caller: Caller, organization_id: str, name: str, now: datetime) -> dict:
    """Organization owners and admins create workspaces; the creator becomes its owner."""
    with uow:
        _organization, role = organization_role(uow, organization_id, caller.user_id)
        require_role(role, "admin")
        workspace = Workspace(organization_id=organization_id, name=name, created_at=now, updated_at=now)
        uow.workspaces.add(workspace)
        uow.workspaces.add(WorkspaceMember(workspace_id=workspace.id, user_id=caller.user_id, role="owner",
                                           created_at=now))
        record_workspace_created(uow, workspace, caller.user_id)
        uow.commit()
        return workspace_document(workspace, "owner")


def _openable(uow, workspaces: list[Workspace], user_id: str, organization_roles: dict[str, str]) -> list[tuple]:
    memberships = uow.workspaces.memberships_of_user(user_id)
    result = []
    for workspace in workspaces:
        role = effective_workspace_role(memberships.get(workspace.id), organization_roles.get(workspace.organization_id))
        if role is not None:
            result.append((workspace, role))
    return result


def list_in_organization(uow, caller: Caller, organization_id: str) -> dict:
    """The organization's workspaces that the caller may open."""
    with uow:
        _organization, org_role = organization_role(uow, organization_id, caller.user_id)
        workspaces = uow.workspaces.in_organization(organization_id)
        return {"items": [workspace_document(w, role) for w, role in
                          _openable(uow, workspaces, caller.user_id, {organization_id: org_role})]}


def list_mine(uow, caller: Caller) -> dict:
    """Every workspace the caller may open, with its organization and the caller's role (the switcher)."""
    with uow:
        items = []
        for organization, org_role in uow.organizations.of_user(caller.user_id):
            workspaces = uow.workspaces.in_organization(organization.id)
            items += [workspace_document(w, role, organization) for w, role in
                      _openable(uow, workspaces, caller.user_id, {organization.id: org_role})]
        return {"items": items}


def read(uow, caller: Caller, workspace_id: str) -> dict:
    with uow:
        workspace, role = workspace_role(uow, workspace_id, caller.user_id)
        return workspace_document(workspace, role, uow.organizations.get(workspace.organization_id))


def rename(uow, caller: Caller, workspace_id: str, changes: dict, now: datetime) -> dict:
    with uow:
        workspace, role = workspace_role(uow, workspace_id, caller.user_id)
        require_role(role, "admin")
        if "name" in changes:
            workspace.name = changes["name"]
        workspace.updated_at = now
        uow.commit()
        return workspace_document(workspace, role, uow.organizations.get(workspace.organization_id))


def delete(uow, caller: Caller, workspace_id: str) -> None:
    with uow:
        workspace, role = workspace_role(uow, workspace_id, caller.user_id)
        require_role(role, "owner")
        if uow.workspaces.count_in_organization(workspace.organization_id) <= 1:
            raise LastWorkspace()
        member_ids = [member.user_id for member in uow.workspaces.members(workspace_id)]
        uow.workspaces.delete(workspace)
        for user_id in member_ids:
            leave_organization_if_no_workspace(uow, workspace.organization_id, user_id)
        uow.commit()
