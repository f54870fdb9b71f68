"""Workspace members: list with names and emails, change roles, remove (or leave)."""
from __future__ import annotations

from datetime import datetime

from services.tenancy import events
from services.tenancy.access import Caller, require_role, workspace_role
from services.tenancy.directory import IdentityDirectory
from services.tenancy.errors import Forbidden, LastOwner, NotFound
from services.tenancy.models import WorkspaceMember
from services.tenancy.pagination import Keyset, PageRequest
from services.tenancy.unit_of_work import TenancyUnitOfWork

MEMBERS = Keyset("members", datetime, str)


def member_document(member: WorkspaceMember, account: dict | None) -> dict:
    account = account or {}
    return {"user_id": member.user_id, "role": member.role, "joined_at": member.created_at,
            "email": account.get("email"), "first_name": account.get("first_name"),
            "last_name": account.get("last_name")}


def list_members(uow: TenancyUnitOfWork, *, directory: IdentityDirectory, caller: Caller, workspace_id: str,
                 page: PageRequest) -> dict:
    """A page of the workspace's members in the order they joined, with names and emails from identity: one
    lookup for the page (a page holds no more ids than one lookup takes), made after the transaction ends."""
    after = MEMBERS.position(page.cursor)
    with uow:
        workspace_role(uow, workspace_id=workspace_id, user_id=caller.user_id)
        rows, last = uow.workspaces.member_page(workspace_id, after, page.limit)
    accounts = directory.accounts([member.user_id for member, in rows])
    return MEMBERS.page([member_document(member, accounts.get(member.user_id)) for member, in rows], last)


def _target(uow: TenancyUnitOfWork, *, workspace_id: str, user_id: str) -> WorkspaceMember:
    member = uow.workspaces.membership(workspace_id, user_id)
    if member is None:
        raise NotFound()
    return member


def _guard_owners(uow: TenancyUnitOfWork, *, caller_role: str, member: WorkspaceMember, new_role: str | None) -> None:
    """Only owners touch owners; the last owner stays an owner."""
    if (member.role == "owner" or new_role == "owner") and caller_role != "owner":
        raise Forbidden("Only an owner can change who is an owner.")
    if member.role == "owner" and new_role != "owner" and uow.workspaces.count_owners(member.workspace_id) <= 1:
        raise LastOwner()


def change_role(uow: TenancyUnitOfWork, *, caller: Caller, workspace_id: str, user_id: str, role: str) -> dict:
    with uow:
        uow.workspaces.lock(workspace_id)  # two owners stepping down at once must not leave none
        _workspace, caller_role = workspace_role(uow, workspace_id=workspace_id, user_id=caller.user_id)
        require_role(caller_role, "admin")
        member = _target(uow, workspace_id=workspace_id, user_id=user_id)
        _guard_owners(uow, caller_role=caller_role, member=member, new_role=role)
        if member.role != role:
            member.role = role
            uow.record(events.member_role_changed(workspace_id=workspace_id, user_id=user_id, role=role))
        uow.commit()
        return {"user_id": member.user_id, "role": member.role, "joined_at": member.created_at}


def leave_organization_if_no_workspace(uow: TenancyUnitOfWork, *, organization_id: str, user_id: str) -> None:
    """A plain organization member belongs through workspaces: with the last one gone, so is the org.
    (Organization owners and admins stay.)"""
    org_membership = uow.organizations.membership(organization_id, user_id)
    if (org_membership is not None and org_membership.role == "member"
            and not uow.workspaces.user_in_organization(organization_id, user_id)):
        uow.organizations.remove_member(organization_id, user_id)


def remove(uow: TenancyUnitOfWork, *, caller: Caller, workspace_id: str, user_id: str) -> None:
    """Remove a member, or leave when `user_id` is the caller."""
    with uow:
        uow.workspaces.lock(workspace_id)  # two owners leaving at once must not leave none
        workspace, caller_role = workspace_role(uow, workspace_id=workspace_id, user_id=caller.user_id)
        if user_id != caller.user_id:
            require_role(caller_role, "admin")
        member = _target(uow, workspace_id=workspace_id, user_id=user_id)
        _guard_owners(uow, caller_role=caller_role if user_id != caller.user_id else "owner", member=member,
                      new_role=None)
        uow.workspaces.remove_member(member)
        leave_organization_if_no_workspace(uow, organization_id=workspace.organization_id, user_id=user_id)
        uow.record(events.member_removed(workspace_id=workspace_id, user_id=user_id, role=member.role))
        uow.commit()
