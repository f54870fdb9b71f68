"""The OpenID Provider's endpoints (`/oauth2/*`). Clients learn them from the discovery document.

Token, revocation and introspection answer in RFC 6749's JSON (`{"error", "error_description"}`), not
problem+json: that is what OAuth clients read. The authorization endpoint answers the browser: a
redirect, or an HTML page when the request cannot be trusted to say where to go.
"""
from __future__ import annotations

from flask import Response, g, json, redirect, request
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.wrappers import Response as BaseResponse

from services.identity import clients
from services.identity.api.common import guess_throttle
from services.identity.api.pages.resources import page
from services.identity.oauth_server import basic_credentials
from services.identity.provider import HttpRequest, Redirect, SignedOut
from services.identity.runtime import runtime
from shared.auth import bearer_required
from shared.errors import DomainError, RateLimited

blp = Blueprint("openid_provider", __name__, url_prefix="/oauth2", description="OpenID Provider")

CHALLENGE = 'Basic realm="threshold"'


def http_request() -> HttpRequest:
    return HttpRequest(method=request.method, query=request.args.to_dict(flat=False),
                       form=request.form.to_dict(flat=False), headers=dict(request.headers))


def oauth_response(status: int, body: dict, headers: list) -> Response:
    """An RFC 6749 answer: JSON, never cached; a 401 to a client that used Basic challenges Basic."""
    if body.get("error") == "unsupported_token_type":
        status = 400  # RFC 7009 2.2.1 and RFC 6749 5.2 (authlib answers 401, which asks for credentials)
    response = Response(json.dumps(body), status, mimetype="application/json")
    for name, value in headers:
        if name.lower() not in ("content-type", "cache-control", "pragma"):
            response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    if status == 401 and body.get("error") == "invalid_client":
        response.headers["WWW-Authenticate"] = CHALLENGE
    return response


def _browser(outcome) -> BaseResponse:
    if isinstance(outcome, Redirect):
        return redirect(outcome.url, 302)
    if isinstance(outcome, SignedOut):
        return page("pages/oidc_error.html", 200, title="Signed out", message="You are signed out.")
    return page("pages/oidc_error.html", 400, title="Sign-in did not work", message=outcome.message)


#: How the protocol's own answers are documented: the browser routes' error page is HTML, and the back-channel
#: routes answer in RFC 6749's JSON (`{"error", "error_description"}`), not problem+json (CONTRACT).
HTML_PAGE = {"schema": {"type": "string"}, "content_type": "text/html"}
OAUTH_ERROR = {"schema": {"type": "object", "properties": {"error": {"type": "string"},
                                                         "error_description": {"type": "string"}}},
               "content_type": "application/json"}


@blp.route("/authorize", methods=["GET", "POST"])
class Authorize(MethodView):
    @blp.response(302)
    @blp.alt_response(200, description="the page of an error that cannot go to the client", **HTML_PAGE)
    @blp.alt_response(400, description="an HTML page: unknown client or unregistered redirect_uri", **HTML_PAGE)
    def get(self):
        """Authorization endpoint (OpenID Connect, code flow with PKCE)

        Sends the browser to the hosted sign-in page, then back to the client's redirect_uri with
        `code`, `state` and `iss`. Errors go to the redirect_uri when it is registered, else to a page.
        """
        rt = runtime()
        return _browser(rt.provider.authorize(rt.uow(), http=http_request(), now=rt.clock()))

    @blp.response(302)
    @blp.alt_response(400, description="an HTML page: unknown client or unregistered redirect_uri", **HTML_PAGE)
    def post(self):
        """Authorization endpoint, form-posted (OpenID Connect Core 3.1.2.1)"""
        return self.get()


@blp.route("/token", methods=["POST"])
class Token(MethodView):
    @blp.response(200)
    @blp.alt_response(400, description="RFC 6749 error JSON: invalid_grant, invalid_request, ...", **OAUTH_ERROR)
    @blp.alt_response(401, description="invalid_client (WWW-Authenticate: Basic)", **OAUTH_ERROR)
    @blp.alt_response(429, description="slow_down: too many wrong client secrets (Retry-After)", **OAUTH_ERROR)
    def post(self):
        """Token endpoint: authorization_code, refresh_token (rotated) and client_credentials"""
        rt = runtime()
        if request.form.get("grant_type") == "client_credentials":
            return _service_token()
        return _back_channel(rt.provider.token)


def _back_channel(endpoint) -> Response:
    rt = runtime()
    try:
        return oauth_response(*endpoint(rt.uow(), throttle=guess_throttle(), http=http_request(), now=rt.clock()))
    except RateLimited as error:
        return _slow_down(error)


def _slow_down(error: RateLimited) -> Response:
    response = oauth_response(429, {"error": "slow_down", "error_description": error.detail}, [])
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def _service_token() -> Response:
    """Service-to-service tokens, as `POST /v1/oauth/token` issues them, in RFC 6749's shapes."""
    rt = runtime()
    basic = basic_credentials(request.headers.get("Authorization", ""))
    client_id, secret = basic if basic else (request.form.get("client_id", ""), request.form.get("client_secret", ""))
    try:
        body = clients.issue_token(rt.reads, throttle=guess_throttle(), keys=rt.keys, settings=rt.settings,
                                   grant_type="client_credentials", client_id=client_id[:100],
                                   client_secret=secret[:512], scope=request.form.get("scope"), now=rt.clock())
    except RateLimited as error:
        return _slow_down(error)
    except DomainError as error:
        status = 401 if error.code == "invalid_client" else 400
        return oauth_response(status, {"error": error.code, "error_description": error.detail}, [])
    return oauth_response(200, body, [])


@blp.route("/revoke", methods=["POST"])
class Revoke(MethodView):
    @blp.response(200)
    @blp.alt_response(400, description="RFC 6749 error JSON: invalid_request, unsupported_token_type", **OAUTH_ERROR)
    @blp.alt_response(401, description="invalid_client (WWW-Authenticate: Basic)", **OAUTH_ERROR)
    @blp.alt_response(429, description="slow_down: too many wrong client secrets (Retry-After)", **OAUTH_ERROR)
    def post(self):
        """Token revocation (RFC 7009): revokes the grant the token belongs to"""
        rt = runtime()
        return _back_channel(rt.provider.revoke)


@blp.route("/introspect", methods=["POST"])
class Introspect(MethodView):
    @blp.response(200)
    @blp.alt_response(400, description="RFC 6749 error JSON: invalid_request", **OAUTH_ERROR)
    @blp.alt_response(401, description="invalid_client: a public client, or wrong credentials", **OAUTH_ERROR)
    @blp.alt_response(429, description="slow_down: too many wrong client secrets (Retry-After)", **OAUTH_ERROR)
    def post(self):
        """Token introspection (RFC 7662), for confidential clients about their own tokens"""
        rt = runtime()
        return _back_channel(rt.provider.introspect)


@blp.route("/userinfo", methods=["GET", "POST"])
class UserInfo(MethodView):
    @bearer_required()
    @blp.response(200)
    @blp.alt_response(401, description="invalid_token")
    def get(self):
        """UserInfo (OpenID Connect Core 5.3): the person's claims the access token's scope opens"""
        rt = runtime()
        return rt.provider.userinfo(rt.uow(), claims=g.claims)

    @bearer_required()
    @blp.response(200)
    def post(self):
        """UserInfo, by POST"""
        rt = runtime()
        return rt.provider.userinfo(rt.uow(), claims=g.claims)


@blp.route("/logout", methods=["GET", "POST"])
class Logout(MethodView):
    @blp.response(302)
    @blp.alt_response(200, description="an HTML page: you are signed out", **HTML_PAGE)
    @blp.alt_response(400, description="an HTML page: no valid id_token_hint, or an unregistered "
                                       "post_logout_redirect_uri", **HTML_PAGE)
    def get(self):
        """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)"""
        rt = runtime()
        values = request.values
        return _browser(rt.provider.end_session(
            rt.uow(), id_token_hint=values.get("id_token_hint"),
            post_logout_redirect_uri=values.get("post_logout_redirect_uri"), state=values.get("state"),
            now=rt.clock()))

    @blp.response(302)
    @blp.alt_response(200, description="an HTML page: you are signed out", **HTML_PAGE)
    @blp.alt_response(400, description="an HTML page: no valid id_token_hint, or an unregistered "
                                       "post_logout_redirect_uri", **HTML_PAGE)
    def post(self):
        """RP-initiated logout, form-posted"""
        return self.get()
