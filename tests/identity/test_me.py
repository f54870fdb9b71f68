"""GET and PATCH /v1/me (the signed-in account) and POST /v1/me/password (password change)."""
from __future__ import annotations

import pytest

from tests.conftest import AuthActions, assert_problem, bearer

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def signed_in(auth) -> tuple[dict, dict]:
    """(account, token pair) of a verified, signed-in account."""
    return auth.verified_account("ada@example.com")


def patch_me(client, tokens, body: dict):
    return client.patch("/v1/me", json=body, headers=bearer(tokens))


def change_password(client, tokens, current: str = AuthActions.PASSWORD, new: str = NEW_PASSWORD):
    return client.post("/v1/me/password", json={"current_password": current, "new_password": new},
                       headers=bearer(tokens))


def refresh(client, tokens):
    return client.post("/v1/tokens/refresh", json={"refresh_token": tokens["refresh_token"]})


# GET /v1/me


def test_me_returns_the_signed_in_account(client, signed_in):
    account, tokens = signed_in

    response = client.get("/v1/me", headers=bearer(tokens))

    assert response.status_code == 200
    assert response.json == {**account, "email_verified": True}


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not.a.jwt"},
    {"Authorization": "Basic YWRhOnNlY3JldA=="},
])
def test_me_without_a_valid_bearer_token_is_401(client, headers):
    response = client.get("/v1/me", headers=headers)

    assert_problem(response, 401, "invalid_token")
    assert 'Bearer error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_refresh_token_is_not_a_bearer_token(client, signed_in):
    _account, tokens = signed_in

    assert_problem(client.get("/v1/me", headers=bearer(tokens["refresh_token"])), 401, "invalid_token")


# PATCH /v1/me


def test_patch_changes_the_names(client, signed_in):
    _account, tokens = signed_in

    response = patch_me(client, tokens, {"first_name": "Augusta", "last_name": "King"})

    assert response.status_code == 200
    assert (response.json["first_name"], response.json["last_name"]) == ("Augusta", "King")
    me = client.get("/v1/me", headers=bearer(tokens)).json
    assert (me["first_name"], me["last_name"]) == ("Augusta", "King")


def test_patch_changes_only_the_given_field(client, signed_in):
    _account, tokens = signed_in

    response = patch_me(client, tokens, {"last_name": "King"})

    assert (response.json["first_name"], response.json["last_name"]) == ("Ada", "King")


@pytest.mark.parametrize("body, field", [
    ({"email": "eve@example.com"}, "email"),
    ({"email_verified": False}, "email_verified"),
    ({"nickname": "Countess"}, "nickname"),
    ({"first_name": ""}, "first_name"),
    ({"first_name": "Ada\r\nX-Injected: 1"}, "first_name"),
    ({"last_name": "L" * 101}, "last_name"),
])
def test_patch_refuses_invalid_or_unknown_fields(client, signed_in, body, field):
    account, tokens = signed_in

    problem = assert_problem(patch_me(client, tokens, body), 422, "validation_failed")

    assert field in problem["errors"]
    assert client.get("/v1/me", headers=bearer(tokens)).json == {**account, "email_verified": True}


def test_patch_needs_a_bearer_token(client):
    assert_problem(client.patch("/v1/me", json={"first_name": "Eve"}), 401, "invalid_token")


# POST /v1/me/password


def test_change_password_is_204_and_swaps_the_password(client, auth, signed_in):
    _account, tokens = signed_in

    response = change_password(client, tokens)

    assert response.status_code == 204
    assert_problem(auth.sign_in("ada@example.com"), 401, "invalid_credentials")
    assert auth.sign_in("ada@example.com", NEW_PASSWORD).status_code == 200


def test_change_password_ends_the_other_sessions_only(client, auth, signed_in):
    _account, current = signed_in
    other = auth.sign_in("ada@example.com").json

    change_password(client, current)

    assert_problem(refresh(client, other), 401, "token_invalid")
    assert refresh(client, current).status_code == 200


def test_a_wrong_current_password_is_401(client, auth, signed_in):
    _account, tokens = signed_in

    assert_problem(change_password(client, tokens, current="not the password"), 401, "invalid_credentials")

    assert auth.sign_in("ada@example.com").status_code == 200


@pytest.mark.parametrize("new", ["kq7#z", "password", "ada@example.com", "x" * 129])
def test_the_new_password_must_meet_the_policy(client, auth, signed_in, new):
    _account, tokens = signed_in

    problem = assert_problem(change_password(client, tokens, new=new), 422, "validation_failed")

    assert list(problem["errors"]) == ["new_password"]
    assert auth.sign_in("ada@example.com").status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"new_password": NEW_PASSWORD}, "current_password"),
    ({"current_password": AuthActions.PASSWORD}, "new_password"),
    ({"current_password": AuthActions.PASSWORD, "new_password": NEW_PASSWORD, "email": "e@example.com"}, "email"),
])
def test_change_password_bodies_are_validated(client, signed_in, body, field):
    _account, tokens = signed_in

    response = client.post("/v1/me/password", json=body, headers=bearer(tokens))

    assert field in assert_problem(response, 422, "validation_failed")["errors"]


def test_wrong_current_passwords_count_towards_the_sign_in_throttle(client, auth, signed_in):
    _account, tokens = signed_in
    for _ in range(5):  # SIGN_IN_FREE_FAILURES
        change_password(client, tokens, current="not the password")

    assert_problem(change_password(client, tokens), 429, "rate_limited")
    assert_problem(auth.sign_in("ada@example.com"), 429, "rate_limited")


def test_change_password_needs_a_bearer_token(client):
    response = client.post("/v1/me/password", json={"current_password": AuthActions.PASSWORD,
                                                     "new_password": NEW_PASSWORD})

    assert_problem(response, 401, "invalid_token")


@pytest.mark.parametrize("body, field", [
    ({"first_name": "  "}, "first_name"),
    ({"last_name": "evil.com"}, "last_name"),
    ({"first_name": "http://evil.example"}, "first_name"),
])
def test_patch_refuses_blank_names_and_names_that_read_as_links(client, signed_in, body, field):
    account, tokens = signed_in

    problem = assert_problem(patch_me(client, tokens, body), 422, "validation_failed")

    assert list(problem["errors"]) == [field]
    assert client.get("/v1/me", headers=bearer(tokens)).json == {**account, "email_verified": True}
