"""What every service's Flask app shares: OpenAPI and /docs, problem+json errors, request ids,
`/healthz`, `/readyz`, `/readyz/serving` and `/metrics`."""
from __future__ import annotations

import html
import re
import secrets
import time
from collections.abc import Callable, Collection
from pathlib import Path

from flask import Blueprint as FlaskBlueprint
from flask import Flask, Response, g, jsonify, request, url_for
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields

from shared import auth, errors, metrics, request_guard
from shared.config import ServiceSettings
from shared.errors import ErrorMap

#: Where an app keeps the settings it was built with (gunicorn's worker configures logging from them).
SETTINGS = "threshold.settings"
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
STATIC = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs/static"
# /docs runs the vendored Swagger UI (static/swagger-ui-dist) and static/docs.js, fetches /openapi.json,
# and needs nothing else: no CDN, no inline script. Swagger UI draws a few icons as data: images and sets
# style attributes; style-src-attr 'unsafe-inline' allows those attributes only, never a <style> or a script.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui-dist/swagger-ui.css"></head>
<body><div id="swagger-ui" data-spec-url="{spec_url}"></div>
<script src="{assets}/swagger-ui-dist/swagger-ui-bundle.js"></script>
<script src="{assets}/docs.js"></script></body></html>
"""


class StatusSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadinessSchema(StatusSchema):
    checks = fields.Dict(keys=fields.String(), values=fields.String(), metadata={"example": {"database": "ok"}})


class ServiceFlask(Flask):
    def make_default_options_response(self):
        """`OPTIONS` answers 204 with `Allow` and no body (Flask's own is an empty text/html 200)."""
        response = super().make_default_options_response()
        response.status_code = 204
        return response


class ProblemApi(Api):
    """flask-smorest Api whose HTTP errors are problem+json documents, and documented as such
    (`errors.ProblemDocs`): no catch-all `default` response with flask-smorest's own error schema."""

    DEFAULT_ERROR_RESPONSE_NAME = None
    ERROR_SCHEMA = errors.ProblemSchema

    def handle_http_exception(self, error):
        return errors.http_exception_problem(error)

    def _openapi_swagger_ui(self):
        """/docs: the vendored Swagger UI under DOCS_CSP (flask-smorest's page loads it from a CDN with an
        inline script)."""
        page = DOCS_PAGE.format(title=html.escape(self.spec.title), assets=DOCS_ASSETS,
                                spec_url=url_for("api-docs.openapi_json"))
        return Response(page, mimetype="text/html", headers={"Content-Security-Policy": DOCS_CSP})


def build_app(name: str, title: str, description: str, error_map: ErrorMap,
              readiness: dict[str, Callable[[], None]], collectors=(),
              serving: Collection[str] = ("database",), settings: ServiceSettings | None = None) -> tuple[Flask, Api]:
    app = ServiceFlask(name)
    app.extensions[SETTINGS] = settings
    app.config.update(
        API_TITLE=title,
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=f"{DOCS_ASSETS}/swagger-ui-dist/",
        API_SPEC_OPTIONS={"info": {"description": description}},
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    api = ProblemApi(app, spec_kwargs={"extra_plugins": [errors.ProblemDocs()]})
    for scheme, definition in auth.SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(scheme, definition)
    errors.register(app, error_map)
    instrument(app, name)
    api.register_blueprint(operations_blueprint(readiness, collectors, serving))
    app.register_blueprint(FlaskBlueprint("docs_assets", __name__, static_folder=STATIC, static_url_path=DOCS_ASSETS))
    return app, api


def broker_check(connect: Callable) -> Callable[[], None]:
    """Readiness check that opens (and closes) a broker connection."""

    def check() -> None:
        connection = connect()
        try:
            connection.ensure_connection(max_retries=1, timeout=2)
        finally:
            connection.release()

    return check


def instrument(app: Flask, name: str) -> None:
    """Request ids, default security and cache headers, and request metrics for every response of `app`."""
    request_metrics = metrics.RequestMetrics(name)

    # One hook on each side of the view for everything every request needs: each hook Flask calls costs
    # about as much as the work in it.
    # Headers are read from the WSGI environ and the response's own list: werkzeug answers a missing
    # header (`in`, `get`) by raising and catching a KeyError, which costs more than the lookup.
    @app.before_request
    def _begin():
        g.request_started = time.perf_counter()
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        return request_guard.refusal(request)

    @app.after_request
    def _finish(response):
        headers = response.headers
        present = set(headers.keys(lower=True))
        headers["X-Request-ID"] = g.get("request_id", "")
        if "cache-control" not in present:
            headers["Cache-Control"] = "no-store"
        if "x-content-type-options" not in present:
            headers["X-Content-Type-Options"] = "nosniff"
        if "content-security-policy" not in present:  # HTML pages set a stricter one of their own
            headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        if response.status_code == 204:  # no content, so no Content-Type (RFC 9110 8.3)
            headers.pop("Content-Type", None)
        started = g.get("request_started")
        if started is not None:
            rule = request.url_rule
            request_metrics.observe(request.method, rule.rule if rule is not None else "unmatched",
                                    response.status_code, time.perf_counter() - started)
        return response


def add_operations_routes(app: Flask, readiness: dict[str, Callable[[], None]], collectors=(),
                          serving: Collection[str] = ("database",)) -> None:
    """The operations routes on an app without an OpenAPI document (web's pages)."""
    app.register_blueprint(operations_blueprint(readiness, collectors, serving))


def operations_blueprint(readiness: dict[str, Callable[[], None]], collectors=(),
                         serving: Collection[str] = ("database",)) -> Blueprint:
    """`/healthz`, `/readyz` (each check in `readiness` must not raise), `/readyz/serving` (those of them
    named in `serving`) and `/metrics`, documented in the OpenAPI document of the app that registers it."""
    operations = Blueprint("operations", __name__, description="Health, readiness and metrics, for operators")

    @operations.route("/healthz")
    @operations.response(200, StatusSchema)
    def healthz():
        """Liveness: the process answers"""
        return jsonify(status="ok")

    def ready(checks: dict[str, Callable[[], None]]):
        results, ok = {}, True
        for check_name, check in checks.items():
            try:
                check()
                results[check_name] = "ok"
            except Exception as exc:  # any failure of a dependency means not ready
                ok = False
                results[check_name] = f"failed: {type(exc).__name__}"
        if ok:
            return jsonify(status="ready", checks=results)
        failed = ", ".join(n for n, r in results.items() if r != "ok")
        return errors.problem(503, "not_ready", f"Not ready: {failed} did not answer.", checks=results)

    @operations.route("/readyz")
    @operations.response(200, ReadinessSchema)
    @operations.alt_response(503, description="not_ready, with `checks` naming what did not answer")
    def readyz():
        """Readiness: every dependency (database, bus, and the notifier's consumer) answers"""
        return ready(readiness)

    # What a load balancer should probe: only the checks requests need (`serving`). The bus is not one of
    # them: events wait in the outbox, so a broker outage must not take every API instance out of service.
    @operations.route("/readyz/serving")
    @operations.response(200, ReadinessSchema)
    @operations.alt_response(503, description="not_ready, with `checks` naming what did not answer")
    def readyz_serving():
        """Readiness to serve requests: what a load balancer probes (the database, not the bus)"""
        return ready({name: check for name, check in readiness.items() if name in serving})

    @operations.route("/metrics")
    @operations.response(200, {"type": "string"}, content_type="text/plain",
                         description="Prometheus text exposition format 0.0.4")
    def metrics_endpoint():
        """Prometheus metrics"""
        return metrics.exposition(collectors)

    return operations
