"""Identity as a relying party of panva's `oidc-provider` (npm), a certified OpenID Provider, on loopback.

The provider runs as its own Node process (tests/peers/oidc_provider_upstream.mjs) in its default claims
behaviour: with the code flow the ID token names the person (`sub`) and nothing more, and the email
address is in UserInfo only. Its client for identity has a secret holding `+`, `%` and `:`, sent with
client_secret_basic. A `requests.Session` is the browser: it starts at identity's live server, follows
every redirect and fills in the provider's sign-in and consent forms (devInteractions) as a person would.

oidc-provider is installed with npm under var/peers/ the first time and kept there.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from jose import jwt

from support import ROOT
from tests import backends
from tests.conftest import bearer

VERSION = "9.13.3"
INSTALL_DIR = ROOT / "var" / "peers" / f"oidc-provider-{VERSION}"
SCRIPT = ROOT / "tests" / "peers" / "oidc_provider_upstream.mjs"
CLIENT_ID = "threshold-identity"
CLIENT_SECRET = "s3cret+with%25and:colons=="  # each of `+`, `%` and `:` must survive client_secret_basic
EMAIL = "grace@example.com"
RETURN_TO = "http://127.0.0.1:3000/app/signed-in"


@pytest.fixture
def backend() -> str:
    """The relying party does not depend on the database: SQLite only, to keep this quick."""
    return "sqlite"


def install_oidc_provider() -> str:
    """The path of node, once oidc-provider is installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    backends.require(node and npm, "node and npm (for panva's oidc-provider)", "are not installed")
    if not (INSTALL_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        INSTALL_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--prefix", str(INSTALL_DIR), "--no-audit", "--no-fund", "--no-save",
                        f"oidc-provider@{VERSION}"], check=True, capture_output=True, timeout=300)
    return node


class Deferred:
    """A WSGI app set after its server started: identity's public URL is the live server's own."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture
def identity(make_identity_app, live_server, tmp_path):
    node = install_oidc_provider()
    deferred = Deferred()
    server = live_server(deferred)
    redirect_uri = f"{server.url}/v1/oidc/panva/callback"
    log = tmp_path / "oidc-provider.log"
    with log.open("w") as stderr:
        upstream = subprocess.Popen(
            [node, str(SCRIPT), str(INSTALL_DIR)], stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={"CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, "REDIRECT_URI": redirect_uri,
                 "USER_EMAIL": EMAIL})
    try:
        assert upstream.stdout is not None
        started = upstream.stdout.readline()
        assert started, f"oidc-provider did not start: {log.read_text()}"
        issuer = json.loads(started)["issuer"]
        providers = {"panva": {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                               "token_endpoint_auth_method": "client_secret_basic"}}
        deferred.app = make_identity_app(IDENTITY_PUBLIC_URL=server.url, OIDC_PROVIDERS=json.dumps(providers))
        yield server
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)


class Form(HTMLParser):
    """The first form of a page: its action and the values of its inputs."""

    def __init__(self, page: str):
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._done = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attributes.get("action") or ""
        elif tag == "input" and self.action is not None and not self._done and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form" and self.action is not None:
            self._done = True


def browse(browser: requests.Session, url: str) -> str:
    """Where the browser ends up (return_to, with its fragment) from `url`, signing in as `grace` on the way."""
    response = browser.get(url, allow_redirects=False, timeout=10)
    for _step in range(12):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(RETURN_TO):
                return location
            response = browser.get(location, allow_redirects=False, timeout=10)
            continue
        assert response.status_code == 200, (response.url, response.status_code, response.text[:500])
        form = Form(response.text)
        assert form.action is not None, (response.url, response.text[:500])
        if "login" in form.fields:  # the sign-in form; the consent form has only hidden fields
            form.fields.update(login="grace", password="any password will do")
        response = browser.post(urljoin(response.url, form.action), data=form.fields, allow_redirects=False,
                                timeout=10)
    raise AssertionError(f"the browser never came back to {RETURN_TO}")


def test_signing_in_through_panvas_oidc_provider_takes_the_email_from_userinfo(identity):
    browser = requests.Session()

    arrived = browse(browser, f"{identity.url}/v1/oidc/panva/authorize?return_to={RETURN_TO}")
    fragment = {name: values[0] for name, values in parse_qs(urlsplit(arrived).fragment).items()}
    assert "login_code" in fragment, fragment

    response = browser.post(f"{identity.url}/v1/sessions/oidc", json={"login_code": fragment["login_code"]},
                            timeout=10)
    assert response.status_code == 200, response.text
    tokens = response.json()
    claims = jwt.get_unverified_claims(tokens["access_token"])
    assert claims["email"] == EMAIL
    assert claims["email_verified"] is True
    me = browser.get(f"{identity.url}/v1/me", headers=bearer(tokens), timeout=10).json()
    assert me["email"] == EMAIL
    assert (me["first_name"], me["last_name"]) == ("Grace", "Hopper")
