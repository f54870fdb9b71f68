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
        """OpenID Connect discovery document (the OpenID Provider's metadata)"""
        response = jsonify(runtime().provider.discovery())
        response.headers["Cache-Control"] = "public, max-age=300"
        return response
