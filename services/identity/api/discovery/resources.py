"""Key set and discovery document, for services that verify our access tokens."""
from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from services.identity.runtime import runtime

blp = Blueprint("discovery", __name__, url_prefix="/.well-known", description="Keys and discovery")


@blp.route("/jwks.json")
class Jwks(MethodView):
    @blp.response(200)
    def get(self):
        """Public keys that may verify a live access token (JWK set)"""
        response = jsonify(runtime().keys.jwks())
        response.headers["Cache-Control"] = "public, max-age=300"
        return response


@blp.route("/openid-configuration")
class OpenIdConfiguration(MethodView):
    @blp.response(200)
    def get(self):
        """OpenID Connect discovery document"""
        settings = runtime().settings
        base = settings.public_url
        response = jsonify({
            "issuer": settings.issuer,
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "token_endpoint": f"{base}/v1/oauth/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "sid", "email", "email_verified",
                                 "given_name", "family_name", "amr", "auth_time"],
        })
        response.headers["Cache-Control"] = "public, max-age=300"
        return response
