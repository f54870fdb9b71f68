"""Workspace use cases: create more in an organization, the switcher list, read, rename, delete."""
from __future__ import annotations

from datetime import datetime

from services.tenancy.access import Caller, effective_workspace_role, organization_role, require_role, workspace_role
from services.tenancy.autocommit import Reads
from services.tenancy.errors import LastWorkspace
from services.tenancy.members import leave_organization_if_no_workspace
from services.tenancy.models import Workspace, WorkspaceMember
from services.tenancy.organizations import record_workspace_created, workspace_document
from services.tenancy.pagination import Keyset, PageRequest
from services.tenancy.unit_of_work import TenancyUnitOfWork

# By organization age, then workspace age: the switcher groups each organization's workspaces.
WORKSPACES = Keyset("workspaces", datetime, str, datetime, str)


def create(uow: TenancyUnitOfWork, *, caller: Caller, organization_id: str, name: str, now: datetime) -> dict:
    """Organization owners and admins create workspaces; the creator becomes its owner."""
    with uow:
        _organization, role = organization_role(uow, organization_id=organization_id, user_id=caller.user_id)
        require_role(role, "admin")
        workspace = Workspace(organization_id=organization_id, name=name, created_at=now, updated_at=now)
        uow.workspaces.add(workspace)
        uow.workspaces.add(WorkspaceMember(workspace_id=workspace.id, user_id=caller.user_id, role="owner",
                                           created_at=now))
        record_workspace_created(uow, workspace=workspace, owner_id=caller.user_id)
        uow.commit()
        return workspace_document(workspace, "owner")


def list_in_organization(uow: TenancyUnitOfWork, *, caller: Caller, organization_id: str, page: PageRequest) -> dict:
    """A page of the organization's workspaces that the caller may open."""
    after = WORKSPACES.position(page.cursor)
    with uow:
        organization_role(uow, organization_id=organization_id, user_id=caller.user_id)
        rows, last = uow.workspaces.openable(caller.user_id, organization_id, after, page.limit)
        return WORKSPACES.page([workspace_document(workspace, effective_workspace_role(ws_role, org_role))
                                for workspace, _organization, ws_role, org_role in rows], last)


def list_mine(reads: Reads, *, caller: Caller, page: PageRequest) -> dict:
    """A page of every workspace the caller may open, with its organization and the caller's role (the switcher).
    One read-only statement (`autocommit.Reads`): it runs on every signed-in page."""
    after = WORKSPACES.position(page.cursor)
    rows, last = reads.openable_workspaces(caller.user_id, after, page.limit)
    return WORKSPACES.page([{"id": row.id, "name": row.name, "organization_id": row.organization_id,
                             "role": effective_workspace_role(row.workspace_role, row.organization_role),
                             "created_at": row.created_at,
                             "organization": {"id": row.organization_id, "name": row.organization_name}}
                            for row in rows], last)


def read(uow: TenancyUnitOfWork, *, caller: Caller, workspace_id: str) -> dict:
    with uow:
        workspace, role = workspace_role(uow, workspace_id=workspace_id, user_id=caller.user_id)
        return workspace_document(workspace, role, uow.organizations.get(workspace.organization_id))


def rename(uow: TenancyUnitOfWork, *, caller: Caller, workspace_id: str, changes: dict, now: datetime) -> dict:
    with uow:
        workspace, role = workspace_role(uow, workspace_id=workspace_id, user_id=caller.user_id)
        require_role(role, "admin")
        if "name" in changes:
            workspace.name = changes["name"]
        workspace.updated_at = now
        uow.commit()
        return workspace_document(workspace, role, uow.organizations.get(workspace.organization_id))


def delete(uow: TenancyUnitOfWork, *, caller: Caller, workspace_id: str) -> None:
    with uow:
        workspace, role = workspace_role(uow, workspace_id=workspace_id, user_id=caller.user_id)
        require_role(role, "owner")
        if uow.workspaces.count_in_organization(workspace.organization_id) <= 1:
            raise LastWorkspace()
        member_ids = [member.user_id for member in uow.workspaces.members(workspace_id)]
        uow.workspaces.delete(workspace)
        for user_id in member_ids:
            leave_organization_if_no_workspace(uow, organization_id=workspace.organization_id, user_id=user_id)
        uow.commit()
