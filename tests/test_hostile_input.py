"""Input sent to break the services gets a 4xx problem, never a 500 (issue 18), on SQLite and PostgreSQL:
lone surrogates, deep nesting and huge integers in JSON, NUL characters in paths, queries, forms and JSON
strings, concurrent sign-ups with one address; and a failed database write leaves no personal data or
secret in the log. The guard is `shared/request_guard.py`; docs/security.md says what each answer is."""
from __future__ import annotations

import base64
import logging
import re
import uuid
from functools import partial

import pytest
from sqlalchemy import create_engine, text

from shared.config import DEVELOPMENT_SECRET
from tests.conftest import assert_problem, bearer
from tests.tenancy_fixtures import race_past_locks

PASSWORD = "correct horse battery"
LONE_SURROGATE = '"\\ud800"'  # as it travels in the JSON text: an escape no decoder can turn into text
DEEP = "[" * 30_000 + "]" * 30_000
HUGE_INTEGER = '{"n": ' + "7" * 4_301 + "}"
BODY_METHODS = {"POST", "PUT", "PATCH"}


@pytest.fixture
def world(client, people, tenants, tenancy, identity_app, tenancy_app):
    """A verified person signed in to identity, owning an organization and its workspace in tenancy."""
    ada = people.new("ada@example.com")
    created = tenants.organization(ada)
    return {
        "identity": (identity_app, client), "tenancy": (tenancy_app, tenancy), "headers": ada["headers"],
        "ids": {"organization_id": created["organization"]["id"], "workspace_id": created["workspace"]["id"],
                "user_id": ada["id"], "invitation_id": str(uuid.uuid4()), "provider": "google",
                "filename": "pages.css", "request_id": str(uuid.uuid4()),
                "session_id": str(uuid.uuid4())},
    }


def routes(app, ids: dict, methods: set[str]) -> list[tuple[str, str]]:
    """(method, path) of every route of the app with one of `methods`, its path variables filled from `ids`."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":  # Flask's own files route, no part of the API
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda match: ids[match.group(1)], rule.rule)
        found += [(method, path) for method in sorted(rule.methods & methods)]
    return found


def answers(client, requests: list[tuple[str, str]], **kwargs) -> dict:
    """{"METHOD path": (status, content type, code)} for each request."""
    result = {}
    for method, path in requests:
        response = client.open(path, method=method, **kwargs)
        body = response.get_json(silent=True) or {}
        result[f"{method} {path}"] = (response.status_code, response.mimetype, body.get("code"))
    return result


def raw_json(client, method: str, path: str, data: str, headers: dict | None = None):
    return client.open(path, method=method, data=data, content_type="application/json", headers=headers or {})


# --- point 7: JSON that breaks a parser, on every route that takes a body -----------------------------

@pytest.mark.parametrize("service", ["identity", "tenancy"])
@pytest.mark.parametrize("data", [DEEP, HUGE_INTEGER, "{" + LONE_SURROGATE + ": 1}"],
                         ids=["nested 30,000 deep", "4,301 digits", "lone surrogate"])
def test_json_no_parser_can_read_is_400_on_every_route(world, service, data):
    app, client = world[service]
    requests = routes(app, world["ids"], BODY_METHODS)
    assert len(requests) >= 6

    got = answers(client, requests, data=data, content_type="application/json", headers=world["headers"])

    assert got == {route: (400, "application/problem+json", "malformed_json") for route in got}


def test_deep_nesting_is_refused_before_authentication(client):
    for path in ("/v1/me", "/v1/me/password", "/v1/me/mfa/totp"):
        method = "PATCH" if path == "/v1/me" else "POST"
        assert_problem(raw_json(client, method, path, DEEP), 400, "malformed_json")


def test_the_problem_says_what_is_wrong(client):
    deep = assert_problem(raw_json(client, "POST", "/v1/sessions", DEEP), 400, "malformed_json")
    huge = assert_problem(raw_json(client, "POST", "/v1/sessions", HUGE_INTEGER), 400, "malformed_json")
    lone = assert_problem(raw_json(client, "POST", "/v1/sessions", '{"password": ' + LONE_SURROGATE + "}"), 400,
                          "malformed_json")

    assert deep["detail"] == "The request body is nested more than 32 levels deep."
    assert huge["detail"] == "The request body holds a number too long to read."
    assert "lone UTF-16 surrogate" in lone["detail"]


def test_what_a_client_really_sends_still_parses(client):
    nested = "[" * 31 + "]" * 31
    paired = '"\\ud83d\\ude00"'  # a surrogate pair: one emoji, which is text
    sign_up = ('{"email": "emoji@example.com", "password": "smile ' + paired[1:-1] + ' please", '
               '"first_name": ' + paired + ', "last_name": "Lovelace"}')

    assert raw_json(client, "POST", "/v1/accounts", sign_up).status_code == 201
    assert_problem(raw_json(client, "POST", "/v1/sessions", '{"email": ' + nested + "}"), 422, "validation_failed")
    assert_problem(raw_json(client, "POST", "/v1/sessions", '{"password": ' + "7" * 4_300 + "}"), 422,
                   "validation_failed")


# --- point 6: a lone surrogate in a password or a name ------------------------------------------------

SURROGATE = "x\\ud800y"


@pytest.mark.parametrize("method, path, data", [
    ("POST", "/v1/accounts", f'"email": "eve@example.com", "password": "{SURROGATE}", "first_name": "E", '
                             f'"last_name": "V"'),
    ("POST", "/v1/accounts", f'"email": "eve@example.com", "password": "{PASSWORD}", "first_name": "{SURROGATE}", '
                             f'"last_name": "V"'),
    ("POST", "/v1/sessions", f'"email": "ada@example.com", "password": "{SURROGATE}"'),
    ("PATCH", "/v1/me", f'"first_name": "{SURROGATE}"'),
    ("POST", "/v1/me/password", f'"current_password": "{PASSWORD}", "new_password": "{SURROGATE}"'),
    ("POST", "/v1/me/password", f'"current_password": "{SURROGATE}", "new_password": "{PASSWORD} 2"'),
    ("POST", "/v1/me/mfa/totp", f'"password": "{SURROGATE}"'),
    ("POST", "/v1/password-resets/confirm", f'"token": "t", "new_password": "{SURROGATE}"'),
])
def test_a_lone_surrogate_in_identity_is_400(world, method, path, data):
    _app, client = world["identity"]

    assert_problem(raw_json(client, method, path, "{" + data + "}", world["headers"]), 400, "malformed_json")


@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/organizations"),
    ("PATCH", "/v1/organizations/{organization_id}"),
    ("POST", "/v1/organizations/{organization_id}/workspaces"),
    ("PATCH", "/v1/workspaces/{workspace_id}"),
])
def test_a_lone_surrogate_in_a_tenancy_name_is_400(world, method, path):
    _app, client = world["tenancy"]
    data = '{"name": "' + SURROGATE + '"}'

    response = raw_json(client, method, path.format(**world["ids"]), data, world["headers"])

    assert_problem(response, 400, "malformed_json")
    assert client.get(f"/v1/organizations/{world['ids']['organization_id']}",
                      headers=world["headers"]).json["name"] == "Analytical Engines"


# --- point 8: NUL characters ---------------------------------------------------------------------------

@pytest.mark.parametrize("service", ["identity", "tenancy"])
def test_a_nul_in_a_path_id_is_404_on_every_route(world, service):
    app, client = world[service]
    ids = {name: "\x00" + value for name, value in world["ids"].items()}
    requests = [(method, path) for method, path in routes(app, ids, {"GET", "POST", "PATCH", "PUT", "DELETE"})
                if "\x00" in path]
    assert len(requests) >= 2

    got = answers(client, requests, json={"name": "N", "role": "member", "token": "t"}, headers=world["headers"])

    assert got == {route: (404, "application/problem+json", "not_found") for route in got}


def test_a_nul_in_a_query_id_is_422(world):
    _app, client = world["identity"]
    issued = client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": "tenancy",
                                                  "client_secret": DEVELOPMENT_SECRET, "scope": "accounts:read"})
    headers = bearer(issued.json["access_token"])

    for query in (f"id=%00{world['ids']['user_id']}", f"id={world['ids']['user_id']}&id=%00", "id=a%00b"):
        problem = assert_problem(client.get(f"/internal/v1/accounts?{query}", headers=headers), 422,
                                 "validation_failed")
        assert problem["errors"] == {"id": ["Must not contain a NUL character."]}
    assert client.get(f"/internal/v1/accounts?id={world['ids']['user_id']}", headers=headers).status_code == 200


@pytest.mark.parametrize("form", [
    {"grant_type": "client_credentials", "client_id": "\x00", "client_secret": "s"},
    {"grant_type": "client_credentials", "client_id": "tenancy\x00", "client_secret": DEVELOPMENT_SECRET},
])
def test_a_nul_in_the_client_id_form_field_is_422(client, form):
    problem = assert_problem(client.post("/v1/oauth/token", data=form), 422, "validation_failed")

    assert problem["errors"] == {"client_id": ["Must not contain a NUL character."]}


@pytest.mark.parametrize("credentials", [b"%00:secret", b"tenancy%00:" + DEVELOPMENT_SECRET.encode()])
def test_a_nul_in_the_client_id_of_basic_credentials_is_401(client, credentials):
    """client_secret_basic form-encodes the id inside base64, where the request guard cannot see it."""
    headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}

    response = client.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, headers=headers)

    assert_problem(response, 401, "invalid_client")


@pytest.mark.parametrize("service, method, path, body, field", [
    ("identity", "POST", "/v1/sessions", {"email": "ada@example.com", "password": "a\x00b"}, "password"),
    ("identity", "POST", "/v1/sessions/oidc", {"login_code": "\x00"}, "login_code"),
    ("identity", "POST", "/v1/tokens/refresh", {"refresh_token": "\x00"}, "refresh_token"),
    ("identity", "PATCH", "/v1/me", {"first_name": "Ada", "last_name": "Love\x00lace"}, "last_name"),
    ("tenancy", "POST", "/v1/invitations/{invitation_id}/accept", {"token": "\x00"}, "token"),
    ("tenancy", "PATCH", "/v1/workspaces/{workspace_id}/members/{user_id}", {"role": "\x00"}, "role"),
    ("tenancy", "POST", "/v1/organizations", {"name": "Org", "\x00": 1}, "\x00"),
    ("tenancy", "POST", "/v1/organizations", {"name": ["deep", {"in": ["side\x00"]}]}, "name"),
])
def test_a_nul_in_a_json_string_is_422_naming_the_field(world, service, method, path, body, field):
    _app, client = world[service]

    response = client.open(path.format(**world["ids"]), method=method, json=body, headers=world["headers"])

    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"] == {field: ["Must not contain a NUL character."]}


# --- point 9: concurrent sign-ups with one address (PostgreSQL: SQLite serialises them at BEGIN) ----------

@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_concurrent_sign_ups_with_one_email_are_one_201_and_409s(identity_app, identity_db, outbox, caplog):
    caplog.set_level(logging.DEBUG)
    body = {"email": "race@example.com", "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"}
    sign_up = partial(identity_app.test_client().post, "/v1/accounts", json=body)

    # Every sign-up reads "no such account" and then waits at its INSERT until all six have read.
    responses = race_past_locks(identity_db, [("LOCK TABLE accounts IN SHARE MODE", {})], [sign_up] * 6)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409, 409, 409, 409, 409], [r.get_json() for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "email_taken")
    assert len(outbox.events("identity.account.registered")) == 1
    assert "race@example.com" not in caplog.text and "$argon2id$" not in caplog.text


# --- point 11: a failed write logs no personal data and no secret ----------------------------------------

@pytest.fixture
def refusing_accounts(identity_db):
    """A fault in the real database: every INSERT into accounts fails. On PostgreSQL a CHECK, whose error
    quotes the failing row (removed afterwards: the working database is reused by later tests); on SQLite
    a trigger (the database file is this test's own)."""
    engine = create_engine(identity_db)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE accounts ADD CONSTRAINT refuse_all CHECK (false) NOT VALID" if postgres else
                          "CREATE TRIGGER refuse_all BEFORE INSERT ON accounts "
                          "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))
    yield
    if postgres:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE accounts DROP CONSTRAINT refuse_all"))
    engine.dispose()


def test_a_failed_write_logs_no_personal_data_or_secret(client, refusing_accounts, caplog):
    caplog.set_level(logging.DEBUG)
    password = "first-Secret-Phrase-4711"

    response = client.post("/v1/accounts", json={"email": "grace@example.com", "password": password,
                                                  "first_name": "Grace", "last_name": "Hopper"})

    problem = assert_problem(response, 500, "internal_error")
    logged = caplog.text + "\n".join(repr(record.__dict__) for record in caplog.records)
    assert problem["correlation_id"] in logged and "IntegrityError" in logged  # still says what failed
    leaked = [secret for secret in ("grace@example.com", password, "$argon2id$", "Hopper") if secret in logged]
    assert leaked == []
