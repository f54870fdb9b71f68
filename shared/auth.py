"""Bearer-token authentication for Flask routes, for Threshold's services and any product service.

    app.extensions["threshold.verifier"] = Verifier(JwksClient(jwks_url).get, issuer, audience)

    @blp.route("/things")
    class Things(MethodView):
        @bearer_required()
        def get(self): ...   # flask.g.claims holds the verified claims
"""
from __future__ import annotations

import copy
import functools

from flask import current_app, g, request

from shared.errors import DomainError
from shared.jwt import TokenRejected, Verifier

EXTENSION = "threshold.verifier"
USER_SCHEME = "bearer"
SERVICE_SCHEME = "service_token"
#: The OpenAPI security schemes of `bearer_required` routes: a user's access token, or a service token
#: from identity's client-credentials grant.
SECURITY_SCHEMES = {
    USER_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                  "description": "A user's access token from POST /v1/sessions"},
    SERVICE_SCHEME: {"type": "oauth2", "description": "A service token (JWT) for /internal routes",
                     "flows": {"clientCredentials": {"tokenUrl": "/v1/oauth/token",
                                                     "scopes": {"accounts:read": "Read accounts by id"}}}},
}


class InsufficientScope(DomainError):
    code = "insufficient_scope"
    message = "The token does not carry the scope this route needs."


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected("A bearer token is required.")
    return token.strip()


def bearer_required(scope: str | None = None, service: bool = False):
    """Require a valid access token. User routes refuse service tokens; `service=True` routes need
    a service token carrying `scope`."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            verifier: Verifier = current_app.extensions[EXTENSION]
            claims = verifier.verify(bearer_token())
            is_service_token = "client_id" in claims and "sid" not in claims
            if service != is_service_token:
                raise TokenRejected("This route needs a " + ("service" if service else "user") + " token.")
            if scope is not None and scope not in str(claims.get("scope", "")).split():
                raise InsufficientScope(f"This route needs the {scope} scope.")
            g.claims = claims
            return view(*args, **kwargs)

        # flask-smorest reads an operation's documentation from `_apidoc`: declare the scheme it needs.
        wrapper._apidoc = copy.deepcopy(getattr(view, "_apidoc", {}))
        security = {SERVICE_SCHEME: [scope] if scope else []} if service else {USER_SCHEME: []}
        wrapper._apidoc.setdefault("manual_doc", {})["security"] = [security]
        return wrapper

    return decorate
