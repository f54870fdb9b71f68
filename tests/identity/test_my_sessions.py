"""GET /v1/me/sessions (the account's signed-in devices) and DELETE /v1/me/sessions/{id} (sign one out)."""
from __future__ import annotations

from datetime import datetime

from jose import jwt

from tests.conftest import AuthActions, assert_problem, bearer


def sid(pair: dict) -> str:
    return jwt.get_unverified_claims(pair["access_token"])["sid"]


def listed(client, pair: dict) -> list[dict]:
    response = client.get("/v1/me/sessions", headers=bearer(pair))
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_each_sign_in_is_a_session_the_caller_s_own_marked_current(client, auth, clock):
    laptop = auth.verified_account("ada@example.com")[1]
    clock.advance(60)
    phone = auth.sign_in("ada@example.com").json
    clock.advance(60)
    refreshed = client.post("/v1/tokens/refresh", json={"refresh_token": laptop["refresh_token"]}).json
    grace = auth.verified_account("grace@example.com")[1]

    items = listed(client, phone)

    assert [(item["id"], item["current"]) for item in items] == [(sid(laptop), False), (sid(phone), True)]
    assert datetime.fromisoformat(items[0]["last_used_at"]) == clock.now  # the refresh
    assert datetime.fromisoformat(items[1]["created_at"]) == datetime.fromisoformat(items[1]["last_used_at"])
    assert items[0]["amr"] == ["pwd"]
    assert [item["current"] for item in listed(client, refreshed)] == [True, False]
    assert [item["id"] for item in listed(client, grace)] == [sid(grace)]


def test_a_session_records_the_browser_and_address_it_signed_in_from(client, auth):
    auth.verified_account("ada@example.com")
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    pair = client.post("/v1/sessions", json={"email": "ada@example.com", "password": AuthActions.PASSWORD},
                       headers={"User-Agent": firefox + "x" * 400}, environ_base={"REMOTE_ADDR": "203.0.113.9"}).json

    mine = next(item for item in listed(client, pair) if item["current"])

    assert mine["user_agent"] == (firefox + "x" * 400)[:300]
    assert mine["ip_address"] == "203.0.113.9"


def test_signing_a_session_out_ends_its_refresh_token_and_drops_it_from_the_list(client, auth):
    laptop = auth.verified_account("ada@example.com")[1]
    phone = auth.sign_in("ada@example.com").json

    assert client.delete(f"/v1/me/sessions/{sid(phone)}", headers=bearer(laptop)).status_code == 204

    assert_problem(client.post("/v1/tokens/refresh", json={"refresh_token": phone["refresh_token"]}), 401,
                   "token_invalid")
    assert [item["id"] for item in listed(client, laptop)] == [sid(laptop)]
    assert client.post("/v1/tokens/refresh", json={"refresh_token": laptop["refresh_token"]}).status_code == 200


def test_another_account_s_session_is_not_found_and_stays_signed_in(client, auth):
    ada = auth.verified_account("ada@example.com")[1]
    mallory = auth.verified_account("mallory@example.com")[1]

    assert_problem(client.delete(f"/v1/me/sessions/{sid(ada)}", headers=bearer(mallory)), 404, "not_found")
    assert_problem(client.delete("/v1/me/sessions/no-such-session", headers=bearer(mallory)), 404, "not_found")
    assert client.post("/v1/tokens/refresh", json={"refresh_token": ada["refresh_token"]}).status_code == 200
    assert_problem(client.get("/v1/me/sessions"), 401, "invalid_token")


def test_signed_out_and_expired_sessions_are_not_listed(client, auth, clock):
    first = auth.verified_account("ada@example.com")[1]
    second = auth.sign_in("ada@example.com").json
    assert client.post("/v1/sessions/revoke", json={"refresh_token": second["refresh_token"]}).status_code == 204
    assert [item["id"] for item in listed(client, first)] == [sid(first)]

    clock.advance(30 * 24 * 3600)  # the refresh token's lifetime
    third = auth.sign_in("ada@example.com").json
    assert [item["id"] for item in listed(client, third)] == [sid(third)]
