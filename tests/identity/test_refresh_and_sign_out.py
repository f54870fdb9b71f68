"""POST /v1/tokens/refresh (rotation, reuse detection, expiry) and POST /v1/sessions/revoke (sign-out)."""
from __future__ import annotations

import pytest
from jose import jwt

from tests.conftest import AuthActions, assert_problem, bearer, race

REFRESH_TTL = 30 * 24 * 3600  # REFRESH_TOKEN_TTL default


def refresh(client, refresh_token: str):
    return client.post("/v1/tokens/refresh", json={"refresh_token": refresh_token})


def sign_out(client, refresh_token: str):
    return client.post("/v1/sessions/revoke", json={"refresh_token": refresh_token})


@pytest.fixture
def pair(auth) -> dict:
    """The token pair of a freshly signed-in, verified account."""
    return auth.verified_account("ada@example.com")[1]


# Refresh


def test_refresh_returns_a_new_pair_for_the_same_session(client, clock, pair):
    clock.advance(60)

    response = refresh(client, pair["refresh_token"])

    assert response.status_code == 200
    new = response.json
    assert set(new) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert (new["token_type"], new["expires_in"]) == ("Bearer", 900)
    assert new["refresh_token"] != pair["refresh_token"]
    old_claims, new_claims = (jwt.get_unverified_claims(p["access_token"]) for p in (pair, new))
    assert new_claims["sid"] == old_claims["sid"]
    assert new_claims["auth_time"] == old_claims["auth_time"]
    assert new_claims["iat"] == old_claims["iat"] + 60
    assert client.get("/v1/me", headers=bearer(new)).status_code == 200


def test_each_new_refresh_token_refreshes_in_turn(client, pair):
    token = pair["refresh_token"]
    for _ in range(3):
        response = refresh(client, token)
        assert response.status_code == 200
        token = response.json["refresh_token"]


def test_a_reused_refresh_token_ends_the_whole_session(client, pair):
    newer = refresh(client, pair["refresh_token"]).json

    assert_problem(refresh(client, pair["refresh_token"]), 401, "token_reused")

    assert_problem(refresh(client, newer["refresh_token"]), 401, "token_invalid")


def test_reuse_ends_only_that_session(client, auth, pair):
    other = auth.sign_in("ada@example.com").json
    refresh(client, pair["refresh_token"])

    refresh(client, pair["refresh_token"])

    assert refresh(client, other["refresh_token"]).status_code == 200


def test_concurrent_refreshes_with_one_token_one_wins_and_the_session_ends(identity_app, client, pair):
    responses = race(identity_app, "/v1/tokens/refresh", [{"refresh_token": pair["refresh_token"]}] * 8)

    winners = [response for response in responses if response.status_code == 200]
    losers = [response for response in responses if response.status_code != 200]
    assert len(winners) == 1, [(r.status_code, r.get_json()) for r in responses]
    assert all(response.status_code == 401 for response in losers)
    codes = [response.get_json()["code"] for response in losers]
    assert "token_reused" in codes and set(codes) <= {"token_reused", "token_invalid"}, codes
    # the reuse ended the session, the winner's new token with it
    assert_problem(refresh(client, winners[0].get_json()["refresh_token"]), 401, "token_invalid")


@pytest.mark.parametrize("token", ["not-a-refresh-token", "x" * 43])
def test_an_unknown_refresh_token_is_401(client, token):
    assert_problem(refresh(client, token), 401, "token_invalid")


def test_a_refresh_token_works_until_it_expires(client, clock, pair):
    clock.advance(REFRESH_TTL - 1)

    assert refresh(client, pair["refresh_token"]).status_code == 200


def test_an_expired_refresh_token_is_401(client, clock, pair):
    clock.advance(REFRESH_TTL + 1)

    assert_problem(refresh(client, pair["refresh_token"]), 401, "token_expired")


def test_refreshing_slides_the_expiry(client, clock, pair):
    clock.advance(REFRESH_TTL - 1)
    newer = refresh(client, pair["refresh_token"]).json

    clock.advance(REFRESH_TTL - 1)

    assert refresh(client, newer["refresh_token"]).status_code == 200


def test_the_refresh_token_lifetime_is_configurable(make_identity_app, outbox, clock):
    client = make_identity_app(REFRESH_TOKEN_TTL=3600).test_client()
    _account, tokens = AuthActions(client, outbox).verified_account("ada@example.com")

    clock.advance(3601)

    assert_problem(refresh(client, tokens["refresh_token"]), 401, "token_expired")


def test_an_access_token_is_not_a_refresh_token(client, pair):
    response = refresh(client, pair["access_token"])

    assert response.status_code == 422  # longer than any refresh token: refused by the schema
    assert response.mimetype == "application/problem+json"


def test_a_refresh_body_must_hold_only_the_token(client, pair):
    body = {"refresh_token": pair["refresh_token"], "scope": "admin"}

    assert_problem(client.post("/v1/tokens/refresh", json=body), 422, "validation_failed")


# Sign-out


def test_sign_out_is_204_and_ends_the_session(client, pair):
    response = sign_out(client, pair["refresh_token"])

    assert response.status_code == 204
    assert response.get_data() == b""
    assert_problem(refresh(client, pair["refresh_token"]), 401, "token_invalid")


def test_sign_out_also_ends_tokens_issued_later_in_the_session(client, pair):
    newer = refresh(client, pair["refresh_token"]).json

    sign_out(client, newer["refresh_token"])

    assert_problem(refresh(client, newer["refresh_token"]), 401, "token_invalid")


def test_sign_out_leaves_other_sessions_alone(client, auth, pair):
    other = auth.sign_in("ada@example.com").json

    sign_out(client, pair["refresh_token"])

    assert refresh(client, other["refresh_token"]).status_code == 200


@pytest.mark.parametrize("token", ["never-issued", "x" * 43])
def test_sign_out_with_an_unknown_token_is_204(client, token):
    assert sign_out(client, token).status_code == 204


def test_signing_out_twice_is_204(client, pair):
    sign_out(client, pair["refresh_token"])

    assert sign_out(client, pair["refresh_token"]).status_code == 204


def test_sign_out_needs_a_token(client):
    body = assert_problem(client.post("/v1/sessions/revoke", json={}), 422, "validation_failed")

    assert "refresh_token" in body["errors"]
