"""Who may see and do what. Outsiders get NotFound (no existence leak); insiders short of the role
get Forbidden.

Roles: organization owner > admin > member; workspace owner > admin > member. An organization's
owners and admins may open every workspace in it, with their organization role; everyone else opens
the workspaces they are members of.
"""
from __future__ import annotations

from dataclasses import dataclass

from services.tenancy.errors import EmailNotVerified, Forbidden, NotFound
from services.tenancy.models import OPENS_EVERY_WORKSPACE, RANK, Organization, Workspace
from services.tenancy.unit_of_work import TenancyUnitOfWork


@dataclass(frozen=True)
class Caller:
    """The signed-in person, from the verified access token."""

    user_id: str
    email: str
    email_verified: bool
    name: str

    @classmethod
    def from_claims(cls, claims: dict) -> Caller:
        name = " ".join(part for part in (claims.get("given_name"), claims.get("family_name")) if part)
        return cls(claims["sub"], str(claims.get("email", "")).lower(), claims.get("email_verified") is True,
                   name or str(claims.get("email", "")))

    def require_verified_email(self) -> None:
        if not self.email_verified:
            raise EmailNotVerified()


def require_role(role: str, minimum: str) -> None:
    if RANK[role] < RANK[minimum]:
        raise Forbidden(f"This needs the {minimum} role or higher.")


def organization_role(uow: TenancyUnitOfWork, *, organization_id: str, user_id: str) -> tuple[Organization, str]:
    organization = uow.organizations.get(organization_id)
    membership = uow.organizations.membership(organization_id, user_id) if organization is not None else None
    if organization is None or membership is None:
        raise NotFound()
    return organization, membership.role


def effective_workspace_role(workspace_role: str | None, organization_role: str | None) -> str | None:
    inherited = organization_role if organization_role in OPENS_EVERY_WORKSPACE else None
    candidates = [role for role in (workspace_role, inherited) if role is not None]
    return max(candidates, key=RANK.__getitem__) if candidates else None


def workspace_role(uow: TenancyUnitOfWork, *, workspace_id: str, user_id: str) -> tuple[Workspace, str]:
    workspace = uow.workspaces.get(workspace_id)
    if workspace is None:
        raise NotFound()
    membership = uow.workspaces.membership(workspace_id, user_id)
    org_membership = uow.organizations.membership(workspace.organization_id, user_id)
    role = effective_workspace_role(membership.role if membership else None,
                                    org_membership.role if org_membership else None)
    if role is None:
        raise NotFound()
    return workspace, role
