"""A database outage during a request (a restart, a failover) is 503 problem+json with Retry-After, never
a 500, and the service recovers by itself when the database is back: no process restart.

Identity reads and throttles through a second, autocommit engine (shared/database.py `make_engine`); a
restart kills the connections waiting in both pools, so both paths are driven here."""
from __future__ import annotations

import pytest

from support.databases import postgres_available
from support.outbox import Outbox
from tests import backends
from tests.conftest import AuthActions, assert_problem, bearer, identity_env

pytestmark = pytest.mark.postgres


@pytest.fixture
def outage(databases, tmp_path, clock):
    """Identity on a PostgreSQL database of its own that the test can take away and bring back."""
    backends.require(postgres_available(), "PostgreSQL")
    from services.identity.app import create_app
    from services.identity.settings import Settings

    url = databases.fresh("postgres", "services.identity", disposable=True)
    app = create_app(Settings.from_env(identity_env(url, tmp_path)), clock=clock)
    box = Outbox(url)
    yield app, AuthActions(app.test_client(), box), url
    box.engine.dispose()
    backends.allow_connections(url)
    databases.drop(url)


def assert_unavailable(response) -> None:
    assert_problem(response, 503, "database_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_requests_during_an_outage_are_503_and_work_again_once_the_database_is_back(outage):
    app, auth, url = outage
    account, tokens = auth.verified_account("outage@example.com")
    client = app.test_client()
    sign_in = {"email": account["email"], "password": AuthActions.PASSWORD}

    backends.refuse_connections(url)
    assert_unavailable(client.get("/v1/me", headers=bearer(tokens)))  # the reads' autocommit engine
    assert_unavailable(client.post("/v1/sessions", json=sign_in))  # the throttle, then a unit of work
    assert_unavailable(client.patch("/v1/me", json={"first_name": "Ada"}, headers=bearer(tokens)))

    backends.allow_connections(url)
    assert client.get("/v1/me", headers=bearer(tokens)).status_code == 200
    assert client.post("/v1/sessions", json=sign_in).status_code == 200
    assert client.patch("/v1/me", json={"first_name": "Ada"}, headers=bearer(tokens)).status_code == 200


def test_a_restart_between_requests_costs_at_most_one_503_per_pool_and_never_a_500(outage):
    """The connections in the pools die while no request runs; the next use of each pool finds its dead
    connection (checked only after an idle spell) and the pool starts afresh: that request is told to
    retry (503, Retry-After), and the retry goes through."""
    app, auth, url = outage
    account, tokens = auth.verified_account("restart@example.com")
    client = app.test_client()
    sign_in = {"email": account["email"], "password": AuthActions.PASSWORD}

    backends.refuse_connections(url)
    backends.allow_connections(url)
    retries = 0
    for request in (lambda: client.post("/v1/sessions", json=sign_in),  # the throttle's pool, then the other
                    lambda: client.get("/v1/me", headers=bearer(tokens))):
        response = request()
        while response.status_code != 200 and retries < 2:
            assert_unavailable(response)
            retries += 1
            response = request()
        assert response.status_code == 200, response.get_json()
