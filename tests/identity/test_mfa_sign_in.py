"""Signing in with 2FA on: the password step answers mfa_required with a short-lived mfa_token, and
POST /v1/sessions/mfa takes a TOTP or recovery code. Replay, the time window, concurrency, the voiding of the
mfa_token after wrong codes, the per-account and per-IP throttles, and password reset keeping 2FA on.

Time is the app's clock: a new TOTP step is `clock.advance(30)`, never a sleep.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from jose import jwt

from tests.conftest import AuthActions, assert_problem, bearer, race, token_from_url
from tests.identity.test_totp import (
    PASSWORD,
    STEP,
    code_at,
    database_dump,
    enable_mfa,
    me,
    mfa_token_for,
    query,
    second_step,
)

MFA_TOKEN_TTL = 300  # MFA_TOKEN_TTL default
MFA_MAX_FAILURES = 5  # MFA_MAX_FAILURES default
FREE_FAILURES = 5  # SIGN_IN_FREE_FAILURES default: the per-account code throttle blocks from here on


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.fixture
def ada(auth, clock):
    """ada@example.com with 2FA on; the clock is past the step of the confirming code."""
    return enable_mfa(auth, clock, "ada@example.com")


# --- the password step --------------------------------------------------------------------------------------


def test_the_password_step_answers_mfa_required_and_no_tokens(auth, ada):
    response = auth.sign_in("ada@example.com")

    assert response.status_code == 200
    body = response.json
    assert body["mfa_required"] is True
    assert body["methods"] == ["totp", "recovery_code"]
    assert body["expires_in"] == MFA_TOKEN_TTL
    assert isinstance(body["mfa_token"], str) and len(body["mfa_token"]) >= 32
    assert not {"access_token", "refresh_token"} & set(body)


def test_the_mfa_token_lifetime_is_configurable(make_identity_app, outbox, clock):
    auth = AuthActions(make_identity_app(MFA_TOKEN_TTL=60).test_client(), outbox)
    user = enable_mfa(auth, clock)

    assert auth.sign_in(user.email).json["expires_in"] == 60
    token = mfa_token_for(auth, user.email)
    clock.advance(61)
    assert_problem(second_step(auth.client, token, code_at(user.secret, clock.now)), 400, "token_expired")


def test_the_mfa_token_is_stored_hashed(auth, ada, identity_db):
    token = mfa_token_for(auth, ada.email)

    assert len(query(identity_db, "SELECT token_hash FROM mfa_challenges WHERE account_id = :id", id=ada.id)) == 1
    assert token not in database_dump(identity_db)


def test_a_wrong_password_does_not_reveal_that_2fa_is_on(auth, ada):
    with_mfa = auth.sign_in("ada@example.com", "not the password")
    auth.verified_account("bob@example.com")
    without_mfa = auth.sign_in("bob@example.com", "not the password")

    assert_problem(with_mfa, 401, "invalid_credentials")
    assert with_mfa.json == without_mfa.json


# --- the second step ------------------------------------------------------------------------------------------


def test_a_totp_code_completes_sign_in_with_amr_pwd_otp(client, auth, clock, ada):
    token = mfa_token_for(auth, ada.email)

    response = second_step(client, token, code_at(ada.secret, clock.now))

    assert response.status_code == 200, response.json
    pair = response.json
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert pair["token_type"] == "Bearer"
    claims = jwt.get_unverified_claims(pair["access_token"])
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["sub"] == ada.id and claims["email"] == "ada@example.com"
    assert claims["auth_time"] == int(clock.now.timestamp())
    assert me(client, pair)["mfa_enabled"] is True


def test_a_refreshed_token_keeps_amr_pwd_otp(client, auth, clock, ada):
    pair = second_step(client, mfa_token_for(auth, ada.email), code_at(ada.secret, clock.now)).json

    refreshed = client.post("/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]})

    assert refreshed.status_code == 200, refreshed.json
    assert jwt.get_unverified_claims(refreshed.json["access_token"])["amr"] == ["pwd", "otp"]


def test_a_recovery_code_completes_sign_in(client, auth, ada):
    response = second_step(client, mfa_token_for(auth, ada.email), ada.recovery_codes[0])

    assert response.status_code == 200, response.json
    assert jwt.get_unverified_claims(response.json["access_token"])["amr"] == ["pwd", "otp"]


def test_a_recovery_code_may_be_typed_in_capitals_with_spaces_around(client, auth, ada):
    response = second_step(client, mfa_token_for(auth, ada.email), f"  {ada.recovery_codes[1].upper()} ")

    assert response.status_code == 200, response.json


def test_each_recovery_code_works_once(make_identity_app, outbox, clock, identity_db):
    # enough free failures that the ten refused reuses below are not throttled
    auth = AuthActions(make_identity_app(SIGN_IN_FREE_FAILURES=50).test_client(), outbox)
    user = enable_mfa(auth, clock)

    for code in user.recovery_codes:
        assert second_step(auth.client, mfa_token_for(auth, user.email), code).status_code == 200, code
    for code in user.recovery_codes:
        assert_problem(second_step(auth.client, mfa_token_for(auth, user.email), code), 401, "invalid_code")

    rows = query(identity_db, "SELECT used_at FROM recovery_codes WHERE account_id = :id", id=user.id)
    assert len(rows) == 10 and all(used_at is not None for (used_at,) in rows)


def test_the_mfa_token_is_single_use(client, auth, clock, ada):
    token = mfa_token_for(auth, ada.email)
    assert second_step(client, token, code_at(ada.secret, clock.now)).status_code == 200
    clock.advance(STEP)

    assert_problem(second_step(client, token, code_at(ada.secret, clock.now)), 400, "token_invalid")
    assert_problem(second_step(client, token, ada.recovery_codes[0]), 400, "token_invalid")


def test_an_unknown_mfa_token_is_refused(client, clock, ada):
    assert_problem(second_step(client, "x" * 43, code_at(ada.secret, clock.now)), 400, "token_invalid")


def test_the_mfa_token_expires(client, auth, clock, ada):
    token = mfa_token_for(auth, ada.email)
    clock.advance(MFA_TOKEN_TTL)

    assert_problem(second_step(client, token, code_at(ada.secret, clock.now)), 400, "token_expired")


def test_the_mfa_token_works_until_just_before_it_expires(client, auth, clock, ada):
    token = mfa_token_for(auth, ada.email)
    clock.advance(MFA_TOKEN_TTL - 1)

    assert second_step(client, token, code_at(ada.secret, clock.now)).status_code == 200


def test_the_mfa_token_is_no_access_or_refresh_token(client, auth, ada):
    token = mfa_token_for(auth, ada.email)

    assert_problem(client.get("/v1/me", headers=bearer(token)), 401, "invalid_token")
    assert_problem(client.post("/v1/tokens/refresh", json={"refresh_token": token}), 401, "token_invalid")


def test_a_code_of_another_account_is_refused(client, auth, clock, ada):
    bob = enable_mfa(auth, clock, "bob@example.com")
    token = mfa_token_for(auth, ada.email)

    assert_problem(second_step(client, token, code_at(bob.secret, clock.now)), 401, "invalid_code")
    assert_problem(second_step(client, token, bob.recovery_codes[0]), 401, "invalid_code")
    # both still work for bob: a refused attempt spends nothing
    assert second_step(client, mfa_token_for(auth, bob.email), code_at(bob.secret, clock.now)).status_code == 200
    assert second_step(client, mfa_token_for(auth, bob.email), bob.recovery_codes[0]).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"code": "123456"}, "mfa_token"),
    ({"mfa_token": "x" * 43}, "code"),
    ({"mfa_token": "x" * 43, "code": ""}, "code"),
    ({"mfa_token": "x" * 43, "code": "123456", "amr": ["pwd", "otp"]}, "amr"),
])
def test_a_malformed_body_is_422(client, body, field):
    problem = assert_problem(client.post("/v1/sessions/mfa", json=body), 422, "validation_failed")

    assert field in problem["errors"]


# --- wrong codes and the voided mfa_token ---------------------------------------------------------------------


def test_a_wrong_code_is_401_and_the_token_survives_a_few(client, auth, clock, ada):
    token = mfa_token_for(auth, ada.email)
    right = code_at(ada.secret, clock.now)

    for code in (wrong(right), "000000" if right != "000000" else "111111", "abcd-efgh-jkmn", "12345"):
        assert_problem(second_step(client, token, code), 401, "invalid_code")

    assert second_step(client, token, right).status_code == 200


def test_mfa_max_failures_wrong_codes_void_the_mfa_token(client, auth, clock, ada):
    token = mfa_token_for(auth, ada.email)
    right = code_at(ada.secret, clock.now)
    for _ in range(MFA_MAX_FAILURES):
        assert_problem(second_step(client, token, wrong(right)), 401, "invalid_code")

    assert_problem(second_step(client, token, right), 400, "token_invalid")
    assert_problem(second_step(client, token, ada.recovery_codes[0]), 400, "token_invalid")


def test_mfa_max_failures_is_configurable_and_a_new_sign_in_gets_a_new_token(make_identity_app, outbox, clock):
    auth = AuthActions(make_identity_app(MFA_MAX_FAILURES=2).test_client(), outbox)
    user = enable_mfa(auth, clock)
    token = mfa_token_for(auth, user.email)
    right = code_at(user.secret, clock.now)

    assert_problem(second_step(auth.client, token, wrong(right)), 401, "invalid_code")
    assert_problem(second_step(auth.client, token, user.recovery_codes[0] + "x"), 401, "invalid_code")
    assert_problem(second_step(auth.client, token, right), 400, "token_invalid")

    # the voided token spent nothing: the same code opens a session on a new one
    assert second_step(auth.client, mfa_token_for(auth, user.email), right).status_code == 200


def test_wrong_codes_are_throttled_per_account_across_mfa_tokens(make_identity_app, outbox, clock):
    auth = AuthActions(make_identity_app(MFA_MAX_FAILURES=20).test_client(), outbox)
    user = enable_mfa(auth, clock)
    right = code_at(user.secret, clock.now)
    for _ in range(FREE_FAILURES):
        # a fresh mfa_token each time: the throttle is the account's, not the token's
        assert_problem(second_step(auth.client, mfa_token_for(auth, user.email), wrong(right)), 401, "invalid_code")

    token = mfa_token_for(auth, user.email)
    blocked = second_step(auth.client, token, right)

    assert_problem(blocked, 429, "rate_limited")
    retry_after = int(blocked.headers["Retry-After"])
    assert 0 < retry_after <= 30  # SIGN_IN_BASE_DELAY
    clock.advance(retry_after)
    assert second_step(auth.client, token, code_at(user.secret, clock.now)).status_code == 200


def test_the_code_throttle_of_one_account_does_not_block_another(client, auth, clock, ada):
    bob = enable_mfa(auth, clock, "bob@example.com")
    right = code_at(ada.secret, clock.now)
    for _ in range(FREE_FAILURES):
        second_step(client, mfa_token_for(auth, ada.email), wrong(right))
    assert_problem(second_step(client, mfa_token_for(auth, ada.email), right), 429, "rate_limited")

    assert second_step(client, mfa_token_for(auth, bob.email), code_at(bob.secret, clock.now)).status_code == 200


def test_the_second_step_has_a_per_ip_limit(make_identity_app, auth, clock, ada):
    limited = make_identity_app(IP_RATE_LIMIT_PER_MINUTE=2).test_client()
    right = code_at(ada.secret, clock.now)
    token = mfa_token_for(auth, ada.email)
    for _ in range(2):
        assert_problem(second_step(limited, token, wrong(right)), 401, "invalid_code")

    response = second_step(limited, token, right)  # even the right code, past the limit

    assert_problem(response, 429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= 60
    # another address has its own budget; the refused request spent neither the code nor the token
    other = limited.post("/v1/sessions/mfa", json={"mfa_token": token, "code": right},
                         environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert other.status_code == 200, other.json
    clock.advance(60)
    assert second_step(limited, mfa_token_for(auth, ada.email), code_at(ada.secret, clock.now)).status_code == 200


# --- replay and the time window --------------------------------------------------------------------------------


def test_a_totp_code_is_accepted_once(client, auth, clock, ada):
    code = code_at(ada.secret, clock.now)
    assert second_step(client, mfa_token_for(auth, ada.email), code).status_code == 200

    assert_problem(second_step(client, mfa_token_for(auth, ada.email), code), 401, "invalid_code")
    clock.advance(STEP - 1)  # still the same step, still refused
    assert_problem(second_step(client, mfa_token_for(auth, ada.email), code), 401, "invalid_code")


def test_after_a_code_is_used_older_codes_of_the_window_are_refused_and_the_next_step_works(client, auth, clock, ada):
    assert second_step(client, mfa_token_for(auth, ada.email), code_at(ada.secret, clock.now)).status_code == 200

    previous = code_at(ada.secret, clock.now - timedelta(seconds=STEP))  # inside the window, but older
    assert_problem(second_step(client, mfa_token_for(auth, ada.email), previous), 401, "invalid_code")

    clock.advance(STEP)
    assert second_step(client, mfa_token_for(auth, ada.email), code_at(ada.secret, clock.now)).status_code == 200


def test_the_confirming_code_cannot_be_replayed_to_sign_in(client, auth, clock):
    account, tokens = auth.verified_account("carol@example.com")
    secret = client.post("/v1/me/mfa/totp", json={"password": PASSWORD}, headers=bearer(tokens)).json["secret"]
    code = code_at(secret, clock.now)
    assert client.post("/v1/me/mfa/totp/confirm", json={"code": code}, headers=bearer(tokens)).status_code == 200

    assert_problem(second_step(client, mfa_token_for(auth, "carol@example.com"), code), 401, "invalid_code")


@pytest.mark.parametrize("offset", [-STEP, 0, STEP])
def test_the_window_accepts_one_step_either_side(client, auth, clock, ada, offset):
    clock.advance(STEP)  # so that the step before is not the (spent) step of the confirming code
    code = code_at(ada.secret, clock.now + timedelta(seconds=offset))

    assert second_step(client, mfa_token_for(auth, ada.email), code).status_code == 200


@pytest.mark.parametrize("offset", [-3 * STEP, -2 * STEP, 2 * STEP, 3 * STEP])
def test_the_window_refuses_codes_two_steps_away(client, auth, clock, ada, offset):
    code = code_at(ada.secret, clock.now + timedelta(seconds=offset))
    if code in {code_at(ada.secret, clock.now + timedelta(seconds=s)) for s in (-STEP, 0, STEP)}:
        pytest.fail("a one-in-a-million collision of TOTP codes; run again")  # never silently pass

    assert_problem(second_step(client, mfa_token_for(auth, ada.email), code), 401, "invalid_code")


def test_the_edges_of_a_step_are_the_clocks_not_the_wall_clocks(client, auth, clock, ada):
    # the last second of this step still takes this step's code; the first second of the step after
    # two more takes it no longer
    start = clock.now - timedelta(seconds=int(clock.now.timestamp()) % STEP)
    code = code_at(ada.secret, start)
    clock.now = start + timedelta(seconds=2 * STEP - 1)  # the next step: `code` is one step old
    assert second_step(client, mfa_token_for(auth, ada.email), code).status_code == 200

    clock.now = start + timedelta(seconds=3 * STEP)  # two steps on: out of the window
    code = code_at(ada.secret, start + timedelta(seconds=STEP))
    assert_problem(second_step(client, mfa_token_for(auth, ada.email), code), 401, "invalid_code")


# --- concurrency ------------------------------------------------------------------------------------------------


MFA_STEP = "/v1/sessions/mfa"


@pytest.mark.parametrize("kind", ["totp", "recovery_code"])
def test_two_concurrent_requests_with_one_code_exactly_one_wins(identity_app, auth, clock, ada, identity_db, kind):
    for round_number in range(4):
        code = code_at(ada.secret, clock.now) if kind == "totp" else ada.recovery_codes[round_number]
        # two mfa_tokens, so only the code can decide between them
        bodies = [{"mfa_token": mfa_token_for(auth, ada.email), "code": code} for _ in range(2)]

        responses = race(identity_app, MFA_STEP, bodies)

        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200, 401], [(r.status_code, r.get_json()) for r in responses]
        loser = next(response for response in responses if response.status_code == 401)
        assert loser.get_json()["code"] == "invalid_code"
        clock.advance(STEP)

    sessions = query(identity_db, "SELECT amr FROM sessions WHERE account_id = :id", id=ada.id)
    assert sorted(amr for (amr,) in sessions) == ["pwd"] + ["pwd otp"] * 4  # the verified_account one, + 4 winners


def test_a_right_code_racing_wrong_ones_is_never_a_server_error(make_identity_app, outbox, clock):
    # The success clears the account's code throttle while the failures record into it (it once was a
    # 500: the row vanished between the insert-if-missing and the SELECT of record_failure). Enough free
    # failures that the throttle never blocks here, so every round races a clear against the failures.
    app = make_identity_app(SIGN_IN_FREE_FAILURES=1000)
    auth = AuthActions(app.test_client(), outbox)
    user = enable_mfa(auth, clock)
    for _ in range(10):
        right = code_at(user.secret, clock.now)
        bodies = [{"mfa_token": mfa_token_for(auth, user.email), "code": right}]
        bodies += [{"mfa_token": mfa_token_for(auth, user.email), "code": wrong(right)} for _ in range(4)]

        responses = race(app, MFA_STEP, bodies)

        assert [response.status_code for response in responses] == [200, 401, 401, 401, 401], \
            [(r.status_code, r.get_json()) for r in responses]
        clock.advance(STEP)


def test_concurrent_wrong_codes_cannot_overrun_the_mfa_token(identity_app, auth, clock, ada):
    token = mfa_token_for(auth, ada.email)
    right = code_at(ada.secret, clock.now)
    bodies = [{"mfa_token": token, "code": f"{(int(right) + n) % 1_000_000:06d}"} for n in range(1, 9)]

    responses = race(identity_app, MFA_STEP, bodies)

    assert all(response.status_code in (400, 401, 429) for response in responses), \
        [(r.status_code, r.get_json()) for r in responses]
    assert_problem(second_step(identity_app.test_client(), token, right), 400, "token_invalid")


def wrong_codes(secret: str, clock, count: int) -> list[str]:
    right = int(code_at(secret, clock.now))
    return [f"{(right + 1000 * n) % 1_000_000:06d}" for n in range(1, count + 1)]


def test_concurrent_wrong_codes_get_exactly_max_failures_checks_on_one_mfa_token(make_identity_app, outbox, clock):
    # The token's count is taken before each code is checked, in one statement: of a burst released at
    # once, exactly MFA_MAX_FAILURES codes are checked and the rest find the token spent. (The account's
    # code throttle is set out of the way so only the token's count decides. Forty: on SQLite, where
    # transactions take the write lock at BEGIN, fewer did not interleave the old read-then-count.)
    app = make_identity_app(MFA_MAX_FAILURES=3, SIGN_IN_FREE_FAILURES=100)
    auth = AuthActions(app.test_client(), outbox)
    user = enable_mfa(auth, clock)
    token = mfa_token_for(auth, user.email)
    bodies = [{"mfa_token": token, "code": code} for code in wrong_codes(user.secret, clock, 40)]

    responses = race(app, MFA_STEP, bodies)

    answers = sorted((r.status_code, r.get_json()["code"]) for r in responses)
    assert answers == [(400, "token_invalid")] * 37 + [(401, "invalid_code")] * 3, answers


def test_concurrent_wrong_codes_get_exactly_the_free_failures_of_the_account_throttle(identity_app, clock, ada):
    # A code is checked in a few milliseconds, so the burst is large enough to overlap on SQLite too.
    bodies = [{"code": code} for code in wrong_codes(ada.secret, clock, FREE_FAILURES + 25)]

    responses = race(identity_app, "/v1/me/mfa/totp/disable", bodies, headers=bearer(ada.tokens))

    answers = sorted((r.status_code, r.get_json()["code"]) for r in responses)
    assert answers == [(401, "invalid_code")] * FREE_FAILURES + [(429, "rate_limited")] * 25, answers
    assert all(int(r.headers["Retry-After"]) > 0 for r in responses if r.status_code == 429)


def test_wrong_codes_from_one_address_do_not_block_the_owner_at_another(identity_app, auth, clock, ada):
    for code in wrong_codes(ada.secret, clock, FREE_FAILURES):
        assert_problem(second_step(auth.client, mfa_token_for(auth, ada.email), code), 401, "invalid_code")
    assert_problem(second_step(auth.client, mfa_token_for(auth, ada.email), code_at(ada.secret, clock.now)), 429,
                   "rate_limited")

    elsewhere = identity_app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    answer = second_step(elsewhere, mfa_token_for(AuthActions(elsewhere, auth.outbox), ada.email),
                         code_at(ada.secret, clock.now))

    assert answer.status_code == 200, answer.get_json()


# --- password reset keeps 2FA -------------------------------------------------------------------------------------


def test_a_password_reset_does_not_turn_2fa_off(client, auth, clock, outbox, ada):
    assert client.post("/v1/password-resets", json={"email": ada.email}).status_code == 202
    token = token_from_url(outbox.last("identity.password_reset.requested", ada.email)["data"]["reset_url"])
    new_password = "a brand new passphrase"
    assert client.post("/v1/password-resets/confirm",
                       json={"token": token, "new_password": new_password}).status_code == 204

    answer = auth.sign_in(ada.email, new_password)

    assert answer.status_code == 200 and answer.json["mfa_required"] is True, answer.json
    assert "access_token" not in answer.json
    assert outbox.events("identity.mfa.disabled") == []
    pair = second_step(client, answer.json["mfa_token"], code_at(ada.secret, clock.now)).json
    assert me(client, pair)["mfa_enabled"] is True
    # the sessions from before the reset are gone
    assert_problem(client.post("/v1/tokens/refresh", json={"refresh_token": ada.tokens["refresh_token"]}), 401,
                   "token_invalid")


def test_a_password_change_does_not_turn_2fa_off(client, auth, clock, ada):
    response = client.post("/v1/me/password", json={"current_password": PASSWORD,
                                                    "new_password": "a brand new passphrase"},
                           headers=bearer(ada.tokens))
    assert response.status_code == 204, response.json

    assert mfa_token_for(auth, ada.email, "a brand new passphrase")
