"""Tenancy fixtures, for every test (a plugin of tests/conftest.py): the real identity app served over
HTTP on loopback (JWKS, service tokens, the internal accounts API) and the tenancy app on its own fresh
database, both on the same backend."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from support.outbox import Outbox
from tests.conftest import AuthActions, bearer, service_app


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
    """Build the tenancy app on this test's database; keyword arguments override env settings."""

    def make(**overrides):
        return service_app("tenancy", tenancy_env(tenancy_db, identity_server.url, tmp_path, **overrides), clock)

    return make


@pytest.fixture
def tenancy_app(make_tenancy_app):
    return make_tenancy_app()


@pytest.fixture
def tenancy(tenancy_app):
    return tenancy_app.test_client()


@pytest.fixture
def tenancy_outbox(tenancy_db):
    box = Outbox(tenancy_db)
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


def invitation_link(outbox: Outbox, invitation_id: str) -> str:
    """The accept token of an invitation, from the accept_url of its tenancy.invitation.created event."""
    from urllib.parse import parse_qs, urlsplit

    events = [e for e in outbox.events("tenancy.invitation.created") if e["data"]["invitation_id"] == invitation_id]
    assert len(events) == 1, events
    query = parse_qs(urlsplit(events[0]["data"]["accept_url"]).query)
    assert query["invitation"] == [invitation_id], query
    return query["token"][0]


class Tenants:
    """Factories for organizations, workspaces and memberships, built through the tenancy API."""

    def __init__(self, client, outbox: Outbox):
        self.client = client
        self.outbox = outbox

    def organization(self, owner: dict, name: str = "Analytical Engines") -> dict:
        """POST /v1/organizations; returns {"organization", "workspace"}."""
        response = self.client.post("/v1/organizations", json={"name": name}, headers=owner["headers"])
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.json

    def workspace(self, creator: dict, organization_id: str, name: str = "Second") -> dict:
        response = self.client.post(f"/v1/organizations/{organization_id}/workspaces", json={"name": name},
                                    headers=creator["headers"])
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.json

    def invite(self, inviter: dict, workspace_id: str, email: str, role: str = "member") -> tuple[dict, str]:
        """Invite an address; returns (the invitation, its accept token from the outbox)."""
        response = self.client.post(f"/v1/workspaces/{workspace_id}/invitations", json={"email": email, "role": role},
                                    headers=inviter["headers"])
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.json, invitation_link(self.outbox, response.json["id"])

    def accept(self, invitee: dict, invitation_id: str, token: str):
        return self.client.post(f"/v1/invitations/{invitation_id}/accept", json={"token": token},
                                headers=invitee["headers"])

    def join(self, inviter: dict, workspace_id: str, invitee: dict, role: str = "member") -> dict:
        """Invite and accept: `invitee` becomes a member of the workspace with `role`."""
        invitation, token = self.invite(inviter, workspace_id, invitee["email"], role)
        response = self.accept(invitee, invitation["id"], token)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json


@pytest.fixture
def tenants(tenancy, tenancy_outbox) -> Tenants:
    return Tenants(tenancy, tenancy_outbox)


@pytest.fixture
def unverified_person(auth, identity_app):
    """A signed-up account whose email is not verified, with an access token signed by identity's real key.

    Identity refuses to sign such an account in (403 email_not_verified), so the token is assembled here
    with the claims identity's sessions put in an access token, `email_verified` false."""
    from shared.database import new_id
    from shared.jwt import sign

    def make(email: str) -> dict:
        account = auth.sign_up(email)
        runtime = identity_app.extensions["threshold.identity"]
        key = runtime.keys.signing_key()
        issued = int(runtime.clock().timestamp())
        claims = {"iss": runtime.settings.issuer, "sub": account["id"], "aud": runtime.settings.audience,
                  "exp": issued + runtime.settings.access_token_ttl, "iat": issued, "jti": new_id(),
                  "sid": new_id(), "email": account["email"], "email_verified": False,
                  "given_name": account["first_name"], "family_name": account["last_name"], "amr": ["pwd"],
                  "auth_time": issued}
        return {"id": account["id"], "email": account["email"], "headers": bearer(sign(claims, key.signing, key.kid,
                                                                                          "ES256"))}

    return make


def race_past_locks(database_url: str, lock_statements: list[tuple[str, dict]], calls: list) -> list:
    """Run `calls` in threads at the same time and return their results in order.

    On PostgreSQL the rows the `lock_statements` select are held FOR UPDATE by another transaction until
    every call is waiting on a lock, and only then released: each call has done its reads before any of
    them writes, the interleaving a race needs, made certain rather than hoped for. On SQLite the service
    takes the database's write lock at BEGIN, so the calls simply run at once.
    """
    import threading
    import time

    from sqlalchemy import text

    results: list = [None] * len(calls)

    def run(index: int) -> None:
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    if not database_url.startswith("postgresql"):
        for thread in threads:
            thread.start()
    else:
        engine = create_engine(database_url)
        try:
            with engine.connect() as holder, \
                    engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
                transaction = holder.begin()
                for statement, params in lock_statements:
                    holder.execute(text(statement), params)
                for thread in threads:
                    thread.start()
                deadline = time.monotonic() + 30
                while watcher.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                          "AND wait_event_type = 'Lock'")) < len(calls):
                    assert time.monotonic() < deadline, "the calls never waited on the held rows"
                    time.sleep(0.01)
                transaction.rollback()
        finally:
            engine.dispose()
    for thread in threads:
        thread.join()
    return results


def walk(client, path: str, headers: dict, limit: int, between=None) -> list[dict]:
    """Every item of a list, read a page of `limit` at a time by following `next`. Each page but the last is
    full and the last says so with `next: null`. `between(items_so_far)` runs after every page but the last,
    to change the list in the middle of the walk."""
    items: list[dict] = []
    cursor = None
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, query_string=query, headers=headers)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        page = response.json
        assert set(page) == {"items", "next"} and len(page["items"]) <= limit, (path, page)
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items
        assert len(page["items"]) == limit, (path, page)
        if between is not None:
            between(items)
