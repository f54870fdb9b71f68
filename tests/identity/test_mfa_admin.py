"""The operator's side of 2FA, through the real CLI in a subprocess on this test's database:
`python -m services.identity mfa-reset EMAIL --actor X --reason Y` (support path for a lost phone: 2FA off,
an audit record, the owner mailed) and `python -m services.identity rotate-totp-key` (re-encrypt the TOTP
secrets with the first TOTP_ENCRYPTION_KEYS key), and the refusal of the development key in production.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet, InvalidToken
from jose import jwt

from services.identity.settings import DEVELOPMENT_TOTP_KEY
from services.notifier.messages import Renderer
from support import ROOT
from tests.conftest import AuthActions, assert_problem, bearer, identity_env
from tests.identity.test_totp import (
    KEY_A,
    KEY_B,
    STEP,
    code_at,
    enable_mfa,
    me,
    mfa_token_for,
    query,
    second_step,
    start_enrolment,
    stored_secret,
)

pytestmark = pytest.mark.live  # the mfa-reset and rotate-totp-key commands run as processes
TIMEOUT = 120
PRODUCTION_SECRET = "a-real-production-secret-of-at-least-32-characters"
KEY_C = base64.urlsafe_b64encode(b"key_c-test-key".ljust(32, b".")).decode()  # fixed: test ids must not vary
DISABLED = "identity.mfa.disabled"


@pytest.fixture
def cli(identity_db, tmp_path):
    """Run `python -m services.identity ARGS` on this test's database; keyword arguments set env vars."""

    def run(*args: str, **env_vars: str) -> subprocess.CompletedProcess:
        env = {key: value for key, value in os.environ.items() if key not in ("TOTP_ENCRYPTION_KEYS", "APP_ENV")}
        env.update(identity_env(identity_db, tmp_path, **env_vars))
        return subprocess.run([sys.executable, "-m", "services.identity", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)

    return run


def audit_records(identity_db: str) -> list:
    return query(identity_db, "SELECT actor, action, account_id, detail, at FROM audit_records")


# --- mfa-reset ------------------------------------------------------------------------------------------------


def test_mfa_reset_turns_2fa_off_keeps_an_audit_record_and_mails_the_owner(client, auth, clock, outbox, identity_db,
                                                                           cli):
    user = enable_mfa(auth, clock, "ada@example.com")

    result = cli("mfa-reset", "  ADA@Example.com ", "--actor", "support:alice", "--reason", "ticket 4711, lost phone")

    assert result.returncode == 0, result.stderr
    assert user.id in result.stdout
    assert "Traceback" not in result.stderr
    [(actor, action, account_id, detail, at)] = audit_records(identity_db)
    assert (actor, action, account_id, detail) == ("support:alice", "mfa.reset", user.id, "ticket 4711, lost phone")
    assert at is not None
    assert query(identity_db, "SELECT account_id FROM totp_credentials") == []
    assert query(identity_db, "SELECT code_hash FROM recovery_codes") == []
    [event] = outbox.events(DISABLED)
    assert event["data"] == {"account_id": user.id, "email": "ada@example.com"}
    mail = Renderer("Threshold <no-reply@threshold.test>").render(event).message
    assert mail["To"] == "ada@example.com"
    assert mail["Subject"] == "Two-factor authentication was turned off"
    assert "turned off for your account ada@example.com" in mail.get_body(("plain",)).get_content()
    # the owner signs in with the password alone and may enrol a new phone
    assert me(client, user.tokens)["mfa_enabled"] is False
    pair = auth.sign_in("ada@example.com").json
    assert "mfa_required" not in pair and jwt.get_unverified_claims(pair["access_token"])["amr"] == ["pwd"]
    assert start_enrolment(client, pair).status_code == 201


def test_mfa_reset_voids_pending_mfa_tokens_and_recovery_codes(client, auth, clock, cli):
    user = enable_mfa(auth, clock)
    token = mfa_token_for(auth, user.email)

    assert cli("mfa-reset", user.email, "--actor", "support:bob", "--reason", "r").returncode == 0

    # with 2FA off, no code (TOTP or recovery) completes a pending second step any more
    assert_problem(second_step(client, token, code_at(user.secret, clock.now)), 401, "invalid_code")
    assert_problem(second_step(client, token, user.recovery_codes[0]), 401, "invalid_code")


def test_mfa_reset_of_an_unknown_address_fails_and_changes_nothing(auth, clock, outbox, identity_db, cli):
    enable_mfa(auth, clock, "ada@example.com")

    result = cli("mfa-reset", "nobody@example.com", "--actor", "support:alice", "--reason", "ticket 1")

    assert result.returncode == 1
    assert "nobody@example.com" in result.stderr and "Traceback" not in result.stderr
    assert audit_records(identity_db) == []
    assert outbox.events(DISABLED) == []
    assert len(query(identity_db, "SELECT account_id FROM totp_credentials")) == 1


def test_mfa_reset_of_an_account_without_2fa_fails_and_changes_nothing(auth, outbox, identity_db, cli):
    auth.verified_account("bob@example.com")

    result = cli("mfa-reset", "bob@example.com", "--actor", "support:alice", "--reason", "ticket 2")

    assert result.returncode == 1
    assert "not on" in result.stderr and "Traceback" not in result.stderr
    assert audit_records(identity_db) == []
    assert outbox.events(DISABLED) == []


@pytest.mark.parametrize("args", [("--actor", "support:alice"), ("--reason", "ticket 3"), ()],
                         ids=["no reason", "no actor", "neither"])
def test_mfa_reset_needs_an_actor_and_a_reason(client, auth, clock, outbox, identity_db, cli, args):
    user = enable_mfa(auth, clock)

    result = cli("mfa-reset", user.email, *args)

    assert result.returncode == 2
    assert "required" in result.stderr
    assert audit_records(identity_db) == []
    assert outbox.events(DISABLED) == []
    assert me(client, user.tokens)["mfa_enabled"] is True


# --- rotate-totp-key ------------------------------------------------------------------------------------------


def test_rotating_the_totp_key(make_identity_app, outbox, clock, identity_db, cli):
    old_app = AuthActions(make_identity_app(TOTP_ENCRYPTION_KEYS=KEY_A).test_client(), outbox)
    user = enable_mfa(old_app, clock, "ada@example.com")
    pending, pending_tokens = old_app.verified_account("bob@example.com")  # enrolment started, not confirmed
    pending_secret = start_enrolment(old_app.client, pending_tokens).json["secret"]

    # 1. the new key first, the old one still listed: secrets written with the old key still verify
    both = AuthActions(make_identity_app(TOTP_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}").test_client(), outbox)
    assert second_step(both.client, mfa_token_for(both, user.email), code_at(user.secret, clock.now)).status_code == 200
    assert Fernet(KEY_A).decrypt(stored_secret(identity_db, user.id).encode()).decode() == user.secret

    # 2. re-encrypt everything with the new key
    result = cli("rotate-totp-key", TOTP_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}")

    assert result.returncode == 0, result.stderr
    assert "re-encrypted 2 TOTP secret(s)" in result.stdout
    for account_id, secret in ((user.id, user.secret), (pending["id"], pending_secret)):
        stored = stored_secret(identity_db, account_id)
        assert secret not in stored
        assert Fernet(KEY_B).decrypt(stored.encode()).decode() == secret
        with pytest.raises(InvalidToken):
            Fernet(KEY_A).decrypt(stored.encode())

    # 3. the old key can go: the new one alone verifies, also the pending enrolment's confirmation
    clock.advance(STEP)
    new_only = AuthActions(make_identity_app(TOTP_ENCRYPTION_KEYS=KEY_B).test_client(), outbox)
    assert second_step(new_only.client, mfa_token_for(new_only, user.email),
                       code_at(user.secret, clock.now)).status_code == 200
    confirmed = new_only.client.post("/v1/me/mfa/totp/confirm", json={"code": code_at(pending_secret, clock.now)},
                                     headers=bearer(pending_tokens))
    assert confirmed.status_code == 200, confirmed.json
    # and the old key alone no longer can
    clock.advance(STEP)
    old_only = AuthActions(make_identity_app(TOTP_ENCRYPTION_KEYS=KEY_A).test_client(), outbox)
    assert_problem(second_step(old_only.client, mfa_token_for(old_only, user.email), code_at(user.secret, clock.now)),
                   503, "mfa_unavailable")


def test_rotating_with_no_secrets_is_fine(cli):
    result = cli("rotate-totp-key", TOTP_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}")

    assert result.returncode == 0, result.stderr
    assert "re-encrypted 0 TOTP secret(s)" in result.stdout


def test_rotating_without_the_old_key_fails_clearly_and_rewrites_nothing(make_identity_app, outbox, clock,
                                                                         identity_db, cli):
    with_a = AuthActions(make_identity_app(TOTP_ENCRYPTION_KEYS=KEY_A).test_client(), outbox)
    ada = enable_mfa(with_a, clock, "ada@example.com")
    with_b = AuthActions(make_identity_app(TOTP_ENCRYPTION_KEYS=KEY_B).test_client(), outbox)
    bob = enable_mfa(with_b, clock, "bob@example.com")
    before = {user.id: stored_secret(identity_db, user.id) for user in (ada, bob)}

    result = cli("rotate-totp-key", TOTP_ENCRYPTION_KEYS=f"{KEY_C},{KEY_A}")  # KEY_B, which bob needs, is missing

    assert result.returncode != 0
    assert "TOTP_ENCRYPTION_KEYS" in result.stderr and "Traceback" not in result.stderr
    assert {user.id: stored_secret(identity_db, user.id) for user in (ada, bob)} == before  # all or nothing


# --- configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("rotate-totp-key",), ("mfa-reset", "ada@example.com", "--actor", "a",
                                                              "--reason", "r")], ids=["rotate-totp-key", "mfa-reset"])
@pytest.mark.parametrize("keys", [None, DEVELOPMENT_TOTP_KEY, f"{KEY_A},{DEVELOPMENT_TOTP_KEY}"],
                         ids=["unset", "the development key", "the development key among others"])
def test_production_refuses_the_development_totp_key(auth, clock, outbox, identity_db, cli, command, keys):
    user = enable_mfa(auth, clock, "ada@example.com")
    env = {"APP_ENV": "production", "SECRET_KEY": PRODUCTION_SECRET}
    if keys is not None:
        env["TOTP_ENCRYPTION_KEYS"] = keys

    result = cli(*command, **env)

    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("threshold: configuration error: TOTP_ENCRYPTION_KEYS:"), lines
    assert DEVELOPMENT_TOTP_KEY not in result.stderr
    assert result.stdout.strip() == ""
    assert stored_secret(identity_db, user.id) and audit_records(identity_db) == []
    assert outbox.events(DISABLED) == []


def test_production_accepts_real_totp_keys(cli):
    result = cli("rotate-totp-key", APP_ENV="production", SECRET_KEY=PRODUCTION_SECRET,
                 TOTP_ENCRYPTION_KEYS=f"{KEY_A},{KEY_B}")

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("keys", ["not-a-fernet-key", f"{KEY_A},short", f"{KEY_A},{KEY_A[:-2]}"])
def test_a_malformed_totp_key_is_a_configuration_error(cli, keys):
    result = cli("rotate-totp-key", TOTP_ENCRYPTION_KEYS=keys)

    assert result.returncode == 2
    assert "TOTP_ENCRYPTION_KEYS:" in result.stderr and "Traceback" not in result.stderr
    assert keys.split(",")[-1] not in result.stderr  # the key itself is never echoed
