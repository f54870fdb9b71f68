"""Fixtures shared by every test: fresh databases on SQLite and PostgreSQL, a controllable clock,
the identity app with its test client, and AuthActions for the usual sign-up/verify/sign-in steps."""
from __future__ import annotations

import functools
import importlib
import itertools
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema_rs
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from support.databases import postgres_available
from support.outbox import Outbox
from support.rabbitmq import RabbitVhost, rabbitmq_available
from tests import backends

# The tenancy fixtures (identity served on loopback, tenancy on its own database) serve tests beyond
# tests/tenancy: the OpenAPI, fuzz, first-run and hostile-input tests use them too.
pytest_plugins = ("tests.tenancy_fixtures",)
CHROMIUM = "/usr/bin/chromium"


class Clock:
    """Time the tests control: `clock.advance(seconds)` instead of sleeping."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    factory = backends.DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    if postgres_available():
        factory.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request) -> str:
    if request.param == "postgres":
        backends.require(postgres_available(), "PostgreSQL")
    return request.param


@pytest.fixture
def identity_db(backend, databases) -> str:
    url = databases.fresh(backend, "services.identity")
    yield url
    databases.drop(url)


@pytest.fixture
def empty_identity_database(backend, databases, tmp_path):
    """A database with no schema at all, for testing `migrate` and the migrations themselves."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty-identity.db'}"
        return
    name = f"thr_empty_{next(backends._counter)}_{databases.run_id}"
    backends._admin_execute(f"CREATE DATABASE {name}")
    databases.created.append(name)
    url = backends._pg_url(name)
    yield url
    databases.drop(url)


_vhosts = itertools.count()


@pytest.fixture
def rabbit_vhost():
    """A RabbitMQ virtual host of this test's own on the loopback broker, deleted afterwards."""
    backends.require(rabbitmq_available(), "RabbitMQ")
    vhost = RabbitVhost(f"threshold-test-{os.getpid()}-{next(_vhosts)}").create()
    yield vhost
    vhost.delete()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def identity_env(database_url: str, var_dir, **overrides) -> dict:
    env = {
        "APP_ENV": "test",
        "IDENTITY_DATABASE_URL": database_url,
        "BROKER_URL": "memory://",
        "VAR_DIR": str(var_dir),
        "IP_RATE_LIMIT_PER_MINUTE": "100000",
        "EMAIL_RESEND_COOLDOWN": "60",
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def service_app(service: str, env: dict, clock: Clock | None = None) -> Flask:
    """`services.<service>.app.create_app` on settings read from `env`, with `clock` where given and the app
    takes one (the notifier's does not): how every app fixture builds its app."""
    app = importlib.import_module(f"services.{service}.app")
    settings = importlib.import_module(f"services.{service}.settings").Settings.from_env(env)
    if clock is None or service == "notifier":
        return app.create_app(settings)
    return app.create_app(settings, clock=clock)


@pytest.fixture
def make_identity_app(identity_db, tmp_path, clock):
    """Build the identity app on this test's database; keyword arguments override env settings."""

    def make(**overrides):
        return service_app("identity", identity_env(identity_db, tmp_path, **overrides), clock)

    return make


@pytest.fixture
def identity_app(make_identity_app):
    return make_identity_app()


@pytest.fixture
def client(identity_app):
    return identity_app.test_client()


def race(app, path: str, bodies: list[dict], form: bool = False, headers: dict | None = None) -> list:
    """POST each body to `path` (JSON, or form-encoded with `form`), each from its own thread and test
    client, all released at once; the responses in the order of the bodies."""
    barrier = threading.Barrier(len(bodies))
    responses: list = [None] * len(bodies)
    errors: list = []

    def run(index: int, body: dict) -> None:
        try:
            client = app.test_client()
            barrier.wait(timeout=30)
            responses[index] = client.post(path, headers=headers, **{"data" if form else "json": body})
        except BaseException as error:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index, body)) for index, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert not errors, errors
    return responses


@pytest.fixture
def outbox(identity_db):
    box = Outbox(identity_db)
    yield box
    box.engine.dispose()


def token_from_url(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


class AuthActions:
    """The common steps of a test that needs an account."""

    PASSWORD = "correct horse battery"

    def __init__(self, client, outbox: Outbox):
        self.client = client
        self.outbox = outbox
        self._n = 0

    def sign_up(self, email: str | None = None, password: str = PASSWORD, first_name: str = "Ada",
                last_name: str = "Lovelace"):
        if email is None:
            self._n += 1
            email = f"user{self._n}@example.com"
        response = self.client.post("/v1/accounts", json={"email": email, "password": password,
                                                          "first_name": first_name, "last_name": last_name})
        assert response.status_code == 201, response.json
        return response.json

    def verification_token(self, email: str) -> str:
        event = self.outbox.last("identity.email_verification.requested", email)
        return token_from_url(event["data"]["verification_url"])

    def verify(self, email: str):
        response = self.client.post("/v1/email-verifications/confirm", json={"token": self.verification_token(email)})
        assert response.status_code == 200, response.json
        return response.json

    def sign_in(self, email: str, password: str = PASSWORD):
        return self.client.post("/v1/sessions", json={"email": email, "password": password})

    def verified_account(self, email: str | None = None, password: str = PASSWORD) -> tuple[dict, dict]:
        """Sign up, verify and sign in; returns (account, token pair)."""
        account = self.sign_up(email, password)
        self.verify(account["email"])
        response = self.sign_in(account["email"], password)
        assert response.status_code == 200, response.json
        return account, response.json


@pytest.fixture
def auth(client, outbox) -> AuthActions:
    return AuthActions(client, outbox)


def bearer(tokens: dict | str) -> dict:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response, status: int, code: str) -> dict:
    """Check that `response` is an RFC 9457 problem document with this status and code; returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json", response.mimetype
    body = response.get_json()
    assert body["status"] == status and body["code"] == code, body
    return body


@functools.cache
def published_problem_schema() -> dict:
    """The `Problem` schema as every service's OpenAPI document publishes it."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    from shared.errors import ProblemSchema

    spec = APISpec("problem", "1", "3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.schema("Problem", schema=ProblemSchema)
    return spec.to_dict()["components"]["schemas"]["Problem"]


@pytest.fixture(autouse=True)
def every_problem_matches_the_published_schema(monkeypatch):
    """Every problem+json body any test receives through a Flask test client is checked against the
    published `Problem` schema, and its `status` against the HTTP status."""
    validator = jsonschema_rs.Draft4Validator(published_problem_schema())
    open_request = FlaskClient.open

    def open_and_check(self, *args, **kwargs):
        response = open_request(self, *args, **kwargs)
        if response.mimetype == "application/problem+json":
            body = json.loads(response.get_data())
            errors = [str(error) for error in validator.iter_errors(body)]
            assert not errors, (body, errors)
            assert body["status"] == response.status_code, body
        return response

    monkeypatch.setattr(FlaskClient, "open", open_and_check)


class LiveServer:
    """A WSGI app served over real HTTP on loopback in a thread (for JWKS fetches and the like)."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # A short poll: shutdown() waits for the serving loop's next look at its flag (0.5 s by default,
        # and some tests start three servers).
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def live_server():
    servers = []

    def start(app) -> LiveServer:
        server = LiveServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def pytest_collection_modifyitems(items):
    """Every test that may start a server in a thread (live_server) is `live`, as are those marked so
    by hand because they run another process; `make test-fast` runs the rest."""
    for item in items:
        if "live_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.live)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgres":
            item.add_marker(pytest.mark.postgres)  # also where a test picks the backend itself
    # The long files first: with --dist loadfile a file runs on one worker, and a long one scheduled last
    # leaves the other workers idle at the end of the run. The sort is stable: each file keeps its order.
    long_files = {item.path for item in items if item.get_closest_marker("slow") or "web" in item.path.parts}
    items.sort(key=lambda item: item.path not in long_files)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, one per test worker for every page test (Playwright's sync API allows one driver
    per thread, so a second launch in the same worker would fail)."""
    from playwright.sync_api import sync_playwright

    backends.require(Path(CHROMIUM).exists(), "Chromium", "is not installed (.ci/run apt-installs chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()
