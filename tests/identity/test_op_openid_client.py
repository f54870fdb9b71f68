"""panva's openid-client (npm, run by node) signs a person in through Threshold as its OpenID Provider,
against a live identity on loopback (tests/peers/node_rp.py installs it under var/ with npm)."""
from __future__ import annotations

from pathlib import Path

import pytest
from authlib.common.security import generate_token

from tests.identity.op_support import RP, SHOP_SECRET, Person, Web
from tests.peers import node_rp


@pytest.fixture(scope="session")
def openid_client() -> Path:
    return node_rp.install()


@pytest.mark.parametrize("scope", ["openid email profile", "openid email offline_access"])
def test_openid_client_signs_in_verifies_the_id_token_and_reads_userinfo(openid_client, identity, outbox, scope):
    person = Person(identity, outbox, "ada@example.com")
    arguments = {"issuer": identity.url, "client_id": "shop", "client_secret": SHOP_SECRET,
                 "redirect_uri": f"{RP}/shop/cb", "scope": scope, "state": generate_token(16),
                 "nonce": generate_token(16), "verifier": generate_token(48)}
    url = node_rp.run(openid_client, "authorize", **arguments)["url"]
    callback = Web(identity).sign_in(url, person)
    # openid-client checks state, iss (RFC 9207, announced by discovery), the ID token's signature,
    # iss, aud, exp, nonce and at_hash, then reads UserInfo and checks its sub.
    answer = node_rp.run(openid_client, "callback", callback_url=callback, **arguments)
    assert answer["claims"]["sub"] == person.id and answer["claims"]["email"] == "ada@example.com"
    assert answer["userinfo"]["sub"] == person.id and answer["userinfo"]["email_verified"] is True
    if "offline_access" in scope:
        assert answer["refreshed"] == {"rotated": True}
    else:
        assert answer["refreshed"] is None
