"""Internal API for other Threshold services (service tokens only)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from services.identity import clients
from services.identity.api.common import AccountSchema
from services.identity.runtime import runtime
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
        return clients.accounts_by_id(runtime().uow(), query["id"])
