"""Sign-in through OpenID providers (Google and any OIDC issuer), and linking them to an account."""
from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import g, redirect, request
from flask.views import MethodView
from flask_smorest import Blueprint
from itsdangerous import BadSignature, URLSafeTimedSerializer
from marshmallow import Schema, fields, validate

from services.identity import federation
from services.identity.api.common import SignInResultSchema, device, limit_per_ip, token_field
from services.identity.api.pages.resources import page
from services.identity.oidc import AuthorizationRequest, OidcError, ReturnToNotAllowed, return_to_allowed
from services.identity.runtime import runtime
from shared.auth import bearer_required

blp = Blueprint("oidc", __name__, url_prefix="/v1", description="Sign-in with Google or another OpenID provider")

COOKIE = "threshold_oidc"
COOKIE_MAX_AGE = 600
ERROR_CODE = re.compile(r"^[a-z_]{1,40}$")


class AuthorizeQuerySchema(Schema):
    return_to = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class CallbackQuerySchema(Schema):
    class Meta:
        unknown = "exclude"  # providers add parameters of their own (session_state, iss, scope, ...)

    code = fields.String(validate=validate.Length(max=2000))
    state = fields.String(validate=validate.Length(max=200))
    error = fields.String(validate=validate.Length(max=200))


class LoginCodeSchema(Schema):
    login_code = token_field(required=True)


class LinkCodeSchema(Schema):
    link_code = token_field(required=True)


class IdentitySchema(Schema):
    provider = fields.String()
    issuer = fields.String()
    subject = fields.String()
    email = fields.String(allow_none=True)
    created_at = fields.DateTime()


class IdentityListSchema(Schema):
    items = fields.List(fields.Nested(IdentitySchema))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime().settings.secret_key, salt="threshold-oidc-state")


def _redirect_uri(provider: str) -> str:
    return f"{runtime().settings.public_url}/v1/oidc/{provider}/callback"


def _back_to_app(return_to: str, **fragment) -> str:
    parts = urlsplit(return_to)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, urlencode(fragment)))


def _error_page(message: str, status: int = 400):
    # A Response object, so flask-smorest passes it through as HTML instead of serialising it.
    return page("pages/oidc_error.html", status, title="Sign-in did not work", message=message)


@blp.route("/oidc/<string:provider>/authorize")
class Authorize(MethodView):
    @blp.arguments(AuthorizeQuerySchema(), location="query")
    @blp.response(302)
    @blp.alt_response(400, description="return_to_not_allowed")
    @blp.alt_response(404, description="no such provider")
    def get(self, query, provider):
        """Start sign-in with a provider: redirects the browser there

        `return_to` must be on ALLOWED_RETURN_URLS; after the provider, the browser comes back to it
        with `#login_code=…` (or `#error=…`).
        """
        rt = runtime()
        chosen = rt.oidc.get(provider)
        if not return_to_allowed(query["return_to"], rt.settings.allowed_return_urls):
            raise ReturnToNotAllowed()
        pending = AuthorizationRequest.new(provider, query["return_to"])
        response = redirect(chosen.authorization_url(pending, _redirect_uri(provider)), 302)
        response.set_cookie(COOKIE, _serializer().dumps(pending.__dict__), max_age=COOKIE_MAX_AGE, httponly=True,
                            samesite="Lax", secure=rt.settings.public_url.startswith("https"),
                            path=f"/v1/oidc/{provider}/")
        return response


@blp.route("/oidc/<string:provider>/callback")
class Callback(MethodView):
    @blp.arguments(CallbackQuerySchema(), location="query")
    @blp.response(302)
    @blp.alt_response(400, schema={"type": "string"}, content_type="text/html",
                      description="an HTML page: the sign-in cannot continue (state, cookie)")
    def get(self, query, provider):
        """Where the provider sends the browser back

        Checks state (against the signed cookie), exchanges the code with the PKCE verifier,
        verifies the ID token and nonce, then redirects to `return_to#login_code=…`.
        """
        rt = runtime()
        try:
            chosen = rt.oidc.get(provider)
            cookie = _serializer().loads(request.cookies.get(COOKIE, ""), max_age=COOKIE_MAX_AGE)
            pending = AuthorizationRequest(**cookie)
        except (BadSignature, TypeError, OidcError):
            return _error_page("This sign-in was not started in this browser, or it took too long.")
        if pending.provider != provider or not query.get("state") or query["state"] != pending.state:
            return _error_page("The answer from the provider does not belong to this sign-in (state).")
        if "error" in query or not query.get("code"):
            error = query.get("error", "invalid_request")
            target = _back_to_app(pending.return_to, error=error if ERROR_CODE.match(error) else "provider_error")
        else:
            try:
                claims = chosen.exchange(query["code"], pending, _redirect_uri(provider))
                code = federation.issue_login_code(rt.uow(), provider=chosen.config, claims=claims, now=rt.clock())
                target = _back_to_app(pending.return_to, login_code=code)
            except OidcError as error:
                target = _back_to_app(pending.return_to, error=error.code, error_description=error.detail)
        response = redirect(target, 302)
        response.delete_cookie(COOKIE, path=f"/v1/oidc/{provider}/")
        return response


@blp.route("/sessions/oidc")
class OidcSession(MethodView):
    @blp.arguments(LoginCodeSchema())
    @blp.response(200, SignInResultSchema)
    @blp.alt_response(400, description="token_invalid or token_expired")
    @blp.alt_response(409, description="account_exists: sign in with the password, then link (link_code)")
    @blp.alt_response(429, description="rate_limited: too many attempts (Retry-After)")
    def post(self, body):
        """Exchange a login_code for a token pair (amr ["fed"])

        Creates the account on a first sign-in. 2FA is not asked on this path unless the provider's
        `require_mfa` is on.
        """
        limit_per_ip("sign-in")
        rt = runtime()
        return federation.sign_in(rt.uow(), keys=rt.keys, settings=rt.settings, providers=rt.settings.oidc_providers,
                                  login_code=body["login_code"], now=rt.clock(), device=device())


@blp.route("/me/identities")
class MyIdentities(MethodView):
    @bearer_required()
    @blp.response(200, IdentityListSchema)
    def get(self):
        """Provider identities linked to the signed-in account"""
        return {"items": federation.identities(runtime().uow(), account_id=g.claims["sub"])}

    @bearer_required()
    @blp.arguments(LinkCodeSchema())
    @blp.response(201, IdentityListSchema)
    @blp.alt_response(400, description="token_invalid or token_expired")
    @blp.alt_response(409, description="identity_linked_elsewhere")
    def post(self, body):
        """Link a provider identity (the link_code from a 409 account_exists) to the signed-in account"""
        rt = runtime()
        return {"items": federation.link(rt.uow(), account_id=g.claims["sub"], link_code=body["link_code"],
                                         now=rt.clock())}
