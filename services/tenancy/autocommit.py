"""Everything tenancy runs on the autocommit engine: statements that stand alone, outside any unit of work.

The persistence rule (docs/architecture.md): atomic work goes through the unit of work and its repositories;
a statement that needs no transaction around it lives here, on the autocommit engine.

The workspace switcher (GET /v1/workspaces) is read on every page a signed-in person opens. It is one
SELECT, which needs no transaction around it (on SQLite every transaction here takes the write lock,
on PostgreSQL it costs the BEGIN and ROLLBACK round trips); its statements are built and compiled once
(`shared.statements`), and rows come back as named tuples, not ORM objects. The repository keeps the
same list for one organization (`Workspaces.openable`), read inside a unit of work with its access check.
"""
from __future__ import annotations

from sqlalchemy import BindParameter, Engine, bindparam, or_, select, tuple_

from services.tenancy.models import OPENS_EVERY_WORKSPACE, Organization, OrganizationMember, Workspace, WorkspaceMember
from shared.statements import Precompiled

_workspaces = Workspace.__table__
_organizations = Organization.__table__
_organization_members = OrganizationMember.__table__
_workspace_members = WorkspaceMember.__table__

#: The switcher's order: by organization age, then workspace age (each organization's workspaces together).
WORKSPACE_ORDER = (_organizations.c.created_at, _organizations.c.id, _workspaces.c.created_at, _workspaces.c.id)


def _openable(after: bool) -> Precompiled:
    """The workspaces a user may open: a member of the workspace, or an owner or admin of its organization
    (as `Workspaces.openable`), `limit` of them from the start or after a keyset position."""
    user: BindParameter[str] = bindparam("user_id")
    # The other order columns are selected already (organization_id, created_at, id): each is read once.
    query = (select(_workspaces.c.id, _workspaces.c.name, _workspaces.c.organization_id, _workspaces.c.created_at,
                    _organizations.c.name.label("organization_name"),
                    _workspace_members.c.role.label("workspace_role"),
                    _organization_members.c.role.label("organization_role"),
                    _organizations.c.created_at.label("organization_created_at"))
             .join(_organizations, _organizations.c.id == _workspaces.c.organization_id)
             .join(_organization_members, (_organization_members.c.organization_id == _organizations.c.id)
                   & (_organization_members.c.user_id == user))
             .outerjoin(_workspace_members, (_workspace_members.c.workspace_id == _workspaces.c.id)
                        & (_workspace_members.c.user_id == user))
             # `role IN (...)` spelled out: an IN list is expanded at execution, which Precompiled does not do
             .where(or_(*(_organization_members.c.role == role for role in OPENS_EVERY_WORKSPACE),
                        _workspace_members.c.user_id.is_not(None))))
    if after:
        query = query.where(tuple_(*WORKSPACE_ORDER) > tuple_(*(bindparam(f"after_{number}", type_=column.type)
                                                                for number, column in enumerate(WORKSPACE_ORDER))))
    return Precompiled(query.order_by(*WORKSPACE_ORDER).limit(bindparam("limit")))


_OPENABLE_FIRST = _openable(after=False)
_OPENABLE_AFTER = _openable(after=True)


class Reads:
    """The read-only queries, over the service's autocommit engine."""

    def __init__(self, autocommit_engine: Engine):
        self.engine = autocommit_engine

    def openable_workspaces(self, user_id: str, after: tuple | None, limit: int) -> tuple[list, tuple | None]:
        """A page of the workspaces the user may open, in WORKSPACE_ORDER after the position `after`: rows
        of (id, name, organization_id, created_at, organization_name, workspace_role, organization_role,
        organization_created_at), and the position of the last one when more follow (as
        `repository.keyset_page`): its WORKSPACE_ORDER columns."""
        params: dict = {"user_id": user_id, "limit": limit + 1}
        if after is not None:
            params.update({f"after_{number}": value for number, value in enumerate(after)})
        with self.engine.connect() as conn:
            rows = (_OPENABLE_FIRST if after is None else _OPENABLE_AFTER).all(conn, params)
        more = len(rows) > limit
        rows = rows[:limit]
        if not more:
            return rows, None
        last = rows[-1]
        return rows, (last.organization_created_at, last.organization_id, last.created_at, last.id)
