"""Tenancy's repositories, inside a unit of work (`unit_of_work.py`): with `autocommit.py` (statements that
stand alone) and the migrations, the only code that queries its tables."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, delete, func, or_, select, tuple_, update

from services.tenancy.models import (
    OPENS_EVERY_WORKSPACE,
    Invitation,
    Organization,
    OrganizationMember,
    Workspace,
    WorkspaceMember,
)
from shared.unit_of_work import Repository

Page = tuple[list[tuple], tuple | None]


def keyset_page(repository: Repository, query: Select, order: tuple, after: tuple | None, limit: int) -> Page:
    """At most `limit` rows of `query` in `order` after the position `after`, and the position (the `order`
    values) of the last row when more rows follow. A keyset, not OFFSET: rows added or removed before the
    position shift nothing."""
    if after is not None:
        query = query.where(tuple_(*order) > after)  # a plain tuple: its values bind with the columns' types
    found = repository.session.execute(query.add_columns(*order).order_by(*order).limit(limit + 1)).all()
    more = len(found) > limit
    rows = [tuple(row) for row in found[:limit]]
    return [row[:-len(order)] for row in rows], tuple(rows[-1][-len(order):]) if more else None


class Organizations(Repository):
    def add(self, *rows) -> None:
        self.session.add_all(rows)
        self.session.flush()

    def get(self, organization_id: str) -> Organization | None:
        return self.session.get(Organization, organization_id)

    def delete(self, organization: Organization) -> None:
        self.session.delete(organization)

    def lock(self, organization_id: str) -> None:
        """Serialize changes to who belongs to the organization (PostgreSQL row lock; SQLite already
        holds the write lock): two people joining at once must not both insert a membership."""
        self.session.execute(select(Organization.id).where(Organization.id == organization_id).with_for_update())

    def membership(self, organization_id: str, user_id: str) -> OrganizationMember | None:
        return self.session.get(OrganizationMember, (organization_id, user_id))

    def of_user(self, user_id: str, after: tuple | None, limit: int) -> Page:
        """A page of (organization, the user's role) in the order the organizations were created."""
        return keyset_page(self, select(Organization, OrganizationMember.role)
                           .join(OrganizationMember, OrganizationMember.organization_id == Organization.id)
                           .where(OrganizationMember.user_id == user_id),
                           (Organization.created_at, Organization.id), after, limit)

    def remove_member(self, organization_id: str, user_id: str) -> None:
        self.session.execute(delete(OrganizationMember).where(OrganizationMember.organization_id == organization_id,
                                                              OrganizationMember.user_id == user_id))


class Workspaces(Repository):
    def add(self, *rows) -> None:
        self.session.add_all(rows)
        self.session.flush()

    def get(self, workspace_id: str) -> Workspace | None:
        return self.session.get(Workspace, workspace_id)

    def lock(self, workspace_id: str) -> None:
        """Serialize membership and invitation changes of one workspace until the transaction ends (PostgreSQL
        row lock; SQLite already holds the database's write lock from BEGIN)."""
        self.session.execute(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update())

    def delete(self, workspace: Workspace) -> None:
        self.session.delete(workspace)
        self.session.flush()

    def openable(self, user_id: str, organization_id: str | None, after: tuple | None, limit: int) -> Page:
        """A page of (workspace, organization, the user's workspace role, organization role) of the workspaces
        the user may open (of one organization, or of all of them), by organization and then workspace age."""
        query = (select(Workspace, Organization, WorkspaceMember.role, OrganizationMember.role)
                 .join(Organization, Organization.id == Workspace.organization_id)
                 .join(OrganizationMember, (OrganizationMember.organization_id == Organization.id)
                       & (OrganizationMember.user_id == user_id))
                 .outerjoin(WorkspaceMember, (WorkspaceMember.workspace_id == Workspace.id)
                            & (WorkspaceMember.user_id == user_id))
                 .where(or_(OrganizationMember.role.in_(OPENS_EVERY_WORKSPACE), WorkspaceMember.user_id.is_not(None))))
        if organization_id is not None:
            query = query.where(Workspace.organization_id == organization_id)
        return keyset_page(self, query, (Organization.created_at, Organization.id, Workspace.created_at, Workspace.id),
                           after, limit)

    def count_in_organization(self, organization_id: str) -> int:
        return self.session.scalar(select(func.count()).select_from(Workspace)
                                   .where(Workspace.organization_id == organization_id)) or 0

    def membership(self, workspace_id: str, user_id: str) -> WorkspaceMember | None:
        return self.session.get(WorkspaceMember, (workspace_id, user_id))

    def members(self, workspace_id: str) -> list[WorkspaceMember]:
        return list(self.session.scalars(select(WorkspaceMember).where(WorkspaceMember.workspace_id == workspace_id)
                                         .order_by(WorkspaceMember.created_at, WorkspaceMember.user_id)))

    def member_page(self, workspace_id: str, after: tuple | None, limit: int) -> Page:
        """A page of (member,) in the order they joined."""
        return keyset_page(self, select(WorkspaceMember).where(WorkspaceMember.workspace_id == workspace_id),
                           (WorkspaceMember.created_at, WorkspaceMember.user_id), after, limit)

    def count_owners(self, workspace_id: str) -> int:
        return self.session.scalar(select(func.count()).select_from(WorkspaceMember)
                                   .where(WorkspaceMember.workspace_id == workspace_id,
                                          WorkspaceMember.role == "owner")) or 0

    def remove_member(self, member: WorkspaceMember) -> None:
        self.session.delete(member)
        self.session.flush()

    def user_in_organization(self, organization_id: str, user_id: str) -> bool:
        """Is the user still a member of any workspace of the organization?"""
        return bool(self.session.scalar(
            select(func.count()).select_from(WorkspaceMember)
            .join(Workspace, Workspace.id == WorkspaceMember.workspace_id)
            .where(Workspace.organization_id == organization_id, WorkspaceMember.user_id == user_id)))


class Invitations(Repository):
    def add(self, invitation: Invitation) -> None:
        self.session.add(invitation)
        self.session.flush()

    def get(self, invitation_id: str, lock: bool = False) -> Invitation | None:
        return self.session.get(Invitation, invitation_id, with_for_update=True if lock else None)

    def expire_stale(self, now: datetime, workspace_id: str | None = None, email: str | None = None) -> None:
        query = update(Invitation).where(Invitation.status == "pending", Invitation.expires_at <= now)
        if workspace_id is not None:
            query = query.where(Invitation.workspace_id == workspace_id)
        if email is not None:
            query = query.where(Invitation.email == email)
        self.session.execute(query.values(status="expired").execution_options(synchronize_session=False))

    def pending_for(self, workspace_id: str, email: str) -> Invitation | None:
        return self.session.scalars(select(Invitation).where(Invitation.workspace_id == workspace_id,
                                                             Invitation.email == email,
                                                             Invitation.status == "pending")).first()

    def pending_for_email(self, email: str, now: datetime, after: tuple | None, limit: int) -> Page:
        """A page of (invitation, workspace, organization) pending for the address, oldest first."""
        return keyset_page(self, select(Invitation, Workspace, Organization)
                           .join(Workspace, Workspace.id == Invitation.workspace_id)
                           .join(Organization, Organization.id == Workspace.organization_id)
                           .where(Invitation.email == email, Invitation.status == "pending",
                                  Invitation.expires_at > now),
                           (Invitation.created_at, Invitation.id), after, limit)

    def pending_in_workspace(self, workspace_id: str, now: datetime, after: tuple | None, limit: int) -> Page:
        """A page of (invitation,) pending in the workspace, oldest first."""
        return keyset_page(self, select(Invitation).where(Invitation.workspace_id == workspace_id,
                                                          Invitation.status == "pending", Invitation.expires_at > now),
                           (Invitation.created_at, Invitation.id), after, limit)
