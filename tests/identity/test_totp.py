"""TOTP 2FA for the signed-in account: enrolment, confirmation, recovery codes, turning it off, the security
notices, and the secret at rest (encrypted with TOTP_ENCRYPTION_KEYS, unreadable without them).

Time is the app's clock (`clock`): codes are made with pyotp at `clock.now`, and a new time step is
`clock.advance(30)`, never a sleep. The helpers at the top are shared with test_mfa_sign_in.py and
test_mfa_admin.py.
"""
from __future__ import annotations

import base64
import logging
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
import qrcode
from cryptography.fernet import Fernet, InvalidToken
from jose import jwt
from sqlalchemy import MetaData, create_engine, select, text

from services.notifier.messages import Renderer
from tests.conftest import AuthActions, assert_problem, bearer

PASSWORD = AuthActions.PASSWORD
STEP = 30
ENABLED = "identity.mfa.enabled"
DISABLED = "identity.mfa.disabled"
KEY_A = base64.urlsafe_b64encode(b"key_a-test-key".ljust(32, b".")).decode()  # fixed: test ids must not vary
KEY_B = base64.urlsafe_b64encode(b"key_b-test-key".ljust(32, b".")).decode()  # fixed: test ids must not vary


# --- helpers shared by the MFA test modules -----------------------------------------------------------------


def code_at(secret: str, moment) -> str:
    """The authenticator app's code at `moment` (a datetime of the app's clock)."""
    return pyotp.TOTP(secret).at(moment)


def start_enrolment(client, tokens: dict, password: str = PASSWORD):
    return client.post("/v1/me/mfa/totp", json={"password": password}, headers=bearer(tokens))


def confirm(client, tokens: dict, code: str):
    return client.post("/v1/me/mfa/totp/confirm", json={"code": code}, headers=bearer(tokens))


def disable(client, tokens: dict, code: str):
    return client.post("/v1/me/mfa/totp/disable", json={"code": code}, headers=bearer(tokens))


def regenerate(client, tokens: dict, code: str):
    return client.post("/v1/me/mfa/recovery-codes", json={"code": code}, headers=bearer(tokens))


def second_step(client, mfa_token: str, code: str):
    return client.post("/v1/sessions/mfa", json={"mfa_token": mfa_token, "code": code})


def me(client, tokens: dict) -> dict:
    response = client.get("/v1/me", headers=bearer(tokens))
    assert response.status_code == 200, response.json
    return response.json


@dataclass
class MfaUser:
    account: dict
    tokens: dict
    secret: str
    recovery_codes: list[str]

    @property
    def email(self) -> str:
        return self.account["email"]

    @property
    def id(self) -> str:
        return self.account["id"]


def enable_mfa(auth: AuthActions, clock, email: str | None = None) -> MfaUser:
    """A verified account with 2FA on. The clock is then one step further, so the confirming code is spent
    and `code_at(user.secret, clock.now)` is a fresh code."""
    account, tokens = auth.verified_account(email)
    response = start_enrolment(auth.client, tokens)
    assert response.status_code == 201, response.json
    secret = response.json["secret"]
    response = confirm(auth.client, tokens, code_at(secret, clock.now))
    assert response.status_code == 200, response.json
    clock.advance(STEP)
    return MfaUser(account, tokens, secret, response.json["recovery_codes"])


def mfa_token_for(auth: AuthActions, email: str, password: str = PASSWORD) -> str:
    """The password step of a 2FA account: returns its mfa_token."""
    response = auth.sign_in(email, password)
    assert response.status_code == 200, response.json
    assert response.json["mfa_required"] is True, response.json
    return response.json["mfa_token"]


def database_dump(database_url: str) -> str:
    """Every row of every table of the database, as text (to look for secrets that must not be there)."""
    engine = create_engine(database_url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            rows = [row for table in metadata.sorted_tables for row in conn.execute(select(table))]
        return "\n".join(repr(tuple(row)) for row in rows)
    finally:
        engine.dispose()


def query(database_url: str, sql: str, **params) -> list:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def stored_secret(database_url: str, account_id: str) -> str:
    rows = query(database_url, "SELECT secret_encrypted FROM totp_credentials WHERE account_id = :id", id=account_id)
    assert len(rows) == 1, rows
    return rows[0][0]


# --- enrolment ----------------------------------------------------------------------------------------------


def test_enrolment_returns_a_160_bit_secret_its_otpauth_uri_and_a_qr_code(client, auth):
    account, tokens = auth.verified_account("ada@example.com")

    response = start_enrolment(client, tokens)

    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    secret = body["secret"]
    assert len(base64.b32decode(secret)) == 20  # 160 bits (RFC 4226's recommended length)
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/Threshold:ada@example.com"
    query_params = {key: values[0] for key, values in parse_qs(uri.query).items()}
    assert query_params["secret"] == secret
    assert query_params["issuer"] == "Threshold"
    assert query_params.get("digits", "6") == "6" and query_params.get("period", "30") == "30"
    assert query_params.get("algorithm", "SHA1").upper() == "SHA1"


def qr_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules of a qrcode SvgPathImage (one `Mx,y...z` square per module), moved to the origin."""
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    paths = [element.get("d") for element in root.iter() if element.tag.endswith("path")]
    cells = {(int(x), int(y)) for d in paths for x, y in re.findall(r"M(\d+),(\d+)", d)}
    left, top = min(x for x, _ in cells), min(y for _, y in cells)
    return {(x - left, y - top) for x, y in cells}


def test_the_qr_code_is_an_inline_svg_of_the_otpauth_uri(client, auth):
    _, tokens = auth.verified_account()

    body = start_enrolment(client, tokens).json

    assert body["qr_svg"].lstrip().startswith(("<?xml", "<svg"))
    expected = qrcode.QRCode(border=0)
    expected.add_data(body["otpauth_uri"])
    expected.make(fit=True)
    matrix = expected.get_matrix()
    dark = {(x, y) for y, row in enumerate(matrix) for x, on in enumerate(row) if on}
    assert qr_modules(body["qr_svg"]) == dark


def test_the_issuer_name_is_configurable(make_identity_app, outbox):
    auth = AuthActions(make_identity_app(MFA_ISSUER_NAME="Acme Corp").test_client(), outbox)
    _, tokens = auth.verified_account("ada@example.com")

    uri = start_enrolment(auth.client, tokens).json["otpauth_uri"]

    assert unquote(urlsplit(uri).path) == "/Acme Corp:ada@example.com"
    assert parse_qs(urlsplit(uri).query)["issuer"] == ["Acme Corp"]


def test_each_enrolment_gets_a_new_secret(client, auth):
    _, tokens = auth.verified_account()

    secrets = {start_enrolment(client, tokens).json["secret"] for _ in range(3)}

    assert len(secrets) == 3


def test_enrolment_needs_the_password_again(client, auth, identity_db):
    account, tokens = auth.verified_account()

    assert_problem(start_enrolment(client, tokens, "not the password"), 401, "invalid_credentials")
    assert_problem(client.post("/v1/me/mfa/totp", json={}, headers=bearer(tokens)), 422, "validation_failed")
    assert query(identity_db, "SELECT account_id FROM totp_credentials") == []


def test_wrong_passwords_at_enrolment_are_throttled_like_sign_in(client, auth):
    _, tokens = auth.verified_account()
    for _ in range(5):  # SIGN_IN_FREE_FAILURES
        assert_problem(start_enrolment(client, tokens, "not the password"), 401, "invalid_credentials")

    response = start_enrolment(client, tokens)  # even the right password, while blocked

    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0


def test_the_mfa_routes_need_a_bearer_token(client):
    for path, body in [("/v1/me/mfa/totp", {"password": PASSWORD}),
                       ("/v1/me/mfa/totp/confirm", {"code": "123456"}),
                       ("/v1/me/mfa/totp/disable", {"code": "123456"}),
                       ("/v1/me/mfa/recovery-codes", {"code": "123456"})]:
        response = client.post(path, json=body)
        assert_problem(response, 401, "invalid_token")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unconfirmed_enrolment_does_not_turn_2fa_on(client, auth, outbox):
    account, tokens = auth.verified_account("ada@example.com")

    start_enrolment(client, tokens)

    assert me(client, tokens)["mfa_enabled"] is False
    response = auth.sign_in("ada@example.com")
    assert response.status_code == 200 and "access_token" in response.json and "mfa_required" not in response.json
    assert outbox.events(ENABLED) == []


def test_confirm_before_enrolment_is_a_conflict(client, auth):
    _, tokens = auth.verified_account()

    assert_problem(confirm(client, tokens, "123456"), 409, "mfa_enrolment_not_started")


def test_a_wrong_code_does_not_confirm(client, auth, clock, outbox):
    _, tokens = auth.verified_account()
    secret = start_enrolment(client, tokens).json["secret"]
    right = code_at(secret, clock.now)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    for code in (wrong, code_at(secret, clock.now.replace(year=clock.now.year - 1)), "abcdef", "12345"):
        assert_problem(confirm(client, tokens, code), 401, "invalid_code")

    assert me(client, tokens)["mfa_enabled"] is False
    assert outbox.events(ENABLED) == []


def test_a_code_of_another_secret_does_not_confirm(client, auth, clock):
    _, tokens = auth.verified_account()
    start_enrolment(client, tokens)

    assert_problem(confirm(client, tokens, code_at(pyotp.random_base32(32), clock.now)), 401, "invalid_code")


def test_a_new_enrolment_replaces_the_pending_secret(client, auth, clock):
    _, tokens = auth.verified_account()
    first = start_enrolment(client, tokens).json["secret"]
    second = start_enrolment(client, tokens).json["secret"]

    assert_problem(confirm(client, tokens, code_at(first, clock.now)), 401, "invalid_code")
    assert confirm(client, tokens, code_at(second, clock.now)).status_code == 200


def test_confirming_turns_2fa_on_returns_ten_recovery_codes_and_emits_the_event(client, auth, clock, outbox):
    account, tokens = auth.verified_account("ada@example.com")
    secret = start_enrolment(client, tokens).json["secret"]

    response = confirm(client, tokens, code_at(secret, clock.now))

    assert response.status_code == 200, response.json
    codes = response.json["recovery_codes"]
    assert set(response.json) == {"recovery_codes"}
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(isinstance(code, str) and len(code.replace("-", "")) >= 10 for code in codes)
    assert me(client, tokens)["mfa_enabled"] is True
    events = outbox.events(ENABLED)
    assert len(events) == 1
    assert events[0]["data"] == {"account_id": account["id"], "email": "ada@example.com"}
    assert events[0]["specversion"] == "1.0" and events[0]["id"]


def test_confirm_accepts_the_code_of_the_step_before_and_after(client, auth, clock):
    for offset in (-STEP, STEP):
        _, tokens = auth.verified_account()
        secret = start_enrolment(client, tokens).json["secret"]

        response = confirm(client, tokens, code_at(secret, clock.now + timedelta(seconds=offset)))

        assert response.status_code == 200, (offset, response.json)


def test_once_on_enrolment_and_confirmation_are_conflicts(client, auth, clock):
    user = enable_mfa(auth, clock)

    assert_problem(start_enrolment(client, user.tokens), 409, "mfa_already_enabled")
    assert_problem(confirm(client, user.tokens, code_at(user.secret, clock.now)), 409, "mfa_already_enabled")
    # the secret was not replaced: the authenticator still signs in
    token = mfa_token_for(auth, user.email)
    assert second_step(client, token, code_at(user.secret, clock.now)).status_code == 200


# --- recovery codes -----------------------------------------------------------------------------------------


def test_recovery_codes_are_stored_hashed_only(auth, clock, identity_db):
    user = enable_mfa(auth, clock)

    rows = query(identity_db, "SELECT code_hash, used_at FROM recovery_codes WHERE account_id = :id", id=user.id)
    assert len(rows) == 10
    assert all(used_at is None for _, used_at in rows)
    dump = database_dump(identity_db)
    for code in user.recovery_codes:
        for form in (code, code.replace("-", ""), code.upper()):
            assert form not in dump


def test_recovery_codes_are_shown_once(client, auth, clock):
    user = enable_mfa(auth, clock)

    assert not any(code in client.get("/v1/me", headers=bearer(user.tokens)).get_data(as_text=True)
                   for code in user.recovery_codes)
    assert client.get("/v1/me/mfa/recovery-codes", headers=bearer(user.tokens)).status_code == 405


def test_regenerating_recovery_codes_needs_a_totp_code_and_voids_the_old_ones(client, auth, clock):
    user = enable_mfa(auth, clock)

    response = regenerate(client, user.tokens, code_at(user.secret, clock.now))

    assert response.status_code == 200, response.json
    new_codes = response.json["recovery_codes"]
    assert len(new_codes) == 10 and len(set(new_codes)) == 10 and not set(new_codes) & set(user.recovery_codes)
    assert_problem(second_step(client, mfa_token_for(auth, user.email), user.recovery_codes[0]), 401, "invalid_code")
    assert second_step(client, mfa_token_for(auth, user.email), new_codes[0]).status_code == 200


def test_regenerating_with_a_wrong_or_recovery_code_is_refused_and_keeps_the_codes(client, auth, clock):
    user = enable_mfa(auth, clock)
    right = code_at(user.secret, clock.now)

    assert_problem(regenerate(client, user.tokens, f"{(int(right) + 1) % 1_000_000:06d}"), 401, "invalid_code")
    assert_problem(regenerate(client, user.tokens, user.recovery_codes[0]), 401, "invalid_code")

    # the old codes still work, including the one offered above (it was not spent)
    assert second_step(client, mfa_token_for(auth, user.email), user.recovery_codes[0]).status_code == 200


def test_regenerating_without_2fa_is_a_conflict(client, auth):
    _, tokens = auth.verified_account()

    assert_problem(regenerate(client, tokens, "123456"), 409, "mfa_not_enabled")


def test_regenerating_with_a_replayed_code_is_refused(client, auth, clock):
    user = enable_mfa(auth, clock)
    code = code_at(user.secret, clock.now)
    assert regenerate(client, user.tokens, code).status_code == 200

    assert_problem(regenerate(client, user.tokens, code), 401, "invalid_code")


# --- turning 2FA off ----------------------------------------------------------------------------------------


def test_disable_with_a_totp_code(client, auth, clock, outbox, identity_db):
    user = enable_mfa(auth, clock, "ada@example.com")

    response = disable(client, user.tokens, code_at(user.secret, clock.now))

    assert response.status_code == 204
    assert me(client, user.tokens)["mfa_enabled"] is False
    events = outbox.events(DISABLED)
    assert len(events) == 1 and events[0]["data"] == {"account_id": user.id, "email": "ada@example.com"}
    assert query(identity_db, "SELECT account_id FROM totp_credentials") == []
    assert query(identity_db, "SELECT code_hash FROM recovery_codes") == []
    pair = auth.sign_in("ada@example.com").json
    assert "mfa_required" not in pair
    assert jwt.get_unverified_claims(pair["access_token"])["amr"] == ["pwd"]


def test_disable_with_a_recovery_code(client, auth, clock, outbox):
    user = enable_mfa(auth, clock)

    assert disable(client, user.tokens, user.recovery_codes[3]).status_code == 204

    assert me(client, user.tokens)["mfa_enabled"] is False
    assert len(outbox.events(DISABLED)) == 1


def test_disable_with_a_wrong_used_or_replayed_code_keeps_2fa_on(client, auth, clock, outbox):
    user = enable_mfa(auth, clock)
    right = code_at(user.secret, clock.now)
    token = mfa_token_for(auth, user.email)
    assert second_step(client, token, right).status_code == 200  # spends this step's code
    assert second_step(client, mfa_token_for(auth, user.email), user.recovery_codes[0]).status_code == 200

    for code in (f"{(int(right) + 1) % 1_000_000:06d}", right, user.recovery_codes[0], "not-a-code", "aaaa-bbbb-cccc"):
        assert_problem(disable(client, user.tokens, code), 401, "invalid_code")

    assert me(client, user.tokens)["mfa_enabled"] is True
    assert outbox.events(DISABLED) == []


def disable_with_password(client, tokens: dict, password: str = PASSWORD):
    return client.post("/v1/me/mfa/totp/disable", json={"password": password}, headers=bearer(tokens))


def test_disable_with_the_password(client, auth, clock, outbox):
    user = enable_mfa(auth, clock, "ada@example.com")

    assert disable_with_password(client, user.tokens).status_code == 204

    assert me(client, user.tokens)["mfa_enabled"] is False
    assert [e["data"] for e in outbox.events(DISABLED)] == [{"account_id": user.id, "email": "ada@example.com"}]
    assert "mfa_required" not in auth.sign_in("ada@example.com").json


def test_disable_takes_exactly_one_of_a_code_or_the_password(client, auth, clock, outbox):
    user = enable_mfa(auth, clock)
    for body in ({}, {"code": code_at(user.secret, clock.now), "password": PASSWORD}):
        response = client.post("/v1/me/mfa/totp/disable", json=body, headers=bearer(user.tokens))
        assert "code" in assert_problem(response, 422, "validation_failed")["errors"]
    assert_problem(disable_with_password(client, user.tokens, "not the password"), 401, "invalid_credentials")

    assert me(client, user.tokens)["mfa_enabled"] is True
    assert outbox.events(DISABLED) == []


def test_wrong_passwords_at_disable_are_throttled_like_sign_in(client, auth, clock):
    user = enable_mfa(auth, clock, "ada@example.com")
    for _ in range(5):  # SIGN_IN_FREE_FAILURES
        assert_problem(disable_with_password(client, user.tokens, "not the password"), 401, "invalid_credentials")

    assert_problem(disable_with_password(client, user.tokens), 429, "rate_limited")  # even the right one
    assert_problem(auth.sign_in("ada@example.com"), 429, "rate_limited")
    assert me(client, user.tokens)["mfa_enabled"] is True


def test_disable_without_2fa_is_a_conflict(client, auth):
    _, tokens = auth.verified_account()

    assert_problem(disable(client, tokens, "123456"), 409, "mfa_not_enabled")


def test_2fa_can_be_turned_on_again_with_a_new_secret(client, auth, clock, outbox):
    user = enable_mfa(auth, clock)
    assert disable(client, user.tokens, code_at(user.secret, clock.now)).status_code == 204
    clock.advance(STEP)

    secret = start_enrolment(client, user.tokens).json["secret"]
    assert secret != user.secret
    assert confirm(client, user.tokens, code_at(secret, clock.now)).status_code == 200

    assert me(client, user.tokens)["mfa_enabled"] is True
    assert len(outbox.events(ENABLED)) == 2
    # the old recovery codes died with the old enrolment
    clock.advance(STEP)
    assert_problem(second_step(client, mfa_token_for(auth, user.email), user.recovery_codes[0]), 401, "invalid_code")


# --- the security notice --------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["on", "off"])
def test_turning_2fa_on_or_off_mails_a_security_notice(client, auth, clock, outbox, state):
    user = enable_mfa(auth, clock, "ada@example.com")
    if state == "off":
        assert disable(client, user.tokens, code_at(user.secret, clock.now)).status_code == 204

    envelope = outbox.last(ENABLED if state == "on" else DISABLED, "ada@example.com")
    mail = Renderer("Threshold <no-reply@threshold.test>").render(envelope)

    message = mail.message
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == f"Two-factor authentication was turned {state}"
    text_part = message.get_body(("plain",)).get_content()
    html_part = message.get_body(("html",)).get_content()
    assert f"turned {state} for your account ada@example.com" in text_part
    assert "ada@example.com" in html_part and state in html_part


# --- the secret at rest ---------------------------------------------------------------------------------------


def test_the_secret_is_stored_encrypted_with_the_configured_key(make_identity_app, outbox, clock, identity_db):
    auth = AuthActions(make_identity_app(TOTP_ENCRYPTION_KEYS=KEY_A).test_client(), outbox)
    user = enable_mfa(auth, clock)

    stored = stored_secret(identity_db, user.id)
    dump = database_dump(identity_db)
    raw = base64.b32decode(user.secret)
    for form in (user.secret, user.secret.lower(), raw.hex(), base64.b64encode(raw).decode().rstrip("="),
                 base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        assert form not in dump
    assert Fernet(KEY_A).decrypt(stored.encode()).decode() == user.secret
    with pytest.raises(InvalidToken):
        Fernet(KEY_B).decrypt(stored.encode())


def test_the_development_key_is_used_when_none_is_configured_and_another_key_cannot_read(auth, clock, identity_db):
    from services.identity.settings import DEVELOPMENT_TOTP_KEY

    user = enable_mfa(auth, clock)

    stored = stored_secret(identity_db, user.id)
    assert user.secret not in stored
    assert Fernet(DEVELOPMENT_TOTP_KEY).decrypt(stored.encode()).decode() == user.secret
    with pytest.raises(InvalidToken):
        Fernet(KEY_A).decrypt(stored.encode())


def test_an_app_without_the_key_cannot_verify_codes_and_says_so(make_identity_app, outbox, clock, identity_db):
    """A misconfigured key is the server's fault: a clear 503, no 500, and it does not count against the
    user's code throttle or void the mfa_token. Recovery codes (hashed, not encrypted) still get the user in."""
    auth = AuthActions(make_identity_app(TOTP_ENCRYPTION_KEYS=KEY_A).test_client(), outbox)
    user = enable_mfa(auth, clock)
    wrong_key = AuthActions(make_identity_app(TOTP_ENCRYPTION_KEYS=KEY_B).test_client(), outbox)

    token = mfa_token_for(wrong_key, user.email)
    for _ in range(6):  # more than MFA_MAX_FAILURES and SIGN_IN_FREE_FAILURES
        body = assert_problem(second_step(wrong_key.client, token, code_at(user.secret, clock.now)), 503,
                              "mfa_unavailable")
        assert "recovery code" in body["detail"]
    assert_problem(disable(wrong_key.client, user.tokens, code_at(user.secret, clock.now)), 503, "mfa_unavailable")
    assert_problem(regenerate(wrong_key.client, user.tokens, code_at(user.secret, clock.now)), 503, "mfa_unavailable")

    assert second_step(wrong_key.client, token, user.recovery_codes[0]).status_code == 200
    # the right key still verifies the very code refused above: it was never spent
    assert second_step(auth.client, mfa_token_for(auth, user.email), code_at(user.secret, clock.now)).status_code == 200


def test_no_secret_code_or_token_reaches_the_logs(client, auth, clock, caplog):
    caplog.set_level(logging.DEBUG)
    user = enable_mfa(auth, clock)
    token = mfa_token_for(auth, user.email)
    wrong = f"{(int(code_at(user.secret, clock.now)) + 1) % 1_000_000:06d}"
    second_step(client, token, wrong)
    right = code_at(user.secret, clock.now)
    pair = second_step(client, token, right).json
    second_step(client, mfa_token_for(auth, user.email), user.recovery_codes[0])

    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert any("2FA" in record.getMessage() for record in caplog.records)  # the changes are logged
    for value in (user.secret, right, wrong, token, pair["access_token"], pair["refresh_token"], PASSWORD,
                  *user.recovery_codes):
        assert value not in logged
