"""Organization use cases: create (with the first workspace), list, read, update settings, delete."""
from __future__ import annotations

from datetime import datetime

from services.tenancy import events
from services.tenancy.access import Caller, organization_role, require_role
from services.tenancy.models import Organization, OrganizationMember, Workspace, WorkspaceMember
from services.tenancy.pagination import Keyset, PageRequest
from services.tenancy.unit_of_work import TenancyUnitOfWork

ORGANIZATIONS = Keyset("organizations", datetime, str)


def organization_document(organization: Organization, role: str) -> dict:
    return {"id": organization.id, "name": organization.name, "role": role, "created_at": organization.created_at}


def workspace_document(workspace: Workspace, role: str | None, organization: Organization | None = None) -> dict:
    document: dict[str, object] = {"id": workspace.id, "name": workspace.name,
                                   "organization_id": workspace.organization_id, "role": role,
                                   "created_at": workspace.created_at}
    if organization is not None:
        document["organization"] = {"id": organization.id, "name": organization.name}
    return document


def record_workspace_created(uow: TenancyUnitOfWork, *, workspace: Workspace, owner_id: str) -> None:
    uow.record(events.workspace_created(workspace_id=workspace.id, organization_id=workspace.organization_id,
                                        name=workspace.name))
    uow.record(events.member_added(workspace_id=workspace.id, user_id=owner_id, role="owner"))


def create(uow: TenancyUnitOfWork, *, caller: Caller, name: str, workspace_name: str, now: datetime) -> dict:
    """The organization and its first workspace, the caller owner of both, in one transaction."""
    caller.require_verified_email()
    with uow:
        organization = Organization(name=name, created_by=caller.user_id, created_at=now, updated_at=now)
        uow.organizations.add(organization)
        workspace = Workspace(organization_id=organization.id, name=workspace_name, created_at=now, updated_at=now)
        uow.workspaces.add(workspace)
        uow.organizations.add(
            OrganizationMember(organization_id=organization.id, user_id=caller.user_id, role="owner", created_at=now),
            WorkspaceMember(workspace_id=workspace.id, user_id=caller.user_id, role="owner", created_at=now))
        uow.record(events.organization_created(organization_id=organization.id, name=name,
                                               owner_id=caller.user_id))
        record_workspace_created(uow, workspace=workspace, owner_id=caller.user_id)
        uow.commit()
        return {"organization": organization_document(organization, "owner"),
                "workspace": workspace_document(workspace, "owner")}


def list_mine(uow: TenancyUnitOfWork, *, caller: Caller, page: PageRequest) -> dict:
    """A page of the caller's organizations, oldest first."""
    after = ORGANIZATIONS.position(page.cursor)
    with uow:
        rows, last = uow.organizations.of_user(caller.user_id, after, page.limit)
        return ORGANIZATIONS.page([organization_document(org, role) for org, role in rows], last)


def read(uow: TenancyUnitOfWork, *, caller: Caller, organization_id: str) -> dict:
    with uow:
        return organization_document(*organization_role(uow, organization_id=organization_id, user_id=caller.user_id))


def update(uow: TenancyUnitOfWork, *, caller: Caller, organization_id: str, changes: dict, now: datetime) -> dict:
    with uow:
        organization, role = organization_role(uow, organization_id=organization_id, user_id=caller.user_id)
        require_role(role, "admin")
        if "name" in changes:
            organization.name = changes["name"]
        organization.updated_at = now
        uow.commit()
        return organization_document(organization, role)


def delete(uow: TenancyUnitOfWork, *, caller: Caller, organization_id: str) -> None:
    """Delete the organization with its workspaces, memberships and invitations (owners only)."""
    with uow:
        organization, role = organization_role(uow, organization_id=organization_id, user_id=caller.user_id)
        require_role(role, "owner")
        uow.organizations.delete(organization)
        uow.commit()
