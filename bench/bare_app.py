"""The baseline for request overhead: one flask-smorest GET returning a small JSON, nothing else, and
(for the informational POST floor) the same resource taking a one-field JSON body.

Served like identity: `python -m gunicorn --config deploy/gunicorn.conf.py 'bench.bare_app:create_app()'`.
"""
from __future__ import annotations

from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields

blp = Blueprint("ping", __name__, url_prefix="/v1", description="Bare endpoint")


class PingSchema(Schema):
    status = fields.String()
    service = fields.String()


class TokenSchema(Schema):
    refresh_token = fields.String(required=True)


@blp.route("/ping")
class Ping(MethodView):
    @blp.response(200, PingSchema)
    def get(self):
        """A small JSON document"""
        return {"status": "ok", "service": "bare"}

    @blp.arguments(TokenSchema())
    @blp.response(200, PingSchema)
    def post(self, body):
        """The same document, after reading a body shaped like a refresh request's"""
        return {"status": "ok", "service": "bare"}


def create_app() -> Flask:
    app = Flask("bare")
    app.config.update(API_TITLE="Bare", API_VERSION="1.0", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    api.register_blueprint(blp)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
