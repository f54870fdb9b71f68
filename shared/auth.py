"""Bearer-token authentication for Flask routes, for Threshold's services and any product service.

    app.extensions["threshold.verifier"] = Verifier(JwksClient(jwks_url).get, issuer, audience)

    @blp.route("/things")
    class Things(MethodView):
        @bearer_required()
        def get(self): ...   # flask.g.claims holds the verified claims
"""
from __future__ import annotations

import functools

from flask import current_app, g, request

from shared.errors import DomainError
from shared.jwt import TokenRejected, Verifier

EXTENSION = "threshold.verifier"


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

        return wrapper

    return decorate
