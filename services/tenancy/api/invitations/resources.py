"""Invitations into workspaces."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from services.tenancy import invitations
from services.tenancy.api.common import OrganizationRefSchema, PageSchema, page_arguments, role_field
from services.tenancy.runtime import caller, runtime
from shared.addresses import EmailField
from shared.auth import bearer_required

blp = Blueprint("invitations", __name__, url_prefix="/v1", description="Invitations")


class InvitationSchema(Schema):
    id = fields.String()
    workspace_id = fields.String()
    workspace_name = fields.String()
    organization = fields.Nested(OrganizationRefSchema)
    email = fields.String()
    role = fields.String()
    status = fields.String()
    created_at = fields.DateTime()
    expires_at = fields.DateTime()


class InvitationListSchema(PageSchema):
    items = fields.List(fields.Nested(InvitationSchema))


class InviteSchema(Schema):
    email = EmailField(required=True)
    role = role_field(load_default="member")


class AcceptSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=512))


class InvitationPreviewSchema(Schema):
    id = fields.String()
    workspace_id = fields.String()
    organization_name = fields.String()
    workspace_name = fields.String()
    inviter_name = fields.String(allow_none=True, metadata={
        "description": "The inviter's name when they invited; null on invitations made before it was kept"})
    email = fields.String()
    role = fields.String()
    expires_at = fields.DateTime()
    state = fields.String(metadata={"description": "pending, accepted or revoked"})


class MembershipSchema(Schema):
    workspace_id = fields.String()
    organization_id = fields.String()
    user_id = fields.String()
    role = fields.String()
    joined_at = fields.DateTime()


@blp.route("/workspaces/<string:workspace_id>/invitations")
class WorkspaceInvitations(MethodView):
    @bearer_required()
    @blp.arguments(InviteSchema())
    @blp.response(201, InvitationSchema)
    @blp.alt_response(403, description="forbidden: owners and admins; only owners invite owners")
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="already_member or invitation_pending")
    @blp.alt_response(429, description="rate_limited: the inviter's hourly or the workspace's daily limit")
    def post(self, body, workspace_id):
        """Invite someone by email; the notifier mails them an accept link

        Each inviter may send `INVITATIONS_PER_INVITER_PER_HOUR` invitations an hour (20 by default) and
        each workspace receive `INVITATIONS_PER_WORKSPACE_PER_DAY` a day (50); past either, 429 with
        Retry-After.
        """
        rt = runtime()
        return invitations.invite(rt.uow(), directory=rt.directory, limits=rt.invitation_limits, caller=caller(),
                                  workspace_id=workspace_id, email=body["email"], role=body["role"],
                                  accept_base_url=rt.settings.invitation_accept_url, ttl=rt.settings.invitation_ttl,
                                  now=rt.clock())

    @bearer_required()
    @page_arguments(blp)
    @blp.response(200, InvitationListSchema)
    @blp.alt_response(403, description="forbidden: owners and admins only")
    @blp.alt_response(404, description="not_found")
    def get(self, page, workspace_id):
        """Pending invitations of the workspace (owners and admins), a page at a time"""
        rt = runtime()
        return invitations.list_for_workspace(rt.uow(), caller=caller(), workspace_id=workspace_id, now=rt.clock(),
                                              page=page)


@blp.route("/invitations")
class MyInvitations(MethodView):
    @bearer_required()
    @page_arguments(blp)
    @blp.response(200, InvitationListSchema)
    def get(self, page):
        """Pending invitations for the caller's verified email, a page at a time"""
        rt = runtime()
        return invitations.list_mine(rt.uow(), caller=caller(), now=rt.clock(), page=page)


@blp.route("/invitations/<string:invitation_id>/accept")
class InvitationAccept(MethodView):
    @bearer_required()
    @blp.arguments(AcceptSchema())
    @blp.response(200, MembershipSchema)
    @blp.alt_response(400, description="token_invalid or token_expired")
    @blp.alt_response(404, description="not_found (also when the invitation is for another address)")
    @blp.alt_response(409, description="already_member")
    def post(self, body, invitation_id):
        """Accept an invitation with the token from the mail (the invited, verified address only)"""
        rt = runtime()
        return invitations.accept(rt.uow(), caller=caller(), invitation_id=invitation_id, token=body["token"],
                                  now=rt.clock())


@blp.route("/invitations/<string:invitation_id>/preview")
class InvitationPreview(MethodView):
    @blp.arguments(AcceptSchema())
    @blp.response(200, InvitationPreviewSchema)
    @blp.alt_response(400, description="token_expired")
    @blp.alt_response(404, description="not_found: no such invitation, or not its token")
    def post(self, body, invitation_id):
        """What an invitation invites to, for the holder of its mail link (no bearer token)

        The token from the mail proves the holder and is not spent: the invitation page shows the
        organization, the workspace and the inviter before anyone signs in. A POST so the token travels in
        the body, never in a URL that logs keep.
        """
        rt = runtime()
        return invitations.preview(rt.uow(), invitation_id=invitation_id, token=body["token"], now=rt.clock())


@blp.route("/invitations/<string:invitation_id>")
class InvitationById(MethodView):
    @bearer_required()
    @blp.response(204)
    @blp.alt_response(404, description="not_found")
    def delete(self, invitation_id):
        """Revoke an invitation (workspace owners and admins), or decline it (the invitee)"""
        invitations.revoke(runtime().uow(), caller=caller(), invitation_id=invitation_id)
