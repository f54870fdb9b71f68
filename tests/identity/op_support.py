"""A live identity as an OpenID Provider on a loopback port, a signed-in person, and "web": the test
playing the hosted pages by calling identity's internal auth-request routes over HTTP, with a real
service token and the person's real access token (the seam docs/oidc-provider.md describes).

Relying parties are real third-party clients: authlib's `OAuth2Session` (PyPI) and, where node is
there, panva's `openid-client` (npm)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.serving import make_server

from shared.config import DEVELOPMENT_SECRET
from support import ROOT
from support.ports import free_port
from tests.conftest import AuthActions, identity_env

PASSWORD = AuthActions.PASSWORD
SHOP_SECRET = "shop-secret.0123456789_abcdefghij~"
ODD_SECRET = "a secret+with%odd:characters"  # RFC 6749 2.3.1: form-encoded in a Basic header
POST_SECRET = "post-client-secret-0123456789"
RP = "http://127.0.0.1:9"  # the relying parties' redirect URIs: never followed, only read


def clients_config() -> dict:
    return {
        "shop": {"client_secret": SHOP_SECRET, "redirect_uris": [f"{RP}/shop/cb"], "name": "The Shop",
                 "post_logout_redirect_uris": [f"{RP}/shop/"]},
        "poster": {"client_secret": POST_SECRET, "redirect_uris": [f"{RP}/poster/cb"],
                   "token_endpoint_auth_method": "client_secret_post"},
        "odd": {"client_secret": ODD_SECRET, "redirect_uris": [f"{RP}/odd/cb"]},
        "spa": {"redirect_uris": [f"{RP}/spa/cb"], "token_endpoint_auth_method": "none"},
        "rsa": {"client_secret": "rsa-client-secret", "redirect_uris": [f"{RP}/rsa/cb"],
                "id_token_signed_response_alg": "RS256"},
    }


def query_of(url: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


@dataclass
class LiveIdentity:
    url: str
    app: object
    server: object
    http: requests.Session = field(default_factory=requests.Session)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.url + path, allow_redirects=False, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.http.post(self.url + path, allow_redirects=False, timeout=30, **kwargs)

    def discovery(self) -> dict:
        return self.get("/.well-known/openid-configuration").json()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def add_rsa_key(database_url: str, var_dir) -> None:
    """What an operator runs for RS256 ID tokens (`migrate` does it when OIDC_CLIENTS ask for RS256)."""
    env = {**identity_env(database_url, var_dir), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-m", "services.identity", "rotate-key", "--algorithm", "RS256"], env=env,
                   cwd=ROOT, check=True, capture_output=True)


def start_identity(database_url: str, var_dir, clock, **overrides) -> LiveIdentity:
    from services.identity.app import create_app
    from services.identity.settings import Settings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {"IDENTITY_PUBLIC_URL": url, "OIDC_CLIENTS": json.dumps(clients_config()),
                "WEB_PUBLIC_URL": "http://127.0.0.1:8000", **overrides}
    app = create_app(Settings.from_env(identity_env(database_url, var_dir, **settings)), clock=clock)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return LiveIdentity(url, app, server)


class Person:
    """Someone with an account, signed in over HTTP like the hosted pages sign people in."""

    def __init__(self, identity: LiveIdentity, outbox, email: str):
        self.identity, self.email = identity, email
        response = identity.post("/v1/accounts", json={"email": email, "password": PASSWORD,
                                                       "first_name": "Ada", "last_name": "Lovelace"})
        assert response.status_code == 201, response.text
        self.id = response.json()["id"]
        event = outbox.last("identity.email_verification.requested", email)
        token = query_of(event["data"]["verification_url"])["token"]
        assert identity.post("/v1/email-verifications/confirm", json={"token": token}).status_code == 200
        self.tokens = self.sign_in()

    def sign_in(self) -> dict:
        response = self.identity.post("/v1/sessions", json={"email": self.email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        self.tokens = response.json()
        return self.tokens


class Web:
    """The hosted pages' side of the seam, over identity's internal HTTP routes."""

    def __init__(self, identity: LiveIdentity):
        self.identity = identity
        response = identity.post("/oauth2/token", data={"grant_type": "client_credentials", "scope":
                                                        "auth-requests:complete"},
                                 auth=("web", DEVELOPMENT_SECRET))
        assert response.status_code == 200, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    @staticmethod
    def request_id(sign_in_url: str) -> str:
        assert sign_in_url.startswith("http://127.0.0.1:8000/sign-in?"), sign_in_url
        return query_of(sign_in_url)["auth_request"]

    def read(self, request_id: str) -> requests.Response:
        return self.identity.get(f"/internal/v1/auth-requests/{request_id}", headers=self.headers)

    def complete(self, request_id: str, person: Person, workspace: dict | None = None) -> requests.Response:
        body = {"access_token": person.tokens["access_token"]}
        if workspace is not None:
            body["workspace"] = workspace
        return self.identity.post(f"/internal/v1/auth-requests/{request_id}/complete", json=body,
                                  headers=self.headers)

    def refuse(self, request_id: str, error: str) -> requests.Response:
        return self.identity.post(f"/internal/v1/auth-requests/{request_id}/refuse", json={"error": error},
                                  headers=self.headers)

    def sign_in(self, authorization_url: str, person: Person) -> str:
        """The browser's round trip: authorize -> hosted sign-in -> completed -> the client's redirect_uri."""
        response = self.identity.http.get(authorization_url, allow_redirects=False, timeout=30)
        assert response.status_code == 302, response.text
        request_id = self.request_id(response.headers["Location"])
        assert self.read(request_id).status_code == 200
        completed = self.complete(request_id, person)
        assert completed.status_code == 200, completed.text
        return completed.json()["redirect_to"]

