"""Service-to-service tokens: identity's client-credentials endpoint (`POST /v1/oauth/token`) and the
internal accounts API it unlocks (`GET /internal/v1/accounts`, scope `accounts:read`).

Clients are registered the way an operator does it: `python -m services.identity migrate` with
SERVICE_CLIENTS (the development default registers `tenancy` with the development secret).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from shared.config import DEVELOPMENT_SECRET
from support.databases import migrate
from tests.conftest import assert_problem, bearer, race

REPORTING_SECRET = "rep:orting/secret+with%25odd&chars=0123456789abcdef"
TOKEN_URL = "/v1/oauth/token"
ACCOUNTS_URL = "/internal/v1/accounts"


def claims_of(token: str) -> tuple[dict, dict]:
    """Header and claims of a compact JWS, read without verifying (the verifying is tested elsewhere)."""
    header, payload, _signature = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(payload)


def basic(client_id: str, secret: str) -> dict:
    """client_secret_basic (RFC 6749 section 2.3.1): each part form-encoded, then base64."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}


def token_request(client, **form):
    return client.post(TOKEN_URL, data={"grant_type": "client_credentials", **form})


def service_token(client, client_id: str = "tenancy", secret: str = DEVELOPMENT_SECRET, **form) -> str:
    response = token_request(client, client_id=client_id, client_secret=secret, **form)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json["access_token"]


@pytest.fixture
def reporting(identity_db):
    """A second client with two scopes, registered by the migrate command."""
    env = dict(os.environ, APP_ENV="test", IDENTITY_DATABASE_URL=identity_db, SERVICE_CLIENTS=json.dumps(
        {"reporting": {"secret": REPORTING_SECRET, "scopes": ["reports:write", "accounts:read"]}}))
    migrate("services.identity", env)
    return "reporting"


# --- issuing ------------------------------------------------------------------------------------------

def test_client_secret_post_issues_a_service_token(client, identity_app):
    response = token_request(client, client_id="tenancy", client_secret=DEVELOPMENT_SECRET, scope="accounts:read")

    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["scope"] == "accounts:read"
    header, claims = claims_of(body["access_token"])
    runtime = identity_app.extensions["threshold.identity"]
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt"
    assert header["kid"] in {key["kid"] for key in client.get("/.well-known/jwks.json").json["keys"]}
    assert claims["client_id"] == "tenancy" and claims["sub"] == "tenancy" and claims["scope"] == "accounts:read"
    assert claims["iss"] == runtime.settings.issuer and claims["aud"] == runtime.settings.audience
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    for user_claim in ("email", "email_verified", "sid", "given_name", "family_name", "amr", "auth_time"):
        assert user_claim not in claims


def test_client_secret_basic_issues_a_service_token(client, reporting):
    response = client.post(TOKEN_URL, data={"grant_type": "client_credentials", "scope": "reports:write"},
                           headers=basic(reporting, REPORTING_SECRET))

    assert response.status_code == 200, response.json
    assert claims_of(response.json["access_token"])[1]["client_id"] == "reporting"
    tenancy = client.post(TOKEN_URL, data={"grant_type": "client_credentials"},
                          headers=basic("tenancy", DEVELOPMENT_SECRET))
    assert tenancy.status_code == 200 and claims_of(tenancy.json["access_token"])[1]["client_id"] == "tenancy"


def test_wrong_or_missing_credentials_are_invalid_client(client, reporting):
    refusals = [
        token_request(client, client_id="tenancy", client_secret=DEVELOPMENT_SECRET + "x"),
        token_request(client, client_id="tenancy", client_secret=REPORTING_SECRET),  # another client's secret
        token_request(client, client_id="tenancy"),
        token_request(client, client_id="nobody", client_secret=DEVELOPMENT_SECRET),
        token_request(client, client_id="nobody", client_secret="x"),
        token_request(client),
        client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, headers=basic("tenancy", "wrong")),
        client.post(TOKEN_URL, data={"grant_type": "client_credentials"},
                    headers=basic("reporting", DEVELOPMENT_SECRET)),
        client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic %%%"}),
    ]
    bodies = [assert_problem(response, 401, "invalid_client") for response in refusals]
    assert len({body["detail"] for body in bodies}) == 1  # unknown client and wrong secret read the same
    assert all("access_token" not in body for body in bodies)


def test_invalid_client_names_the_basic_scheme(client):
    # RFC 6749 5.2: a 401 invalid_client carries WWW-Authenticate with the scheme the client may use.
    for response in (token_request(client, client_id="tenancy", client_secret="wrong"),
                     client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, headers=basic("tenancy", "x"))):
        assert_problem(response, 401, "invalid_client")
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


FREE_FAILURES = 5  # SIGN_IN_FREE_FAILURES default: wrong client secrets are throttled like wrong passwords


def test_concurrent_wrong_secrets_get_exactly_the_free_failures(identity_app):
    bodies = [{"grant_type": "client_credentials", "client_id": "tenancy", "client_secret": f"guess {n}"}
              for n in range(FREE_FAILURES + 25)]  # a secret is checked in microseconds: a large burst

    responses = race(identity_app, TOKEN_URL, bodies, form=True)

    answers = sorted((r.status_code, r.get_json()["code"]) for r in responses)
    assert answers == [(401, "invalid_client")] * FREE_FAILURES + [(429, "rate_limited")] * 25, answers
    assert all(int(r.headers["Retry-After"]) > 0 for r in responses if r.status_code == 429)


@pytest.mark.parametrize("attempt", range(3))
def test_a_right_secret_racing_wrong_ones_for_the_last_free_try_gets_no_extra_try(identity_app, client, attempt):
    # One free try left, then a burst of wrong secrets with the right one among them. One client in a
    # row would have either spent the try on the right secret (200, the count forgotten, so the wrong ones
    # that follow get their free failures again) or on a wrong one (401; every other guess, the right one
    # too, waits: 429). The right secret succeeding beside a single 401 would be a try the throttle never
    # gave: the right secret checked against a count that a wrong guess had already used up.
    for _ in range(FREE_FAILURES - 1):
        assert_problem(token_request(client, client_id="tenancy", client_secret="wrong"), 401, "invalid_client")
    bodies = [{"grant_type": "client_credentials", "client_id": "tenancy", "client_secret": f"guess {n}"}
              for n in range(20)]
    bodies.insert(attempt * 7, {"grant_type": "client_credentials", "client_id": "tenancy",
                                "client_secret": DEVELOPMENT_SECRET})

    responses = race(identity_app, TOKEN_URL, bodies, form=True)

    statuses = sorted(r.status_code for r in responses)
    spent_on_the_right_one = [200] + [401] * FREE_FAILURES + [429] * (20 - FREE_FAILURES)
    spent_on_a_wrong_one = [401] + [429] * 20
    assert statuses in (spent_on_the_right_one, spent_on_a_wrong_one), {s: statuses.count(s) for s in statuses}


def test_wrong_secrets_are_throttled_per_client_and_address(identity_app, client, reporting):
    for _ in range(FREE_FAILURES):
        assert_problem(token_request(client, client_id="tenancy", client_secret="wrong"), 401, "invalid_client")
    # the right secret waits too, from the guessing address
    assert_problem(token_request(client, client_id="tenancy", client_secret=DEVELOPMENT_SECRET), 429, "rate_limited")
    assert token_request(client, client_id="reporting", client_secret=REPORTING_SECRET).status_code == 200

    service = identity_app.test_client()
    service.environ_base["REMOTE_ADDR"] = "192.0.2.7"  # the real service, elsewhere
    assert service_token(service)


def test_the_right_secret_forgets_the_wrong_ones_before_it(client):
    for _ in range(2):  # twice: a count cleared by a right secret starts again from nothing
        for _ in range(FREE_FAILURES - 1):
            assert_problem(token_request(client, client_id="tenancy", client_secret="wrong"), 401, "invalid_client")
        assert service_token(client)
    assert_problem(token_request(client, client_id="tenancy", client_secret="wrong"), 401, "invalid_client")


def test_only_the_client_credentials_grant(client):
    for grant in ("password", "authorization_code", "refresh_token", "CLIENT_CREDENTIALS"):
        response = client.post(TOKEN_URL, data={"grant_type": grant, "client_id": "tenancy",
                                                "client_secret": DEVELOPMENT_SECRET})
        assert_problem(response, 400, "unsupported_grant_type")
    assert_problem(client.post(TOKEN_URL, data={"client_id": "tenancy", "client_secret": DEVELOPMENT_SECRET}),
                   422, "validation_failed")


def test_scopes_narrow_and_unknown_scopes_are_refused(client, reporting):
    def scope_of(**form) -> str:
        token = service_token(client, reporting, REPORTING_SECRET, **form)
        return claims_of(token)[1]["scope"]

    assert scope_of() == "accounts:read reports:write"  # none asked: every scope of the client
    assert scope_of(scope="accounts:read") == "accounts:read"
    assert scope_of(scope="reports:write") == "reports:write"
    assert scope_of(scope="reports:write accounts:read") == "accounts:read reports:write"
    for scope in ("admin", "accounts:read admin", "accounts:write"):
        assert_problem(token_request(client, client_id=reporting, client_secret=REPORTING_SECRET, scope=scope),
                       400, "invalid_scope")
    assert_problem(token_request(client, client_id="tenancy", client_secret=DEVELOPMENT_SECRET,
                                 scope="reports:write"), 400, "invalid_scope")


def test_client_secrets_are_stored_as_sha256(identity_db, reporting):
    engine = create_engine(identity_db)
    try:
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT client_id, secret_hash FROM service_clients")).all())
    finally:
        engine.dispose()

    assert stored["tenancy"] == hashlib.sha256(DEVELOPMENT_SECRET.encode()).hexdigest()
    assert stored["reporting"] == hashlib.sha256(REPORTING_SECRET.encode()).hexdigest()
    for secret in (DEVELOPMENT_SECRET, REPORTING_SECRET):
        assert secret not in stored.values()


# --- the internal accounts API ------------------------------------------------------------------------

def test_internal_accounts_by_id_with_a_service_token(client, auth):
    ada = auth.sign_up("ada@example.com", first_name="Ada", last_name="Lovelace")
    grace = auth.sign_up("grace@example.com", first_name="Grace", last_name="Hopper")
    token = service_token(client, scope="accounts:read")

    response = client.get(ACCOUNTS_URL, query_string=[("id", ada["id"]), ("id", str(uuid.uuid4())),
                                                      ("id", grace["id"]), ("id", ada["id"])],
                          headers=bearer(token))

    assert response.status_code == 200, response.json
    assert sorted(response.json["items"], key=lambda a: a["email"]) == [ada, grace]


def test_internal_accounts_take_at_most_100_ids(client, auth):
    ada = auth.sign_up("ada@example.com")
    token = service_token(client)
    hundred = [str(uuid.uuid4()) for _ in range(99)] + [ada["id"]]

    full = client.get(ACCOUNTS_URL, query_string=[("id", i) for i in hundred], headers=bearer(token))
    too_many = client.get(ACCOUNTS_URL, query_string=[("id", i) for i in [*hundred, str(uuid.uuid4())]],
                          headers=bearer(token))

    assert full.status_code == 200 and [a["id"] for a in full.json["items"]] == [ada["id"]]
    assert_problem(too_many, 422, "validation_failed")
    assert_problem(client.get(ACCOUNTS_URL, headers=bearer(token)), 422, "validation_failed")


def test_internal_accounts_refuse_anything_but_a_service_token_with_accounts_read(client, auth, reporting):
    account, tokens = auth.verified_account("ada@example.com")
    query = [("id", account["id"])]

    no_token = client.get(ACCOUNTS_URL, query_string=query)
    user_token = client.get(ACCOUNTS_URL, query_string=query, headers=bearer(tokens))
    narrow = client.get(ACCOUNTS_URL, query_string=query,
                        headers=bearer(service_token(client, reporting, REPORTING_SECRET, scope="reports:write")))

    for refused in (no_token, user_token):
        assert_problem(refused, 401, "invalid_token")
        assert refused.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert_problem(narrow, 403, "insufficient_scope")
    wide = client.get(ACCOUNTS_URL, query_string=query,
                      headers=bearer(service_token(client, reporting, REPORTING_SECRET, scope="accounts:read")))
    assert wide.status_code == 200 and [a["id"] for a in wide.json["items"]] == [account["id"]]
    # And the other way round: a service token is no user token.
    assert_problem(client.get("/v1/me", headers=bearer(service_token(client))), 401, "invalid_token")
