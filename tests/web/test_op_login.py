"""The hosted pages as the login UI of identity's OpenID Provider, in the browser: a product app (authlib's
client, a real RP library) sends the browser to `/oauth2/authorize`, the person signs in on web's pages,
the app's redirect URI (a loopback server) gets the code, and authlib exchanges it for a verified ID token."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from playwright.sync_api import expect

from tests.web.conftest import APPS, PASSWORD, check_page, unique_address
from tests.web.test_journey import (
    sign_in_with_keyboard,
    sign_up,
    signed_up_and_in,
    verify_from_mail,
)


@dataclass
class App:
    """One product app's sign-in, as its RP library runs it."""

    stack: object
    name: str
    scope: str = "openid email"

    def __post_init__(self):
        self.metadata = requests.get(f"{self.stack.identity}/.well-known/openid-configuration", timeout=5).json()
        self.client = OAuth2Session(self.name, APPS[self.name], scope=self.scope, code_challenge_method="S256",
                                    redirect_uri=f"{self.stack.app_url}/{self.name}/cb")

    def start(self, page, **authorize) -> None:
        """Send the browser to the authorize URL."""
        self.verifier, self.nonce = generate_token(48), generate_token(20)
        url, self.state = self.client.create_authorization_url(self.metadata["authorization_endpoint"],
                                                               code_verifier=self.verifier, nonce=self.nonce,
                                                               **authorize)
        page.goto(url)

    def back(self, page) -> dict:
        """The browser is back at the app: its query (state and iss checked)."""
        expect(page).to_have_url(re.compile(re.escape(f"{self.stack.app_url}/{self.name}/cb?")))
        query = {key: values[0] for key, values in parse_qs(urlsplit(page.url).query).items()}
        assert query["state"] == self.state and query["iss"] == self.stack.identity
        return query

    def finish(self, page) -> dict:
        """Back at the app with a code: exchange it, verify the ID token; its claims."""
        self.back(page)
        token = self.client.fetch_token(self.metadata["token_endpoint"], authorization_response=page.url,
                                        code_verifier=self.verifier)
        keys = KeySet.import_key_set(requests.get(self.metadata["jwks_uri"], timeout=5).json())
        decoded = jose_jwt.decode(token["id_token"], keys, algorithms=["ES256"])
        claims = CodeIDToken(decoded.claims, decoded.header,
                             {"iss": {"essential": True, "value": self.stack.identity},
                              "aud": {"essential": True, "value": self.name}},
                             {"nonce": self.nonce, "access_token": token["access_token"], "client_id": self.name})
        claims.validate(leeway=5)
        self.userinfo = self.client.get(self.metadata["userinfo_endpoint"]).json()
        return dict(claims)


def test_sign_in_for_an_app_then_single_sign_on_then_prompt_login(stack, new_page):
    address = signed_up_and_in(new_page(), stack)
    page = new_page()
    shop = App(stack, "shop")
    shop.start(page, login_hint=address)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_text("to continue to The Shop")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(address)  # login_hint
    first_request = page.url
    check_page(page, "sign-in-for-app")
    page.get_by_label("Password").focus()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    claims = shop.finish(page)
    assert claims["nonce"] == shop.nonce and claims["sub"] == shop.userinfo["sub"]
    assert shop.userinfo["email"] == address and claims["email"] == address

    blog = App(stack, "blog")  # single sign-on: no password
    blog.start(page)
    assert blog.finish(page)["sub"] == claims["sub"]
    blog.start(page, prompt="none")  # signed in: prompt=none answers with a code, showing nothing
    assert blog.finish(page)["sub"] == claims["sub"]

    shop.start(page, prompt="login")  # a fresh password, although the browser is signed in
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_label("Email")).to_have_value(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    again = shop.finish(page)
    assert again["sub"] == claims["sub"] and again["auth_time"] >= claims["auth_time"]
    assert again["sid"] != claims["sid"]  # a new sign-in, not the old session

    # The first request is spent: going back to it says so in words, not with a redirect.
    assert page.goto(first_request).status == 409
    expect(page.get_by_role("heading", level=1)).to_have_text("This sign-in cannot go on")
    expect(page.get_by_text("already finished")).to_be_visible()
    check_page(page)
    assert page.goto(f"{stack.web}/sign-in?auth_request=no-such-request").status == 404
    expect(page.get_by_text("not valid")).to_be_visible()


def test_prompt_none_without_a_session_answers_login_required(stack, new_page):
    page = new_page()
    shop = App(stack, "shop")
    shop.start(page, prompt="none")
    query = shop.back(page)
    assert query["error"] == "login_required" and "code" not in query


def test_sign_up_verify_and_first_organization_come_back_to_the_app(stack, new_page):
    page = new_page()
    shop = App(stack, "shop")
    shop.start(page)
    page.get_by_role("link", name="Sign up").click()
    address = unique_address()
    sign_up(page, stack, address)
    verify_from_mail(page, stack, address)
    sign_in_with_keyboard(page, address)
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your organization")
    page.get_by_label("Organization name").fill("Shopkeepers")
    page.get_by_role("button", name="Create organization").click()
    assert shop.finish(page)["email"] == address


def test_choose_a_workspace_for_an_app(stack, new_page):
    page = new_page()
    signed_up_and_in(page, stack)
    page.goto(stack.web + "/workspaces/new")
    page.get_by_label("Workspace name").fill("Second bench")
    page.get_by_role("button", name="Create workspace").click()
    second = page.url.rsplit("/", 1)[1]

    shop = App(stack, "shop", scope="openid workspace")
    shop.start(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a workspace")
    check_page(page, "choose-workspace")
    forged = page.request.post(page.url, form={"workspace": second}, max_redirects=0)  # no CSRF token
    assert forged.status == 400 and "The form expired" in forged.text()
    radios = page.get_by_role("radio")
    expect(radios).to_have_count(2)
    radios.first.focus()  # keyboard only: Space or an arrow picks, Enter sends
    second_is_first = page.locator("fieldset label").first.inner_text().startswith("Second bench")
    page.keyboard.press("Space" if second_is_first else "ArrowDown")
    expect(page.get_by_role("radio", name="Second bench")).to_be_checked()
    page.keyboard.press("Enter")
    claims = shop.finish(page)
    assert claims["workspace_id"] == second and claims["workspace_role"] == "owner"

    shop.start(page, workspace_hint=second)  # a hint they may open: no question
    assert shop.finish(page)["workspace_id"] == second

    page.goto(stack.web + "/organizations/new")  # two organizations: each workspace names its organization
    page.get_by_label("Organization name").fill("Difference Engines")
    page.get_by_role("button", name="Create organization").click()
    shop.start(page)
    expect(page.get_by_role("radio")).to_have_count(3)
    expect(page.locator("fieldset label", has_text="Difference Engines")).to_have_count(1)
    expect(page.locator("fieldset label", has_text="Analytical Engines")).to_have_count(2)


def test_second_factor_comes_back_to_the_app(stack, new_page):
    from tests.web.test_accounts import code_for

    page = new_page()
    address = signed_up_and_in(page, stack)
    page.goto(stack.web + "/security")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Authentication code").fill(code_for(secret))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")

    page = new_page()
    shop = App(stack, "shop")
    shop.start(page, login_hint=address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill(code_for(secret, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    claims = shop.finish(page)
    assert claims["acr"] == "2" and "otp" in claims["amr"]


def test_web_with_a_wrong_client_secret_says_the_service_is_unavailable_and_logs_why(stack, caplog):
    from services.web.app import create_app
    from services.web.settings import Settings

    app = create_app(Settings.from_env({"VAR_DIR": str(stack.processes.workdir / "var"),
                                        "IDENTITY_PUBLIC_URL": stack.identity,
                                        "WEB_CLIENT_SECRET": "not-web's-secret"}))
    answer = app.test_client().get("/sign-in?auth_request=anything")
    assert answer.status_code == 503 and b"not answering" in answer.data
    assert any("WEB_CLIENT_SECRET" in r.getMessage() and "invalid_client" in r.getMessage() for r in caplog.records)
    assert not any("not-web's-secret" in r.getMessage() for r in caplog.records)
