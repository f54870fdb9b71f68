"""Password reset: requesting the mail, confirming with its token, and the HTML page the mail opens."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import AuthActions, assert_problem, bearer, token_from_url
from tests.identity.test_email_verification import page_loads

NEW_PASSWORD = "a brand new passphrase"
RESET_TTL = 3600  # PASSWORD_RESET_TTL default
RESET_REQUESTED = "identity.password_reset.requested"


def request_reset(client, email: str):
    return client.post("/v1/password-resets", json={"email": email})


def reset_token(client, outbox, email: str) -> str:
    assert request_reset(client, email).status_code == 202
    return token_from_url(outbox.last(RESET_REQUESTED, email)["data"]["reset_url"])


def confirm(client, token: str, new_password: str = NEW_PASSWORD):
    return client.post("/v1/password-resets/confirm", json={"token": token, "new_password": new_password})


def refresh(client, tokens: dict):
    return client.post("/v1/tokens/refresh", json={"refresh_token": tokens["refresh_token"]})


@pytest.fixture
def ada(auth) -> dict:
    """A verified account's token pair; its address is ada@example.com."""
    return auth.verified_account("ada@example.com")[1]


# Request


@pytest.mark.parametrize("email", ["ada@example.com", "nobody@example.com"])
def test_a_reset_request_is_always_202(client, ada, email):
    response = request_reset(client, email)

    assert response.status_code == 202
    assert response.json == {"status": "accepted"}


def test_an_unknown_address_gets_no_mail(client, outbox):
    request_reset(client, "nobody@example.com")

    assert outbox.events(RESET_REQUESTED) == []


def test_the_reset_event_carries_the_contract_data(client, outbox, clock, ada):
    account = client.get("/v1/me", headers=bearer(ada)).json

    request_reset(client, "  ADA@example.com ")

    data = outbox.last(RESET_REQUESTED)["data"]
    assert set(data) == {"account_id", "email", "first_name", "reset_url", "expires_at"}
    assert (data["account_id"], data["email"], data["first_name"]) == (account["id"], "ada@example.com", "Ada")
    assert data["reset_url"].startswith("http://127.0.0.1:8001/reset-password?token=")
    assert datetime.fromisoformat(data["expires_at"]) == clock.now + timedelta(seconds=RESET_TTL)


def test_reset_requests_have_a_per_address_cooldown(client, outbox, clock, ada):
    request_reset(client, "ada@example.com")
    request_reset(client, "ada@example.com")
    assert len(outbox.events(RESET_REQUESTED)) == 1

    clock.advance(61)
    request_reset(client, "ada@example.com")
    assert len(outbox.events(RESET_REQUESTED)) == 2


# Confirm


def test_confirm_is_204_and_swaps_the_password(client, auth, outbox, ada):
    response = confirm(client, reset_token(client, outbox, "ada@example.com"))

    assert response.status_code == 204
    assert_problem(auth.sign_in("ada@example.com"), 401, "invalid_credentials")
    assert auth.sign_in("ada@example.com", NEW_PASSWORD).status_code == 200


def test_a_reset_ends_every_session(client, auth, outbox, ada):
    other = auth.sign_in("ada@example.com").json

    confirm(client, reset_token(client, outbox, "ada@example.com"))

    assert_problem(refresh(client, ada), 401, "token_invalid")
    assert_problem(refresh(client, other), 401, "token_invalid")


def test_a_used_token_is_invalid(client, outbox, ada):
    token = reset_token(client, outbox, "ada@example.com")
    confirm(client, token)

    assert_problem(confirm(client, token, "yet another passphrase"), 400, "token_invalid")


def test_a_token_works_until_its_hour_is_up(client, outbox, clock, ada):
    token = reset_token(client, outbox, "ada@example.com")
    clock.advance(RESET_TTL - 1)

    assert confirm(client, token).status_code == 204


def test_a_token_expires_after_an_hour(client, auth, outbox, clock, ada):
    token = reset_token(client, outbox, "ada@example.com")
    clock.advance(RESET_TTL + 1)

    assert_problem(confirm(client, token), 400, "token_expired")
    assert auth.sign_in("ada@example.com").status_code == 200


def test_a_newer_reset_mail_voids_the_earlier_token(client, outbox, clock, ada):
    earlier = reset_token(client, outbox, "ada@example.com")
    clock.advance(61)
    later = reset_token(client, outbox, "ada@example.com")

    assert confirm(client, earlier).status_code == 400
    assert confirm(client, later).status_code == 204


@pytest.mark.parametrize("token", ["not-a-token", "x" * 43])
def test_an_unknown_token_is_invalid(client, token):
    assert_problem(confirm(client, token), 400, "token_invalid")


def test_a_verification_token_cannot_reset_a_password(client, auth):
    auth.sign_up("ada@example.com")

    assert_problem(confirm(client, auth.verification_token("ada@example.com")), 400, "token_invalid")
    assert_problem(auth.sign_in("ada@example.com", NEW_PASSWORD), 401, "invalid_credentials")


@pytest.mark.parametrize("bad", ["kq7#z", "password", "ada@example.com", "x" * 129])
def test_a_refused_password_does_not_use_up_the_token(client, auth, outbox, ada, bad):
    token = reset_token(client, outbox, "ada@example.com")

    problem = assert_problem(confirm(client, token, bad), 422, "validation_failed")

    assert list(problem["errors"]) == ["new_password"]
    assert confirm(client, token).status_code == 204
    assert auth.sign_in("ada@example.com", NEW_PASSWORD).status_code == 200


def test_a_reset_lets_a_throttled_user_back_in(client, auth, outbox, ada):
    for _ in range(5):  # SIGN_IN_FREE_FAILURES
        auth.sign_in("ada@example.com", "not the password")
    assert auth.sign_in("ada@example.com").status_code == 429

    confirm(client, reset_token(client, outbox, "ada@example.com"))

    assert auth.sign_in("ada@example.com", NEW_PASSWORD).status_code == 200


def test_a_reset_verifies_an_unverified_address(client, auth, outbox):
    auth.sign_up("ada@example.com")

    confirm(client, reset_token(client, outbox, "ada@example.com"))

    assert auth.sign_in("ada@example.com", NEW_PASSWORD).status_code == 200
    assert [e["data"]["email"] for e in outbox.events("identity.account.verified")] == ["ada@example.com"]


# The page the mail opens


def test_the_page_shows_a_form_carrying_the_token(client, outbox, ada):
    token = reset_token(client, outbox, "ada@example.com")

    response = client.get(f"/reset-password?token={token}")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<form" in page and 'name="new_password"' in page
    assert f'value="{token}"' in page


def test_opening_the_link_spends_nothing_however_often(client, auth, outbox, ada):
    token = reset_token(client, outbox, "ada@example.com")

    for _ in range(3):  # what a mail scanner or link preview does: GET the link, follow nothing
        assert client.get(f"/reset-password?token={token}", follow_redirects=False).status_code == 200

    assert refresh(client, ada).status_code == 200  # no session ended
    assert auth.sign_in("ada@example.com", AuthActions.PASSWORD).status_code == 200
    assert confirm(client, token).status_code == 204  # the token is still unused


def test_every_state_of_the_page_keeps_its_token_to_itself_and_loads_only_itself(client, outbox, ada):
    token = reset_token(client, outbox, "ada@example.com")

    for response in (client.get(f"/reset-password?token={token}"),
                     client.post("/reset-password", data={"token": token, "new_password": "password"}),
                     client.post("/reset-password", data={"token": token, "new_password": NEW_PASSWORD}),
                     client.post("/reset-password", data={"token": token, "new_password": NEW_PASSWORD})):
        page_loads(client, response)


def test_the_page_form_sets_the_new_password(client, auth, outbox, ada):
    token = reset_token(client, outbox, "ada@example.com")

    response = client.post("/reset-password", data={"token": token, "new_password": NEW_PASSWORD})

    assert response.status_code == 200
    assert "password is changed" in response.get_data(as_text=True)
    assert_problem(refresh(client, ada), 401, "token_invalid")
    assert auth.sign_in("ada@example.com", NEW_PASSWORD).status_code == 200


def test_the_page_form_explains_a_refused_password_and_keeps_the_token(client, auth, outbox, ada):
    token = reset_token(client, outbox, "ada@example.com")

    response = client.post("/reset-password", data={"token": token, "new_password": "password"})

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "too common" in response.get_data(as_text=True)
    assert client.post("/reset-password", data={"token": token, "new_password": NEW_PASSWORD}).status_code == 200


def test_the_page_form_refuses_a_bad_token(client, auth, ada):
    response = client.post("/reset-password", data={"token": "not-a-token", "new_password": NEW_PASSWORD})

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert auth.sign_in("ada@example.com", AuthActions.PASSWORD).status_code == 200


def test_the_page_escapes_the_token(client):
    response = client.get('/reset-password?token="><script>alert(1)</script>')

    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)


def test_the_page_form_is_limited_per_client_address(make_identity_app):
    client = make_identity_app(IP_RATE_LIMIT_PER_MINUTE=2).test_client()
    answers = [client.post("/reset-password", data={"token": "guess", "new_password": NEW_PASSWORD})
               for _ in range(3)]
    assert [a.status_code for a in answers] == [400, 400, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].mimetype == "text/html"
