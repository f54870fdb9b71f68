"""POST /v1/sessions: the token pair and its access token, refusals, and the throttles on failures."""
from __future__ import annotations

import pytest
from jose import jwt

from tests.conftest import AuthActions, assert_problem, race

WRONG = "not the password"
FREE_FAILURES = 5  # SIGN_IN_FREE_FAILURES default
BASE_DELAY = 30  # SIGN_IN_BASE_DELAY default


@pytest.fixture
def ada(auth) -> str:
    """The address of a verified account with the standard password."""
    auth.sign_up("ada@example.com")
    auth.verify("ada@example.com")
    return "ada@example.com"


def fail(auth, email: str, times: int) -> None:
    for _ in range(times):
        assert_problem(auth.sign_in(email, WRONG), 401, "invalid_credentials")


def assert_rate_limited(response) -> int:
    """Check a 429 problem with Retry-After; returns the delay in seconds."""
    assert_problem(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert retry_after > 0
    return retry_after


# Success


def test_sign_in_returns_a_token_pair(auth, ada):
    response = auth.sign_in(ada)

    assert response.status_code == 200
    pair = response.json
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    assert pair["refresh_token"] and pair["refresh_token"] != pair["access_token"]


def test_the_access_token_carries_the_contract_claims(auth, clock):
    account, pair = auth.verified_account("ada@example.com")

    claims = jwt.get_unverified_claims(pair["access_token"])

    now = int(clock.now.timestamp())
    assert claims["iss"] == "http://127.0.0.1:8001"
    assert claims["aud"] == "threshold"
    assert claims["sub"] == account["id"]
    assert (claims["iat"], claims["exp"], claims["auth_time"]) == (now, now + 900, now)
    assert claims["jti"] and claims["sid"]
    assert claims["email"] == "ada@example.com"
    assert claims["email_verified"] is True
    assert (claims["given_name"], claims["family_name"]) == ("Ada", "Lovelace")
    assert claims["amr"] == ["pwd"]


def test_the_access_token_header_names_a_published_es256_key(client, auth):
    _account, pair = auth.verified_account("ada@example.com")

    header = jwt.get_unverified_header(pair["access_token"])

    assert header["alg"] == "ES256"
    assert header["typ"] == "at+jwt"
    published = [key["kid"] for key in client.get("/.well-known/jwks.json").json["keys"]]
    assert header["kid"] in published


def test_each_sign_in_opens_its_own_session(auth, ada):
    first, second = auth.sign_in(ada).json, auth.sign_in(ada).json

    first_claims, second_claims = (jwt.get_unverified_claims(p["access_token"]) for p in (first, second))
    assert first_claims["sid"] != second_claims["sid"]
    assert first_claims["jti"] != second_claims["jti"]
    assert first["refresh_token"] != second["refresh_token"]


def test_the_address_is_normalised_on_sign_in(auth, ada):
    assert auth.sign_in("  ADA@Example.com ").status_code == 200


# Refusals


def test_an_unverified_account_with_the_right_password_is_403(auth):
    auth.sign_up("ada@example.com")

    assert_problem(auth.sign_in("ada@example.com"), 403, "email_not_verified")


def test_an_unverified_account_with_a_wrong_password_is_401(auth):
    auth.sign_up("ada@example.com")

    assert_problem(auth.sign_in("ada@example.com", WRONG), 401, "invalid_credentials")


def test_unknown_email_and_wrong_password_get_the_same_answer(auth, ada):
    wrong_password = auth.sign_in(ada, WRONG)
    unknown_email = auth.sign_in("nobody@example.com", AuthActions.PASSWORD)

    assert_problem(wrong_password, 401, "invalid_credentials")
    assert unknown_email.status_code == wrong_password.status_code
    assert unknown_email.get_data() == wrong_password.get_data()
    assert "WWW-Authenticate" not in wrong_password.headers


@pytest.mark.parametrize("body, field", [
    ({"email": "ada@example.com"}, "password"),
    ({"password": "secret-ish"}, "email"),
    ({"email": "ada@example.com", "password": "secret-ish", "remember_me": True}, "remember_me"),
    ({"email": "ada@example.com", "password": ""}, "password"),
])
def test_invalid_sign_in_bodies_are_422(client, body, field):
    response = assert_problem(client.post("/v1/sessions", json=body), 422, "validation_failed")

    assert field in response["errors"]


# Per-account throttling


def test_after_the_free_failures_even_the_right_password_waits(auth, ada):
    fail(auth, ada, FREE_FAILURES)

    assert assert_rate_limited(auth.sign_in(ada)) == BASE_DELAY


def test_the_real_user_gets_in_after_the_delay(auth, clock, ada):
    fail(auth, ada, FREE_FAILURES)
    delay = assert_rate_limited(auth.sign_in(ada))

    clock.advance(delay)

    assert auth.sign_in(ada).status_code == 200


def test_the_delay_grows_with_each_further_failure(auth, clock, ada):
    fail(auth, ada, FREE_FAILURES)
    delays = []
    for _ in range(3):
        delay = assert_rate_limited(auth.sign_in(ada, WRONG))
        delays.append(delay)
        clock.advance(delay)
        fail(auth, ada, 1)

    assert delays[0] < delays[1] < delays[2]


def test_the_delay_is_capped(make_identity_app, outbox, clock):
    auth = AuthActions(make_identity_app(SIGN_IN_FREE_FAILURES=1, SIGN_IN_MAX_DELAY=100).test_client(), outbox)
    auth.verified_account("ada@example.com")
    delays = []
    for _ in range(6):
        fail(auth, "ada@example.com", 1)
        delay = assert_rate_limited(auth.sign_in("ada@example.com"))
        delays.append(delay)
        clock.advance(delay)

    assert max(delays) == 100


def test_a_success_forgets_earlier_failures(auth, ada):
    fail(auth, ada, FREE_FAILURES - 1)
    assert auth.sign_in(ada).status_code == 200

    fail(auth, ada, FREE_FAILURES - 1)
    assert auth.sign_in(ada).status_code == 200


def test_the_number_of_free_failures_is_configurable(make_identity_app, outbox):
    auth = AuthActions(make_identity_app(SIGN_IN_FREE_FAILURES=2).test_client(), outbox)
    auth.verified_account("ada@example.com")

    fail(auth, "ada@example.com", 2)

    assert_rate_limited(auth.sign_in("ada@example.com"))


def test_the_throttle_is_per_account(auth, ada):
    auth.sign_up("grace@example.com")
    auth.verify("grace@example.com")

    fail(auth, ada, FREE_FAILURES)

    assert auth.sign_in("grace@example.com").status_code == 200


def test_unknown_addresses_are_throttled_like_real_ones(auth):
    fail(auth, "nobody@example.com", FREE_FAILURES)

    assert_rate_limited(auth.sign_in("nobody@example.com"))


def test_the_throttle_is_shared_by_every_worker(make_identity_app, outbox, ada):
    worker_a = AuthActions(make_identity_app().test_client(), outbox)
    worker_b = AuthActions(make_identity_app().test_client(), outbox)

    fail(worker_a, ada, FREE_FAILURES)

    assert_rate_limited(worker_b.sign_in(ada))


def test_concurrent_wrong_passwords_get_no_more_checks_than_one_client_in_a_row(identity_app, ada):
    # A burst released at once from threads on their own database connections: each guess is counted
    # before its password is checked, so exactly FREE_FAILURES are checked and the rest wait.
    responses = race(identity_app, "/v1/sessions", [{"email": ada, "password": WRONG}] * (FREE_FAILURES + 7))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401] * FREE_FAILURES + [429] * 7, [(r.status_code, r.get_json()) for r in responses]
    for response in responses:
        if response.status_code == 429:
            assert_rate_limited(response)


def test_guesses_from_one_address_do_not_lock_the_user_out_at_another(identity_app, auth, ada):
    fail(auth, ada, FREE_FAILURES)
    assert_rate_limited(auth.sign_in(ada))

    elsewhere = identity_app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"

    assert elsewhere.post("/v1/sessions", json={"email": ada, "password": AuthActions.PASSWORD}).status_code == 200
    assert_rate_limited(auth.sign_in(ada))  # the guessing address still waits


def test_a_success_is_counted_and_then_forgotten(auth, ada):
    # Counting first means the right password counts as a try too; its success clears the count, so a user
    # who signs in often never runs into the throttle.
    for _ in range(FREE_FAILURES * 2):
        assert auth.sign_in(ada).status_code == 200
    fail(auth, ada, FREE_FAILURES - 1)

    assert auth.sign_in(ada).status_code == 200


# Per-IP limits


@pytest.fixture
def strict_ip_client(make_identity_app):
    return make_identity_app(IP_RATE_LIMIT_PER_MINUTE=3).test_client()


def sign_up_body(n: int) -> dict:
    return {"email": f"user{n}@example.com", "password": AuthActions.PASSWORD, "first_name": "A", "last_name": "B"}


def test_sign_in_is_limited_per_ip(strict_ip_client, clock):
    for n in range(3):
        response = strict_ip_client.post("/v1/sessions", json={"email": f"u{n}@example.com", "password": WRONG})
        assert response.status_code == 401

    assert_rate_limited(strict_ip_client.post("/v1/sessions", json={"email": "u9@example.com", "password": WRONG}))

    clock.advance(61)
    assert strict_ip_client.post("/v1/sessions", json={"email": "u9@example.com", "password": WRONG}).status_code == 401


def test_sign_up_is_limited_per_ip(strict_ip_client):
    for n in range(3):
        assert strict_ip_client.post("/v1/accounts", json=sign_up_body(n)).status_code == 201

    assert_rate_limited(strict_ip_client.post("/v1/accounts", json=sign_up_body(3)))


@pytest.mark.parametrize("path", ["/v1/email-verifications", "/v1/password-resets"])
def test_mail_requests_are_limited_per_ip(strict_ip_client, path):
    for n in range(3):
        assert strict_ip_client.post(path, json={"email": f"u{n}@example.com"}).status_code == 202

    assert_rate_limited(strict_ip_client.post(path, json={"email": "u9@example.com"}))


def test_the_ip_limit_counts_each_client_address(strict_ip_client):
    for n in range(3):
        strict_ip_client.post("/v1/sessions", json={"email": f"u{n}@example.com", "password": WRONG})

    other_ip = strict_ip_client.post("/v1/sessions", json={"email": "u9@example.com", "password": WRONG},
                                     environ_overrides={"REMOTE_ADDR": "192.0.2.7"})

    assert other_ip.status_code == 401
