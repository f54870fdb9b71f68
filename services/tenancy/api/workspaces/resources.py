"""Workspaces: the switcher list, read, rename, delete, and members."""
from __future__ import annotations

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from services.tenancy import members, workspaces
from services.tenancy.api.common import (
    PageSchema,
    RenameSchema,
    WorkspaceListSchema,
    WorkspaceSchema,
    page_arguments,
    role_field,
)
from services.tenancy.runtime import caller, runtime
from shared.auth import bearer_required

blp = Blueprint("workspaces", __name__, url_prefix="/v1", description="Workspaces and their members")


class MemberSchema(Schema):
    user_id = fields.String()
    role = fields.String()
    email = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    joined_at = fields.DateTime()


class MemberListSchema(PageSchema):
    items = fields.List(fields.Nested(MemberSchema))


class RoleSchema(Schema):
    role = role_field(required=True)


@blp.route("/workspaces")
class Workspaces(MethodView):
    @bearer_required()
    @page_arguments(blp)
    @blp.response(200, WorkspaceListSchema)
    def get(self, page):
        """Every workspace the caller may open, with its organization and the caller's role, a page at a time"""
        return _switcher_response(workspaces.list_mine(runtime().reads, caller=caller(), page=page))


def _switcher_response(page: dict) -> Response:
    """The switcher's page as `WorkspaceListSchema` dumps it, written out directly.

    The switcher is read on every signed-in page, and the schema's field-by-field dump cost a seventh of
    the request. Every value here is already a string (or None) but `created_at`, which the schema's
    DateTime field writes with `isoformat()`; the document is then the one `jsonify` would make of the
    schema's dump, so the answer and the published schema stay the same (tests/tenancy/test_workspaces.py,
    tests/test_openapi_conformance.py)."""
    items = [{"id": item["id"], "name": item["name"], "organization_id": item["organization_id"],
              "organization": {"id": item["organization"]["id"], "name": item["organization"]["name"]},
              "role": item["role"], "created_at": item["created_at"].isoformat()}
             for item in page["items"]]
    return jsonify({"items": items, "next": page["next"]})


@blp.route("/workspaces/<string:workspace_id>")
class WorkspaceById(MethodView):
    @bearer_required()
    @blp.response(200, WorkspaceSchema)
    @blp.alt_response(404, description="not_found (also for workspaces the caller may not open)")
    def get(self, workspace_id):
        """One workspace"""
        return workspaces.read(runtime().uow(), caller=caller(), workspace_id=workspace_id)

    @bearer_required()
    @blp.arguments(RenameSchema(), required=False)
    @blp.response(200, WorkspaceSchema)
    @blp.alt_response(403, description="forbidden: owners and admins only")
    @blp.alt_response(404, description="not_found")
    def patch(self, body, workspace_id):
        """Rename the workspace (owners and admins)"""
        rt = runtime()
        return workspaces.rename(rt.uow(), caller=caller(), workspace_id=workspace_id, changes=body, now=rt.clock())

    @bearer_required()
    @blp.response(204)
    @blp.alt_response(403, description="forbidden: owners only")
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="last_workspace")
    def delete(self, workspace_id):
        """Delete the workspace (owners); an organization keeps at least one"""
        workspaces.delete(runtime().uow(), caller=caller(), workspace_id=workspace_id)


@blp.route("/workspaces/<string:workspace_id>/members")
class WorkspaceMembers(MethodView):
    @bearer_required()
    @page_arguments(blp)
    @blp.response(200, MemberListSchema)
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(503, description="dependency_unavailable: identity did not answer")
    def get(self, page, workspace_id):
        """Members with their names and emails, a page at a time"""
        rt = runtime()
        return members.list_members(rt.uow(), directory=rt.directory, caller=caller(), workspace_id=workspace_id,
                                    page=page)


@blp.route("/workspaces/<string:workspace_id>/members/<string:user_id>")
class WorkspaceMemberById(MethodView):
    @bearer_required()
    @blp.arguments(RoleSchema())
    @blp.response(200, MemberSchema)
    @blp.alt_response(403, description="forbidden")
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="last_owner")
    def patch(self, body, workspace_id, user_id):
        """Change a member's role (owners and admins; only owners make or unmake owners)"""
        return members.change_role(runtime().uow(), caller=caller(), workspace_id=workspace_id, user_id=user_id,
                                   role=body["role"])

    @bearer_required()
    @blp.response(204)
    @blp.alt_response(403, description="forbidden")
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="last_owner")
    def delete(self, workspace_id, user_id):
        """Remove a member, or leave (your own user id); the last owner cannot leave"""
        members.remove(runtime().uow(), caller=caller(), workspace_id=workspace_id, user_id=user_id)
