"""Organizations and their workspaces."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from services.tenancy import organizations, workspaces
from services.tenancy.api.common import (
    NameSchema,
    OrganizationSchema,
    PageSchema,
    RenameSchema,
    WorkspaceListSchema,
    WorkspaceSchema,
    page_arguments,
)
from services.tenancy.runtime import caller, runtime
from shared.auth import bearer_required

blp = Blueprint("organizations", __name__, url_prefix="/v1", description="Organizations")


class OrganizationCreatedSchema(Schema):
    organization = fields.Nested(OrganizationSchema)
    workspace = fields.Nested(WorkspaceSchema)


class OrganizationListSchema(PageSchema):
    items = fields.List(fields.Nested(OrganizationSchema))


@blp.route("/organizations")
class Organizations(MethodView):
    @bearer_required()
    @blp.arguments(NameSchema())
    @blp.response(201, OrganizationCreatedSchema)
    @blp.alt_response(403, description="email_not_verified")
    def post(self, body):
        """Create an organization and its first workspace

        The caller becomes owner of both. Needs a verified email.
        """
        rt = runtime()
        return organizations.create(rt.uow(), caller=caller(), name=body["name"],
                                    workspace_name=rt.settings.default_workspace_name, now=rt.clock())

    @bearer_required()
    @page_arguments(blp)
    @blp.response(200, OrganizationListSchema)
    def get(self, page):
        """The caller's organizations, a page at a time (empty: onboarding should ask for one)"""
        return organizations.list_mine(runtime().uow(), caller=caller(), page=page)


@blp.route("/organizations/<string:organization_id>")
class OrganizationById(MethodView):
    @bearer_required()
    @blp.response(200, OrganizationSchema)
    @blp.alt_response(404, description="not_found (also for organizations the caller is not in)")
    def get(self, organization_id):
        """One organization"""
        return organizations.read(runtime().uow(), caller=caller(), organization_id=organization_id)

    @bearer_required()
    @blp.arguments(RenameSchema(), required=False)
    @blp.response(200, OrganizationSchema)
    @blp.alt_response(403, description="forbidden: owners and admins only")
    @blp.alt_response(404, description="not_found")
    def patch(self, body, organization_id):
        """Update organization settings (owners and admins)"""
        rt = runtime()
        return organizations.update(rt.uow(), caller=caller(), organization_id=organization_id, changes=body,
                                    now=rt.clock())

    @bearer_required()
    @blp.response(204)
    @blp.alt_response(403, description="forbidden: owners only")
    @blp.alt_response(404, description="not_found")
    def delete(self, organization_id):
        """Delete the organization with all its workspaces (owners)"""
        organizations.delete(runtime().uow(), caller=caller(), organization_id=organization_id)


@blp.route("/organizations/<string:organization_id>/workspaces")
class OrganizationWorkspaces(MethodView):
    @bearer_required()
    @page_arguments(blp)
    @blp.response(200, WorkspaceListSchema)
    @blp.alt_response(404, description="not_found")
    def get(self, page, organization_id):
        """Workspaces of the organization that the caller may open, a page at a time"""
        return workspaces.list_in_organization(runtime().uow(), caller=caller(), organization_id=organization_id,
                                               page=page)

    @bearer_required()
    @blp.arguments(NameSchema())
    @blp.response(201, WorkspaceSchema)
    @blp.alt_response(403, description="forbidden: organization owners and admins only")
    @blp.alt_response(404, description="not_found")
    def post(self, body, organization_id):
        """Create a workspace in the organization (owners and admins); the creator owns it"""
        rt = runtime()
        return workspaces.create(rt.uow(), caller=caller(), organization_id=organization_id, name=body["name"],
                                 now=rt.clock())
