"""Internal API for other Threshold services (service tokens only)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from services.identity import clients, provider
from services.identity.api.common import AccountSchema
from services.identity.runtime import runtime
from services.identity.settings import AUTH_REQUESTS_SCOPE
from shared.auth import bearer_required

blp = Blueprint("internal", __name__, url_prefix="/internal/v1", description="Internal, for service tokens")


class AccountIdsSchema(Schema):
    id = fields.List(fields.String(validate=validate.Length(min=1, max=36)), required=True,
                     validate=validate.Length(min=1, max=clients.MAX_ACCOUNT_IDS))


class AccountListSchema(Schema):
    items = fields.List(fields.Nested(AccountSchema))


@blp.route("/accounts")
class InternalAccounts(MethodView):
    @bearer_required(scope="accounts:read", service=True)
    @blp.arguments(AccountIdsSchema(), location="query")
    @blp.response(200, AccountListSchema)
    @blp.alt_response(401, description="invalid_token (a user token is refused too)")
    @blp.alt_response(403, description="insufficient_scope")
    def get(self, query):
        """Accounts by id (`?id=…&id=…`, at most 100); unknown ids are left out"""
        return clients.accounts_by_id(runtime().uow(), ids=query["id"])


class AuthRequestSchema(Schema):
    id = fields.String()
    client_id = fields.String()
    client_name = fields.String()
    scopes = fields.List(fields.String())
    login_hint = fields.String(allow_none=True)
    prompt = fields.List(fields.String())
    max_age = fields.Integer(allow_none=True)
    password_required = fields.Boolean()
    signed_in_after = fields.DateTime(allow_none=True)
    workspace_required = fields.Boolean()
    workspace_hint = fields.String(allow_none=True)
    expires_at = fields.DateTime()


class ChosenWorkspaceSchema(Schema):
    workspace_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    organization_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    workspace_role = fields.String(required=True, validate=validate.OneOf(provider.WORKSPACE_ROLES))


class CompleteAuthRequestSchema(Schema):
    access_token = fields.String(required=True, validate=validate.Length(min=1, max=4096), load_only=True)
    workspace = fields.Nested(ChosenWorkspaceSchema, allow_none=True)


class RefuseAuthRequestSchema(Schema):
    error = fields.String(required=True, validate=validate.OneOf(provider.REFUSALS))


class RedirectSchema(Schema):
    redirect_to = fields.String()


AUTH_REQUEST_ID = "<string(maxlength=64):request_id>"


@blp.route(f"/auth-requests/{AUTH_REQUEST_ID}")
class AuthRequest(MethodView):
    @bearer_required(scope=AUTH_REQUESTS_SCOPE, service=True)
    @blp.response(200, AuthRequestSchema)
    @blp.alt_response(400, description="auth_request_expired")
    @blp.alt_response(404, description="no such request")
    @blp.alt_response(409, description="auth_request_completed")
    def get(self, request_id):
        """An OpenID Provider authorization request, for the hosted sign-in page"""
        rt = runtime()
        return rt.provider.describe(rt.uow(), request_id=request_id, now=rt.clock())


@blp.route(f"/auth-requests/{AUTH_REQUEST_ID}/complete")
class CompleteAuthRequest(MethodView):
    @bearer_required(scope=AUTH_REQUESTS_SCOPE, service=True)
    @blp.arguments(CompleteAuthRequestSchema())
    @blp.response(200, RedirectSchema)
    @blp.alt_response(400, description="person_token_invalid or auth_request_expired")
    @blp.alt_response(404, description="no such request")
    @blp.alt_response(409, description="login_required (sign in again), workspace_required, auth_request_completed")
    def post(self, body, request_id):
        """Complete an authorization request for the signed-in person (their access token in the body);
        answers the URL to send the browser to"""
        rt = runtime()
        return rt.provider.complete(rt.uow(), request_id=request_id, person_token=body["access_token"],
                                    workspace=body.get("workspace"), now=rt.clock())


@blp.route(f"/auth-requests/{AUTH_REQUEST_ID}/refuse")
class RefuseAuthRequest(MethodView):
    @bearer_required(scope=AUTH_REQUESTS_SCOPE, service=True)
    @blp.arguments(RefuseAuthRequestSchema())
    @blp.response(200, RedirectSchema)
    @blp.alt_response(400, description="auth_request_expired")
    @blp.alt_response(404, description="no such request")
    @blp.alt_response(409, description="auth_request_completed")
    def post(self, body, request_id):
        """End an authorization request without a sign-in (e.g. `login_required` for prompt=none)"""
        rt = runtime()
        return rt.provider.refuse(rt.uow(), request_id=request_id, error=body["error"], now=rt.clock())
