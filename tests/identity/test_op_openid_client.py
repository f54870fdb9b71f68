"""panva's openid-client (npm, run by node) signs a person in through Threshold as its OpenID Provider,
against a live identity on loopback. Its node_modules go under var/ (never committed), installed here
from the registry by npm the first time."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from authlib.common.security import generate_token

from tests import backends
from tests.identity.op_support import RP, SHOP_SECRET, Person, Web

SOURCE = Path(__file__).parent / "openid_client"


@pytest.fixture(scope="session")
def openid_client() -> Path:
    backends.require(shutil.which("node") is not None and shutil.which("npm") is not None, "node and npm")
    workdir = backends.ROOT / "var" / "node" / "openid-client"
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "rp.mjs"):
        shutil.copyfile(SOURCE / name, workdir / name)
    if not (workdir / "node_modules" / "openid-client").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=workdir, check=True,
                       capture_output=True, timeout=300)
    return workdir


def rp(workdir: Path, step: str, **arguments) -> dict:
    result = subprocess.run(["node", "rp.mjs", step, json.dumps(arguments)], cwd=workdir, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("scope", ["openid email profile", "openid email offline_access"])
def test_openid_client_signs_in_verifies_the_id_token_and_reads_userinfo(openid_client, identity, outbox, scope):
    person = Person(identity, outbox, "ada@example.com")
    arguments = {"issuer": identity.url, "client_id": "shop", "client_secret": SHOP_SECRET,
                 "redirect_uri": f"{RP}/shop/cb", "scope": scope, "state": generate_token(16),
                 "nonce": generate_token(16), "verifier": generate_token(48)}
    url = rp(openid_client, "authorize", **arguments)["url"]
    callback = Web(identity).sign_in(url, person)
    # openid-client checks state, iss (RFC 9207, announced by discovery), the ID token's signature,
    # iss, aud, exp, nonce and at_hash, then reads UserInfo and checks its sub.
    answer = rp(openid_client, "callback", callback_url=callback, **arguments)
    assert answer["claims"]["sub"] == person.id and answer["claims"]["email"] == "ada@example.com"
    assert answer["userinfo"]["sub"] == person.id and answer["userinfo"]["email_verified"] is True
    if "offline_access" in scope:
        assert answer["refreshed"] == {"rotated": True}
    else:
        assert answer["refreshed"] is None
