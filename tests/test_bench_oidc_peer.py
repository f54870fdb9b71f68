"""panva's oidc-provider as the benchmark peer (bench/peers/oidc_provider.py), configured as the bench needs it.

The peer runs as its own Node process on SQLite and on PostgreSQL; plain HTTP shows what the bench relies
on: client_credentials answers with an ES256 JWT access token, a refresh token from `refresh_tokens()`
rotates (the old one is then `invalid_grant`), and a code from `authorization_codes()` exchanges once
with its PKCE verifier. The packages are installed with npm under var/bench-peers/ the first time.
"""
from __future__ import annotations

import itertools
import os
import shutil

import psycopg
import pytest
import requests
from jose import jwt

from bench.peers import oidc_provider
from tests import backends

pytestmark = [pytest.mark.live, pytest.mark.slow]

_numbers = itertools.count()


@pytest.fixture(scope="module")
def installed() -> None:
    """Without node and npm: a skip, or a failure with CI=true. A failed npm ci fails the tests."""
    backends.require(shutil.which("node") and shutil.which("npm"), "node and npm (for oidc-provider)",
                     "are not installed")
    try:
        oidc_provider.install()
    except oidc_provider.PeerUnavailable as failed:
        pytest.fail(str(failed))


@pytest.fixture
def peer(installed, backend, tmp_path):
    if backend == "sqlite":
        with oidc_provider.OidcProvider(tmp_path, "sqlite", None, 0, None) as running:
            yield running
        return
    admin_url = backends.POSTGRES_ADMIN_URL.replace("+psycopg", "")
    name = f"oidc_peer_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        with oidc_provider.OidcProvider(tmp_path, "postgresql", f"{admin_url.rsplit('/', 1)[0]}/{name}", 0,
                                        None) as running:
            yield running
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def token(peer, secret: str | None = None, **form) -> requests.Response:
    return requests.post(f"{peer.url}{peer.token_path}", data=form, timeout=10,
                         auth=(peer.client_id, peer.client_secret if secret is None else secret))


def verified(peer, access_token: str) -> dict:
    """The claims of an access token, once its ES256 signature checks out against the peer's JWKS."""
    assert jwt.get_unverified_header(access_token)["typ"] == "at+jwt"
    keys = requests.get(f"{peer.url}/jwks", timeout=10).json()
    return jwt.decode(access_token, keys, algorithms=["ES256"], audience="https://api.threshold.test/",
                      issuer=peer.url)


def test_client_credentials_give_an_es256_jwt_access_token(peer):
    answer = token(peer, grant_type="client_credentials")
    wrong_secret = token(peer, secret="not-the-secret", grant_type="client_credentials")

    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"
    assert "refresh_token" not in answer.json()
    assert verified(peer, answer.json()["access_token"])["client_id"] == peer.client_id
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"


def test_a_refresh_token_rotates_and_the_old_one_is_refused(peer):
    first, other = peer.refresh_tokens(2)

    rotated = token(peer, grant_type="refresh_token", refresh_token=first)
    reused = token(peer, grant_type="refresh_token", refresh_token=first)
    successor = token(peer, grant_type="refresh_token", refresh_token=rotated.json().get("refresh_token"))
    untouched = token(peer, grant_type="refresh_token", refresh_token=other)

    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] not in (first, other)
    assert verified(peer, rotated.json()["access_token"])["client_id"] == peer.client_id
    assert rotated.json()["id_token"].count(".") == 2
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert successor.status_code == 400  # reuse ends the grant, as Threshold's does
    assert successor.json()["error"] == "invalid_grant"
    assert untouched.status_code == 200, untouched.text  # another grant's token is not affected


def test_a_code_exchanges_once_with_its_verifier(peer):
    (code, verifier), (other_code, _) = peer.authorization_codes(2)

    wrong_verifier = token(peer, grant_type="authorization_code", code=other_code, code_verifier=verifier,
                           redirect_uri=peer.redirect_uri)
    exchanged = token(peer, grant_type="authorization_code", code=code, code_verifier=verifier,
                      redirect_uri=peer.redirect_uri)
    again = token(peer, grant_type="authorization_code", code=code, code_verifier=verifier,
                  redirect_uri=peer.redirect_uri)

    assert wrong_verifier.status_code == 400
    assert wrong_verifier.json()["error"] == "invalid_grant"
    assert exchanged.status_code == 200, exchanged.text
    assert set(exchanged.json()) >= {"access_token", "id_token", "refresh_token"}
    assert verified(peer, exchanged.json()["access_token"])["sub"].startswith("bench-account-")
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
