"""Signing-key rotation through the operator's command (`python -m services.identity rotate-key`).

The command runs as a real subprocess against the test's database; the identity app sees the new key
when it re-reads the key set (every SIGNING_KEY_RELOAD_INTERVAL seconds of the app's clock: the tests
advance it past the interval). Activation and retirement are driven by the same clock (`clock.advance`).
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.jwt import MAX_LEEWAY, JwksClient, Verifier
from support import ROOT
from tests.conftest import bearer, identity_env

pytestmark = pytest.mark.live  # the rotate-key and migrate commands run as processes
ACCESS_TOKEN_TTL = 900
RELOAD_INTERVAL = 1
ROTATED = re.compile(r"^added signing key (?P<kid>[A-Za-z0-9_-]+); it signs from (?P<at>\S+)$")


@pytest.fixture
def identity_app(make_identity_app):
    """Identity re-reading its key set every second, so a rotation shows up without a restart."""
    return make_identity_app(SIGNING_KEY_RELOAD_INTERVAL=RELOAD_INTERVAL, ACCESS_TOKEN_TTL=ACCESS_TOKEN_TTL)


def reload_due(clock) -> None:
    """Move the app's clock just past the reload interval: its next request re-reads the key set."""
    clock.advance(RELOAD_INTERVAL + 0.2)


def run_identity_cli(database_url: str, var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "APP_ENV": "test", "IDENTITY_DATABASE_URL": database_url,
           "VAR_DIR": str(var_dir), "BROKER_URL": "memory://"}
    return subprocess.run([sys.executable, "-m", "services.identity", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def rotate_key(database_url: str, var_dir: Path, *args: str) -> tuple[str, datetime]:
    result = run_identity_cli(database_url, var_dir, "rotate-key", *args)
    assert result.returncode == 0, result.stderr
    match = ROTATED.match(result.stdout.strip())
    assert match, result.stdout
    return match["kid"], datetime.fromisoformat(match["at"])


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def published_kids(client) -> list[str]:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json["keys"]
    for key in keys:
        assert "d" not in key, "a private key half is published"
        assert key["kty"] == "EC" and key["alg"] == "ES256" and key["use"] == "sig"
    return [key["kid"] for key in keys]


def wait_until(condition, timeout: float = 15, interval: float = 0.05):
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def advance_to(clock, moment: datetime, plus: float = 0) -> None:
    """Move the app's clock forward to `plus` seconds after `moment` (never backwards)."""
    clock.advance(max(0.0, (moment - clock.now).total_seconds() + plus))


def test_a_rotated_key_is_published_at_once_but_signs_only_after_activation(auth, client, clock, identity_db,
                                                                             tmp_path):
    account, before = auth.verified_account()
    old_kid = kid_of(before["access_token"])
    assert published_kids(client) == [old_kid]

    new_kid, activates_at = rotate_key(identity_db, tmp_path)
    assert new_kid != old_kid
    reload_due(clock)
    wait_until(lambda: new_kid in published_kids(client))
    assert published_kids(client) == [old_kid, new_kid]

    # Published but not yet signing: sign-in and refresh still use the old key.
    during = auth.sign_in(account["email"]).json
    assert kid_of(during["access_token"]) == old_kid
    refreshed = client.post("/v1/tokens/refresh", json={"refresh_token": during["refresh_token"]})
    assert refreshed.status_code == 200
    assert kid_of(refreshed.json["access_token"]) == old_kid
    advance_to(clock, activates_at, -1)
    assert kid_of(auth.sign_in(account["email"]).json["access_token"]) == old_kid

    # Activation: new tokens carry the new kid; tokens signed with the old key still verify.
    advance_to(clock, activates_at, 1)
    after = auth.sign_in(account["email"]).json
    assert kid_of(after["access_token"]) == new_kid
    assert client.get("/v1/me", headers=bearer(after)).status_code == 200
    assert client.get("/v1/me", headers=bearer(before)).status_code == 200
    assert published_kids(client) == [old_kid, new_kid]

    # The old key stays published until every token it signed has expired (TTL plus leeway) ...
    advance_to(clock, activates_at, ACCESS_TOKEN_TTL + MAX_LEEWAY - 1)
    assert published_kids(client) == [old_kid, new_kid]
    assert client.get("/v1/me", headers=bearer(before)).status_code == 200

    # ... and then leaves the key set; it no longer verifies anything.
    advance_to(clock, activates_at, ACCESS_TOKEN_TTL + MAX_LEEWAY + 1)
    assert published_kids(client) == [new_kid]
    assert client.get("/v1/me", headers=bearer(before)).status_code == 401
    assert client.get("/v1/me", headers=bearer(after)).status_code == 200
    assert kid_of(auth.sign_in(account["email"]).json["access_token"]) == new_kid


def test_the_default_activation_delay_is_three_minutes(identity_db, tmp_path):
    started = datetime.now(UTC)
    _kid, activates_at = rotate_key(identity_db, tmp_path)
    finished = datetime.now(UTC)

    assert 179 <= (activates_at - started).total_seconds() <= 181 + (finished - started).total_seconds()


def test_activate_in_zero_signs_at_once(auth, client, clock, identity_db, tmp_path):
    account, before = auth.verified_account()
    old_kid = kid_of(before["access_token"])

    new_kid, activates_at = rotate_key(identity_db, tmp_path, "--activate-in", "0")
    assert (activates_at - datetime.now(UTC)).total_seconds() <= 0
    advance_to(clock, activates_at)  # the test clock catches up with the real time of the rotation
    reload_due(clock)

    wait_until(lambda: kid_of(auth.sign_in(account["email"]).json["access_token"]) == new_kid, interval=0.2)
    assert published_kids(client) == [old_kid, new_kid]
    assert client.get("/v1/me", headers=bearer(before)).status_code == 200


def test_a_service_that_cached_the_old_key_set_accepts_tokens_of_the_new_key(auth, client, clock, identity_app,
                                                                             identity_db, tmp_path, live_server):
    server = live_server(identity_app)
    issuer = identity_app.extensions["threshold.identity"].settings.issuer
    jwks = JwksClient(f"{server.url}/.well-known/jwks.json", refetch_interval=1)
    verifier = Verifier(jwks.get, issuer=issuer, audience="threshold", clock=clock)  # the service shares the clock
    account, before = auth.verified_account()
    assert verifier.verify(before["access_token"])["sub"] == account["id"]

    new_kid, activates_at = rotate_key(identity_db, tmp_path)
    reload_due(clock)
    wait_until(lambda: new_kid in published_kids(client))
    advance_to(clock, activates_at, 1)
    after = auth.sign_in(account["email"]).json
    assert kid_of(after["access_token"]) == new_kid

    def accepted() -> bool:
        try:
            return verifier.verify(after["access_token"])["sub"] == account["id"]
        except Exception:
            return False

    wait_until(accepted, interval=0.2)
    assert verifier.verify(before["access_token"])["sub"] == account["id"]


def test_two_rotations_retire_keys_in_order(auth, client, clock, identity_db, tmp_path):
    account, _tokens = auth.verified_account()
    first = published_kids(client)[0]
    second, second_at = rotate_key(identity_db, tmp_path, "--activate-in", "0")
    advance_to(clock, second_at, 1)
    third, third_at = rotate_key(identity_db, tmp_path, "--activate-in", "3600")
    reload_due(clock)
    wait_until(lambda: third in published_kids(client))

    assert published_kids(client) == [first, second, third]
    assert kid_of(auth.sign_in(account["email"]).json["access_token"]) == second

    advance_to(clock, second_at, ACCESS_TOKEN_TTL + MAX_LEEWAY + 1)
    assert published_kids(client) == [second, third]
    advance_to(clock, third_at, 1)
    assert kid_of(auth.sign_in(account["email"]).json["access_token"]) == third
    assert published_kids(client) == [second, third]
    advance_to(clock, third_at, ACCESS_TOKEN_TTL + MAX_LEEWAY + 1)
    assert published_kids(client) == [third]


def test_migrate_creates_the_first_key_once(empty_identity_database, tmp_path, clock):
    from services.identity.app import create_app
    from services.identity.settings import Settings

    def jwks_kids() -> list[str]:
        app = create_app(Settings.from_env(identity_env(empty_identity_database, tmp_path)), clock=clock)
        try:
            return published_kids(app.test_client())
        finally:
            app.extensions["threshold.identity"].session_factory.kw["bind"].dispose()

    first = run_identity_cli(empty_identity_database, tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    kids = jwks_kids()
    assert len(kids) == 1

    again = run_identity_cli(empty_identity_database, tmp_path, "migrate")
    assert again.returncode == 0, again.stderr
    assert jwks_kids() == kids


def test_sign_in_and_refresh_work_when_a_key_reload_is_due(auth, client, clock):
    """The reload happens before the request, not inside sign-in's transaction (on SQLite that waited
    30 s on its own write lock and then failed with a 500)."""
    account, tokens = auth.verified_account()
    for _ in range(2):
        reload_due(clock)
        signed_in = auth.sign_in(account["email"])
        assert signed_in.status_code == 200, signed_in.json
        reload_due(clock)
        refreshed = client.post("/v1/tokens/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.json
        tokens = refreshed.json


def test_the_key_set_is_reloaded_on_the_apps_clock(client, clock, identity_db, tmp_path):
    """The reload interval is measured on the injected clock, like activation and retirement."""
    old_kids = published_kids(client)
    new_kid, _activates_at = rotate_key(identity_db, tmp_path)  # a subprocess: real time passes

    assert published_kids(client) == old_kids  # the app's clock stood still: no reload is due
    reload_due(clock)
    assert published_kids(client) == [*old_kids, new_kid]
