"""OAuth 2.0 client credentials: tokens for service-to-service calls."""
from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from services.identity import clients
from services.identity.api.common import guess_throttle
from services.identity.errors import InvalidClient
from services.identity.oauth_server import basic_credentials
from services.identity.runtime import runtime

blp = Blueprint("oauth", __name__, url_prefix="/v1/oauth", description="Service-to-service tokens")


class TokenRequestSchema(Schema):
    grant_type = fields.String(required=True, validate=validate.Length(max=100))
    client_id = fields.String(validate=validate.Length(min=1, max=100))
    client_secret = fields.String(validate=validate.Length(min=1, max=512), load_only=True)
    scope = fields.String(validate=validate.Length(max=500))


class ServiceTokenSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    scope = fields.String()


def _basic_credentials() -> tuple[str, str] | None:
    """client_secret_basic (RFC 6749 2.3.1), read as the OpenID Provider reads it: None without a Basic
    header, InvalidClient for one that cannot be read."""
    header = request.headers.get("Authorization", "")
    if header.partition(" ")[0].lower() != "basic":
        return None
    credentials = basic_credentials(header)
    if credentials is None:
        raise InvalidClient()
    return credentials


@blp.route("/token")
class Token(MethodView):
    @blp.arguments(TokenRequestSchema(), location="form")
    @blp.response(200, ServiceTokenSchema)
    @blp.alt_response(400, description="unsupported_grant_type or invalid_scope")
    @blp.alt_response(401, description="invalid_client, with WWW-Authenticate: Basic")
    @blp.alt_response(429, description="rate_limited: too many wrong secrets for this client from this address")
    def post(self, form):
        """Client credentials grant

        Form-encoded `grant_type=client_credentials`, with the client authenticated by
        `client_id`/`client_secret` in the form or by HTTP Basic. The token carries `client_id` and
        `scope` and no user claims. Wrong secrets are throttled per client id and client address
        like wrong passwords.
        """
        basic = _basic_credentials()
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret", ""))
        rt = runtime()
        return clients.issue_token(rt.reads, throttle=guess_throttle(), keys=rt.keys, settings=rt.settings,
                                   grant_type=form["grant_type"], client_id=client_id, client_secret=secret,
                                   scope=form.get("scope"), now=rt.clock())
