"""panva's openid-client (npm, run by node) as a product app's relying party, through the hosted pages in
Chromium: node discovers identity and builds the authorization URL (PKCE S256, state, nonce), the browser
opens it, a person signs in on web's sign-in page with the keyboard and lands on the app's redirect URI
(a loopback server), and node redeems that callback URL: openid-client checks state, iss (RFC 9207),
the ID token's signature, iss, aud, exp and nonce, then reads UserInfo."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from playwright.sync_api import expect

from tests.peers import node_rp
from tests.web.conftest import APPS, PASSWORD, PUBLIC_APP, unique_address
from tests.web.test_journey import sign_in_with_keyboard, sign_up, verify_from_mail


@pytest.fixture(scope="session")
def openid_client() -> Path:
    return node_rp.install()


def account_id(stack, address: str) -> str:
    """The person's id as identity's own API tells it (not through the RP)."""
    tokens = requests.post(f"{stack.identity}/v1/sessions", json={"email": address, "password": PASSWORD},
                           timeout=10).json()
    me = requests.get(f"{stack.identity}/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                      timeout=10)
    return me.json()["id"]


@pytest.mark.parametrize("app", ["shop", PUBLIC_APP])  # client_secret_basic, then a public client (PKCE only)
def test_openid_client_signs_a_person_in_through_the_hosted_pages(openid_client, stack, new_page, app):
    page = new_page()
    address = unique_address()
    sign_up(page, stack, address)
    verify_from_mail(page, stack, address)  # verified, not signed in on this browser
    secret = {"client_secret": APPS[app]} if app in APPS else {}
    arguments = {"issuer": stack.identity, "client_id": app, "redirect_uri": f"{stack.app_url}/{app}/cb",
                 "scope": "openid email", "state": generate_token(16), "nonce": generate_token(16),
                 "verifier": generate_token(48), **secret}
    url = node_rp.run(openid_client, "authorize", **arguments)["url"]
    sent = parse_qs(urlsplit(url).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["nonce"] == [arguments["nonce"]]

    page.goto(url)
    expect(page.get_by_text(f"to continue to The {app.title()}")).to_be_visible()
    sign_in_with_keyboard(page, address)
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your organization")
    page.get_by_label("Organization name").fill("Analytical Engines")
    page.get_by_label("Organization name").press("Enter")
    expect(page).to_have_url(re.compile(re.escape(f"{stack.app_url}/{app}/cb?")))
    callback = page.url

    answer = node_rp.run(openid_client, "callback", callback_url=callback, **arguments)
    claims, userinfo = answer["claims"], answer["userinfo"]
    assert claims["sub"] == userinfo["sub"] == account_id(stack, address)
    assert claims["email"] == userinfo["email"] == address and userinfo["email_verified"] is True
    assert claims["nonce"] == arguments["nonce"] and claims["aud"] == app and claims["iss"] == stack.identity
    # The code is spent: the same callback again is refused by identity's token endpoint.
    assert "invalid_grant" in node_rp.refused(openid_client, "callback", callback_url=callback, **arguments)
