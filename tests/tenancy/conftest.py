"""Tenancy fixtures: the real identity app served over HTTP on loopback (JWKS, service tokens, the
internal accounts API) and the tenancy app on its own fresh database, both on the same backend."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, select

from tests.conftest import AuthActions, bearer


@pytest.fixture
def identity_server(identity_app, live_server):
    return live_server(identity_app)


@pytest.fixture
def tenancy_db(backend, databases) -> str:
    url = databases.fresh(backend, "services.tenancy")
    yield url
    databases.drop(url)


def tenancy_env(database_url: str, identity_url: str, var_dir, **overrides) -> dict:
    env = {
        "APP_ENV": "test",
        "TENANCY_DATABASE_URL": database_url,
        "BROKER_URL": "memory://",
        "VAR_DIR": str(var_dir),
        "IDENTITY_INTERNAL_URL": identity_url,
        # The issuer the identity app signs with (its IDENTITY_PUBLIC_URL default).
        "IDENTITY_PUBLIC_URL": "http://127.0.0.1:8001",
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


@pytest.fixture
def make_tenancy_app(tenancy_db, identity_server, tmp_path, clock):
    from services.tenancy.app import create_app
    from services.tenancy.settings import Settings

    def make(**overrides):
        return create_app(Settings.from_env(tenancy_env(tenancy_db, identity_server.url, tmp_path, **overrides)),
                          clock=clock)

    return make


@pytest.fixture
def tenancy_app(make_tenancy_app):
    return make_tenancy_app()


@pytest.fixture
def tenancy(tenancy_app):
    return tenancy_app.test_client()


class TenancyOutbox:
    def __init__(self, database_url: str):
        self.engine = create_engine(database_url)

    def events(self, event_type: str | None = None) -> list[dict]:
        from services.tenancy.models import outbox

        with self.engine.connect() as conn:
            rows = conn.execute(select(outbox.c.envelope).order_by(outbox.c.created_at)).scalars().all()
        return [e for e in map(json.loads, rows) if event_type is None or e["type"] == event_type]


@pytest.fixture
def tenancy_outbox(tenancy_db):
    box = TenancyOutbox(tenancy_db)
    yield box
    box.engine.dispose()


class People:
    """Verified, signed-in people with bearer headers for the tenancy API."""

    def __init__(self, auth: AuthActions):
        self.auth = auth

    def new(self, email: str) -> dict:
        account, tokens = self.auth.verified_account(email)
        return {"id": account["id"], "email": account["email"], "headers": bearer(tokens)}


@pytest.fixture
def people(auth) -> People:
    return People(auth)
