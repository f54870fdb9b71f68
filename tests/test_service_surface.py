"""What every HTTP process serves (CONTRACT.md, "Processes and ports"): /healthz, /readyz with the
database and the bus, /metrics in Prometheus text, /openapi.json and /docs; and every identity endpoint
of the contract that exists so far is documented in identity's OpenAPI with a summary."""
from __future__ import annotations

import re
from pathlib import Path

import jsonschema_rs
import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.specs.openapi.definitions import OPENAPI_30
from werkzeug.exceptions import MethodNotAllowed, NotFound

from shared.service_app import DOCS_CSP
from tests.conftest import assert_problem, service_app
from tests.identity.test_email_verification import page_loads

SERVICES = ["identity", "tenancy", "notifier"]
CLOSED_BROKER = "amqp://guest:guest@127.0.0.1:1//"
CLOSED_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/threshold"
OPERATIONAL_ROUTES = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/", "/static/<path:filename>"}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Identity endpoints of CONTRACT.md as (method, OpenAPI path, a concrete path to route). The HTML page
# GET /verify-email is the one contract entry left out: it is a browser page, not part of the JSON API,
# and its errors are HTML by design.
CONTRACT_IDENTITY_ENDPOINTS = [
    ("post", "/v1/accounts", "/v1/accounts"),
    ("post", "/v1/email-verifications", "/v1/email-verifications"),
    ("post", "/v1/email-verifications/confirm", "/v1/email-verifications/confirm"),
    ("post", "/v1/sessions", "/v1/sessions"),
    ("post", "/v1/sessions/mfa", "/v1/sessions/mfa"),
    ("post", "/v1/tokens/refresh", "/v1/tokens/refresh"),
    ("post", "/v1/sessions/revoke", "/v1/sessions/revoke"),
    ("get", "/v1/me", "/v1/me"),
    ("patch", "/v1/me", "/v1/me"),
    ("post", "/v1/me/password", "/v1/me/password"),
    ("post", "/v1/password-resets", "/v1/password-resets"),
    ("post", "/v1/password-resets/confirm", "/v1/password-resets/confirm"),
    ("post", "/v1/me/mfa/totp", "/v1/me/mfa/totp"),
    ("post", "/v1/me/mfa/totp/confirm", "/v1/me/mfa/totp/confirm"),
    ("post", "/v1/me/mfa/totp/disable", "/v1/me/mfa/totp/disable"),
    ("get", "/v1/oidc/{provider}/authorize", "/v1/oidc/google/authorize"),
    ("get", "/v1/oidc/{provider}/callback", "/v1/oidc/google/callback"),
    ("post", "/v1/sessions/oidc", "/v1/sessions/oidc"),
    ("post", "/v1/oauth/token", "/v1/oauth/token"),
    ("get", "/internal/v1/accounts", "/internal/v1/accounts"),
    ("get", "/.well-known/jwks.json", "/.well-known/jwks.json"),
    ("get", "/.well-known/openid-configuration", "/.well-known/openid-configuration"),
]


def base_env(service: str, database_url: str, var_dir: Path, broker_url: str) -> dict:
    return {"APP_ENV": "test", f"{service.upper()}_DATABASE_URL": database_url, "BROKER_URL": broker_url,
            "VAR_DIR": str(var_dir)}


def build(service: str, database_url: str, var_dir: Path, broker_url: str = "memory://", clock=None) -> Flask:
    return service_app(service, base_env(service, database_url, var_dir, broker_url), clock)


class Databases:
    """Fresh migrated databases for any service on this test's backend, dropped afterwards."""

    def __init__(self, backend: str, databases):
        self.backend = backend
        self.factory = databases
        self.urls: list[str] = []

    def fresh(self, service: str, disposable: bool = False) -> str:
        url = self.factory.fresh(self.backend, f"services.{service}", disposable=disposable)
        self.urls.append(url)
        return url

    def make_unreachable(self, url: str) -> None:
        """The database stops answering: on PostgreSQL it is dropped, on SQLite its file becomes a folder."""
        self.urls.remove(url)
        if url.startswith("postgresql"):
            self.factory.drop(url)
            return
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.mkdir()

    def drop_all(self) -> None:
        for url in self.urls:
            self.factory.drop(url)
        self.urls.clear()


@pytest.fixture
def service_databases(backend, databases):
    made = Databases(backend, databases)
    yield made
    made.drop_all()


@pytest.fixture(params=SERVICES)
def service(request) -> str:
    return request.param


@pytest.fixture
def app(service, service_databases, tmp_path, clock) -> Flask:
    return build(service, service_databases.fresh(service), tmp_path, clock=clock)


def unreachable_database_app(service: str, service_databases: Databases, tmp_path: Path, clock) -> Flask:
    """The service built on a database that does not answer. Identity needs its database to start (it
    loads its signing keys), so its database goes away after the start; the others start without one."""
    if service == "identity":
        url = service_databases.fresh(service, disposable=True)
        app = build(service, url, tmp_path, clock=clock)
        app.extensions["threshold.identity"].session_factory.kw["bind"].dispose()
        service_databases.make_unreachable(url)
        return app
    if service_databases.backend == "postgres":
        return build(service, CLOSED_POSTGRES, tmp_path, clock=clock)
    folder = tmp_path / "database-is-a-folder"
    folder.mkdir()
    return build(service, f"sqlite:///{folder}", tmp_path, clock=clock)


# --- health and readiness -------------------------------------------------------------------------

def test_healthz_answers_200(app):
    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_every_response_carries_a_request_id_and_no_store_headers(app):
    client = app.test_client()

    made_up = client.get("/healthz")
    echoed = client.get("/healthz", headers={"X-Request-ID": "trace-1.a_B"})
    refused = client.get("/healthz", headers={"X-Request-ID": "not a valid id"})
    longest = client.get("/healthz", headers={"X-Request-ID": "a" * 64})
    too_long = client.get("/healthz", headers={"X-Request-ID": "a" * 65})

    assert re.fullmatch(r"[0-9a-f]{16}", made_up.headers["X-Request-ID"])
    assert echoed.headers["X-Request-ID"] == "trace-1.a_B"
    assert longest.headers["X-Request-ID"] == "a" * 64
    assert re.fullmatch(r"[0-9a-f]{16}", refused.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{16}", too_long.headers["X-Request-ID"])
    for response in (made_up, echoed, refused, longest, too_long):
        assert response.headers.getlist("Cache-Control") == ["no-store"]
        assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]


def test_every_response_forbids_framing_and_referrers(app):
    client = app.test_client()

    for response in (client.get("/healthz"), client.get("/openapi.json"), client.get("/docs"),
                     client.get("/no-such-route"), client.delete("/healthz"), client.options("/healthz")):
        assert response.headers.getlist("Referrer-Policy") == ["no-referrer"]
        assert response.headers.getlist("X-Frame-Options") == ["DENY"]
        # /docs has a policy of its own for the page's scripts (DOCS_CSP), with the same frame-ancestors
        expected = DOCS_CSP if response.request.path == "/docs" else "frame-ancestors 'none'"
        assert response.headers.getlist("Content-Security-Policy") == [expected]
    assert "frame-ancestors 'none'" in DOCS_CSP and "'unsafe-inline'" not in DOCS_CSP.split("style-src-attr")[0]


def test_every_html_page_of_identity_is_under_the_strict_policy(service_databases, tmp_path, clock):
    identity = build("identity", service_databases.fresh("identity"), tmp_path, clock=clock).test_client()

    for path in ("/verify-email?token=x", "/reset-password?token=x", "/v1/oidc/nope/callback?code=a&state=b"):
        response = identity.get(path)
        assert response.mimetype == "text/html", path
        page_loads(identity, response)


def concrete(rule) -> str:
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", "x", rule.rule)  # <string:id> -> x


def test_options_answers_204_with_allow_and_no_body_on_every_route(app):
    client = app.test_client()

    for rule in app.url_map.iter_rules():
        response = client.options(concrete(rule))

        assert response.status_code == 204, (rule.rule, response.status_code)
        assert set(response.headers["Allow"].split(", ")) >= rule.methods, rule.rule
        assert response.get_data() == b"" and "Content-Type" not in response.headers, rule.rule


def test_a_204_of_the_api_has_no_content_type(service_databases, tmp_path, clock):
    identity = build("identity", service_databases.fresh("identity"), tmp_path, clock=clock).test_client()

    response = identity.post("/v1/sessions/revoke", json={"refresh_token": "x" * 43})  # unknown: ignored, 204

    assert response.status_code == 204
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers


def test_a_response_that_sets_its_own_cache_control_keeps_it(service_databases, tmp_path, clock):
    identity = build("identity", service_databases.fresh("identity"), tmp_path, clock=clock).test_client()

    jwks = identity.get("/.well-known/jwks.json")

    assert jwks.headers.getlist("Cache-Control") == ["public, max-age=300"]
    assert jwks.headers.getlist("X-Content-Type-Options") == ["nosniff"]


def report_consumer_at_work(database_url: str) -> None:
    """What a notifier consumer does when it starts consuming: its heartbeat row (the consumer itself,
    and the check failing without one, are tested in tests/notifier/test_consumer_faults.py)."""
    from services.notifier.consumer import Heartbeat
    from services.notifier.repository import CONSUMING, Heartbeats
    from shared.database import make_engine

    engine = make_engine(database_url)
    try:
        Heartbeat(Heartbeats(engine), interval=15)(CONSUMING)
    finally:
        engine.dispose()


def test_readyz_answers_200_when_database_and_bus_answer(app, service, service_databases):
    if service == "notifier":  # whose readiness also needs a consumer at work
        report_consumer_at_work(service_databases.urls[-1])
    response = app.test_client().get("/readyz")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["checks"] == {"database": "ok", "bus": "ok",
                                             **({"consumer": "ok"} if service == "notifier" else {})}


def test_readyz_answers_503_naming_the_bus_when_the_broker_is_down(service, service_databases, tmp_path, clock):
    app = build(service, service_databases.fresh(service), tmp_path, broker_url=CLOSED_BROKER, clock=clock)
    client = app.test_client()

    body = assert_problem(client.get("/readyz"), 503, "not_ready")
    assert body["checks"]["bus"].startswith("failed")
    assert body["checks"]["database"] == "ok"
    assert "bus" in body["detail"] and "database" not in body["detail"]
    assert "Traceback" not in str(body) and "127.0.0.1:1" not in str(body) and "guest" not in str(body)
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_answers_503_naming_the_database_when_it_is_unreachable(service, service_databases, tmp_path, clock):
    app = unreachable_database_app(service, service_databases, tmp_path, clock)
    client = app.test_client()

    body = assert_problem(client.get("/readyz"), 503, "not_ready")
    assert body["checks"]["database"].startswith("failed")
    assert body["checks"]["bus"] == "ok"
    assert "database" in body["detail"] and "bus" not in body["detail"]
    assert client.get("/healthz").status_code == 200


def test_readyz_names_both_when_both_are_down(service, service_databases, tmp_path, clock):
    if service == "identity":
        url = service_databases.fresh(service, disposable=True)
        app = build(service, url, tmp_path, broker_url=CLOSED_BROKER, clock=clock)
        app.extensions["threshold.identity"].session_factory.kw["bind"].dispose()
        service_databases.make_unreachable(url)
    else:
        database = CLOSED_POSTGRES if service_databases.backend == "postgres" else f"sqlite:///{tmp_path}"
        app = build(service, database, tmp_path, broker_url=CLOSED_BROKER, clock=clock)

    body = assert_problem(app.test_client().get("/readyz"), 503, "not_ready")
    assert body["checks"]["database"].startswith("failed") and body["checks"]["bus"].startswith("failed")
    assert "database" in body["detail"] and "bus" in body["detail"]


# --- metrics --------------------------------------------------------------------------------------

def requests_counted(client, service: str, route: str) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "threshold_http_requests_total" in text
    total = 0.0
    for family in text_string_to_metric_families(text):  # also proves the exposition parses
        if family.name != "threshold_http_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if (sample.name == "threshold_http_requests_total" and labels.get("service") == service
                    and labels.get("route") == route and labels.get("method") == "GET"
                    and labels.get("status") == "200"):
                total += sample.value
    return total


def test_metrics_is_prometheus_text_counting_requests(app, service):
    client = app.test_client()
    before = requests_counted(client, service, "/healthz")

    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").status_code == 200

    assert requests_counted(client, service, "/healthz") == before + 2


def test_metrics_still_answers_while_the_broker_is_down(service, service_databases, tmp_path, clock):
    app = build(service, service_databases.fresh(service), tmp_path, broker_url=CLOSED_BROKER, clock=clock)

    response = app.test_client().get("/metrics")

    assert response.status_code == 200
    assert "threshold_http_requests_total" in response.get_data(as_text=True)


# --- OpenAPI and docs -----------------------------------------------------------------------------

def openapi(app: Flask) -> dict:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_openapi_is_a_valid_openapi_3_document_with_paths(app, service):
    spec = openapi(app)

    errors = [str(error) for error in jsonschema_rs.Draft4Validator(OPENAPI_30).iter_errors(spec)]
    assert errors == []
    assert spec["openapi"].startswith("3.0")
    assert spec["info"]["title"] == f"Threshold {service}"
    assert isinstance(spec["paths"], dict)
    if service != "notifier":  # the notifier has no API of its own, only the operational routes
        assert spec["paths"]


def documented_operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {(method, path): operation for path, item in spec["paths"].items()
            for method, operation in item.items() if method in HTTP_METHODS}


def test_every_api_route_is_in_openapi_with_a_summary(app):
    operations = documented_operations(openapi(app))
    missing, unsummarised = [], []
    for rule in app.url_map.iter_rules():
        if rule.rule in OPERATIONAL_ROUTES or not rule.rule.startswith(("/v1/", "/internal/", "/.well-known/")):
            continue
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)  # <string:id> -> {id}
        for method in sorted(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}):
            operation = operations.get((method, path))
            if operation is None:
                missing.append(f"{method.upper()} {path}")
            elif not str(operation.get("summary", "")).strip():
                unsummarised.append(f"{method.upper()} {path}")

    assert missing == []
    assert unsummarised == []


def test_every_existing_contract_endpoint_of_identity_is_documented_with_a_summary(service_databases, tmp_path,
                                                                                  clock):
    app = build("identity", service_databases.fresh("identity"), tmp_path, clock=clock)
    operations = documented_operations(openapi(app))
    routes = app.url_map.bind("localhost")
    existing, problems = [], []
    for method, path, concrete in CONTRACT_IDENTITY_ENDPOINTS:
        try:
            routes.match(concrete, method=method.upper())
        except (NotFound, MethodNotAllowed):
            continue  # not built yet
        existing.append(f"{method.upper()} {path}")
        operation = operations.get((method, path))
        if operation is None or not str(operation.get("summary", "")).strip():
            problems.append(f"{method.upper()} {path}")

    assert "POST /v1/accounts" in existing and "GET /.well-known/jwks.json" in existing
    assert problems == []


def test_docs_is_an_html_page_loading_the_openapi_document(app):
    response = app.test_client().get("/docs")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "swagger-ui" in page.lower()
    assert "openapi.json" in page
