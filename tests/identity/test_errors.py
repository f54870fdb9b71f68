"""Errors are RFC 9457 problem documents whatever goes wrong, and secrets never reach the logs."""
from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import assert_problem, token_from_url

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
JSON_ROUTES = ["/v1/accounts", "/v1/sessions", "/v1/email-verifications", "/v1/email-verifications/confirm",
               "/v1/password-resets", "/v1/password-resets/confirm", "/v1/tokens/refresh", "/v1/sessions/revoke"]


def assert_problem_document(response) -> dict:
    """Any status: problem+json with every required member, and nothing that looks like a stack trace."""
    assert response.status_code >= 400
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert PROBLEM_KEYS <= set(body), body
    assert body["status"] == response.status_code
    assert body["type"] and body["title"] and body["code"]
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text
    return body


def post_raw(client, path: str, data, content_type: str = "application/json"):
    return client.post(path, data=data, content_type=content_type)


# The shape of every error


@pytest.fixture
def error_responses(client, auth, make_identity_app):
    """One response of each kind of error the identity API gives."""
    auth.sign_up("unverified@example.com")
    auth.verified_account("ada@example.com")
    strict = make_identity_app(IP_RATE_LIMIT_PER_MINUTE=1).test_client()
    strict.post("/v1/sessions", json={"email": "ada@example.com", "password": "wrong password"})
    return {
        "malformed JSON": post_raw(client, "/v1/accounts", "{not json"),
        "token_invalid": client.post("/v1/email-verifications/confirm", json={"token": "nope"}),
        "invalid_credentials": auth.sign_in("ada@example.com", "wrong password"),
        "invalid_token": client.get("/v1/me"),
        "email_not_verified": auth.sign_in("unverified@example.com"),
        "not found": client.get("/v1/no-such-thing"),
        "method not allowed": client.delete("/v1/accounts"),
        "email_taken": client.post("/v1/accounts", json={"email": "ada@example.com", "password": "kq7#zpw4",
                                                         "first_name": "A", "last_name": "B"}),
        "too large": post_raw(client, "/v1/accounts", json.dumps({"email": "x" * 70_000})),
        "validation_failed": client.post("/v1/accounts", json={}),
        "rate_limited": strict.post("/v1/sessions", json={"email": "ada@example.com", "password": "wrong"}),
    }


def test_every_error_is_a_problem_document(error_responses):
    statuses = {}
    for name, response in error_responses.items():
        statuses[name] = assert_problem_document(response)["status"]

    assert statuses == {"malformed JSON": 400, "token_invalid": 400, "invalid_credentials": 401,
                        "invalid_token": 401, "email_not_verified": 403, "not found": 404,
                        "method not allowed": 405, "email_taken": 409, "too large": 413,
                        "validation_failed": 422, "rate_limited": 429}


def test_the_problem_type_names_the_code(error_responses):
    bodies = [response.get_json() for response in error_responses.values()]

    assert all(body["type"].endswith(body["code"]) for body in bodies)


# Bad bodies


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("data", ["{not json", '{"email": ', "\xff\xfe", "{'single': 'quotes'}"])
def test_malformed_json_is_400(client, path, data):
    assert_problem(post_raw(client, path, data), 400, "malformed_json")


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("data", ["[]", '["ada@example.com"]', '"ada@example.com"', "42", "true", "null"])
def test_a_json_body_that_is_not_an_object_is_refused(client, path, data):
    response = post_raw(client, path, data)

    assert response.status_code == 422
    assert_problem_document(response)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_is_refused(client, content_type):
    response = post_raw(client, "/v1/accounts", '{"email": "ada@example.com"}', content_type)

    assert response.status_code == 422  # webargs reads no JSON body: the required fields are missing
    assert_problem_document(response)


@pytest.mark.parametrize("field", ["email", "password", "first_name", "last_name"])
@pytest.mark.parametrize("value", [None, 42, ["a"], {"a": 1}, True])
def test_fields_of_the_wrong_type_are_422(client, field, value):
    body = {"email": "ada@example.com", "password": "kq7#zpw4", "first_name": "A", "last_name": "B", field: value}

    problem = assert_problem(client.post("/v1/accounts", json=body), 422, "validation_failed")

    assert field in problem["errors"]


def test_a_body_over_64_kib_is_413(client):
    response = post_raw(client, "/v1/sessions", json.dumps({"email": "ada@example.com", "password": "p" * 65 * 1024}))

    assert_problem(response, 413, "payload_too_large")


def test_a_body_just_under_64_kib_is_read(client):
    response = post_raw(client, "/v1/sessions", json.dumps({"email": "ada@example.com", "password": "p" * 60 * 1024}))

    assert_problem(response, 422, "validation_failed")


# Routes and methods


@pytest.mark.parametrize("path", ["/v1/no-such-thing", "/v1/accounts/123", "/nothing-here", "/v2/accounts"])
def test_an_unknown_route_is_a_404_problem(client, path):
    assert_problem(client.get(path), 404, "not_found")


@pytest.mark.parametrize("method, path", [("GET", "/v1/accounts"), ("DELETE", "/v1/sessions"),
                                          ("PUT", "/v1/me"), ("GET", "/v1/tokens/refresh")])
def test_a_wrong_method_is_a_405_problem(client, method, path):
    response = client.open(path, method=method)

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"]


# Logs


def test_no_password_or_token_reaches_the_logs(client, auth, outbox, caplog):
    caplog.set_level(logging.DEBUG)
    password, new_password = "first-Secret-Phrase-4711", "second-Secret-Phrase-0815"

    auth.sign_up("ada@example.com", password)
    verification_token = auth.verification_token("ada@example.com")
    auth.verify("ada@example.com")
    assert auth.sign_in("ada@example.com", "wrong-Secret-Phrase-1234").status_code == 401
    first = auth.sign_in("ada@example.com", password).json
    second = client.post("/v1/tokens/refresh", json={"refresh_token": first["refresh_token"]}).json
    client.post("/v1/tokens/refresh", json={"refresh_token": first["refresh_token"]})  # reuse: logged
    client.post("/v1/password-resets", json={"email": "ada@example.com"})
    reset_token = token_from_url(outbox.last("identity.password_reset.requested")["data"]["reset_url"])
    client.post("/v1/password-resets/confirm", json={"token": reset_token, "new_password": new_password})
    third = auth.sign_in("ada@example.com", new_password).json

    events = {getattr(record, "event", None) for record in caplog.records}
    assert {"sign_in_failed", "sign_in_succeeded", "refresh_token_reused"} <= events
    logged = "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)
    secrets = [password, new_password, "wrong-Secret-Phrase-1234", verification_token, reset_token,
               *(pair[key] for pair in (first, second, third) for key in ("access_token", "refresh_token"))]
    leaked = [secret for secret in secrets if secret in logged]
    assert leaked == []

