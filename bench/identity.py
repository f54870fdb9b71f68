"""Identity as the bench serves it: real gunicorn (`python -m services.identity serve`, one worker, the sync
or the threaded keep-alive worker) on a fresh database, accounts made through the API, and authorization
codes minted through identity's own OpenID Provider flow, in this process, before each window."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.test import TestResponse

from bench import load, servers
from support.outbox import Outbox

PASSWORD = "bench-Correct-Horse-42"
GUNICORN_CONF = Path(__file__).resolve().parent / "gunicorn_conf.py"
WEB_URL = "http://127.0.0.1:9"  # the hosted pages' address in the redirect to sign-in: read, never followed
RP, RP_SECRET = "bench-rp", "bench-rp-secret-0123456789-abcdefghij"  # a relying party of the OpenID Provider
REDIRECT_URI = "http://127.0.0.1:9/cb"
SCOPE = "openid offline_access"
VERIFICATION_EVENT = "identity.email_verification.requested"


def workers(worker: str) -> dict[str, str]:
    """The settings that pick gunicorn's worker class, "sync" or "gthread" (bench/gunicorn_conf.py)."""
    return {"GUNICORN_CONF": str(GUNICORN_CONF), "BENCH_WORKER": worker, "GUNICORN_WORKER_CLASS": worker}


def environment(database_url: str, var_dir: Path, port: int, worker: str = "", issuer_port: int | None = None
                ) -> dict[str, str]:
    """identity's settings for the bench; `worker` picks gunicorn's worker class (bench/gunicorn_conf.py).
    Every server of one database shares `issuer_port`'s URL as its issuer, so a token works at each."""
    issuer = f"http://127.0.0.1:{issuer_port or port}"
    extra = workers(worker) if worker else {}
    return dict(
        os.environ,
        **extra,
        IDENTITY_PUBLIC_URL=issuer,
        WEB_PUBLIC_URL=WEB_URL,
        OIDC_CLIENTS=json.dumps({RP: {"client_secret": RP_SECRET, "redirect_uris": [REDIRECT_URI], "name": "Bench"}}),
        APP_ENV="development",
        IDENTITY_DATABASE_URL=database_url,
        VAR_DIR=str(var_dir),
        IDENTITY_PORT=str(port),
        WEB_CONCURRENCY="1",
        IP_RATE_LIMIT_PER_MINUTE="100000000",  # one client address sends everything here
        PYTHONUNBUFFERED="1",
    )


def verification_tokens(database_url: str) -> dict[str, str]:
    """email -> token, from the verification events in the outbox (what the mailer would send)."""
    outbox = Outbox(database_url)
    try:
        return {event["data"]["email"]: parse_qs(urlsplit(event["data"]["verification_url"]).query)["token"][0]
                for event in outbox.events(VERIFICATION_EVENT)}
    finally:
        outbox.engine.dispose()


def create_accounts(port: int, database_url: str, count: int) -> list[str]:
    """Sign up `count` accounts through the API and confirm each address with its mailed token."""
    client = load.Client(port)
    emails = [f"bench-{os.getpid()}-{number}@example.com" for number in range(count)]
    try:
        for email in emails:
            status, body = client.call("POST", "/v1/accounts", {"email": email, "password": PASSWORD,
                                                               "first_name": "Bench", "last_name": "Mark"})
            if status != 201:
                raise RuntimeError(f"sign-up answered {status}: {body}")
        tokens = verification_tokens(database_url)
        for email in emails:
            status, body = client.call("POST", "/v1/email-verifications/confirm", {"token": tokens[email]})
            if status != 200 or not body.get("email_verified"):
                raise RuntimeError(f"verification answered {status}: {body}")
    finally:
        client.close()
    return emails


def sign_in(client: load.Client, email: str) -> tuple[bool, dict]:
    status, body = client.call("POST", "/v1/sessions", {"email": email, "password": PASSWORD})
    return status == 200, body


def server(env: dict[str, str], port: int, log_path: Path, cpu: int | None) -> servers.Server:
    return servers.Server([sys.executable, "-m", "services.identity", "serve"], {**env, "IDENTITY_PORT": str(port)},
                          port, log_path, cpu)


def sign_in_pairs(port: int, emails: list[str]) -> list[dict]:
    client = load.Client(port)
    try:
        pairs = []
        for email in emails:
            ok, pair = sign_in(client, email)
            if not ok:
                raise RuntimeError(f"sign-in failed: {pair}")
            pairs.append(pair)
        return pairs
    finally:
        client.close()


def basic(client_id: str, secret: str) -> dict[str, str]:
    """client_secret_basic (RFC 6749 2.3.1; the bench's ids and secrets need no form-encoding)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _start(response: TestResponse) -> str:
    """The beginning of a response's body, for an error message."""
    return response.get_data(as_text=True)[:300]


def _object(response: TestResponse) -> dict[str, Any]:
    """The JSON object a test client's response carries; RuntimeError when it carries none."""
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        raise RuntimeError(f"minter: {response.status_code} without a JSON object: {_start(response)}")
    return body


class Minter:
    """Authorization codes by identity's real flow, in this process on the server's database: identity's
    own app (`create_app`, the same settings) through Flask's test client; GET /oauth2/authorize, then
    the internal auth-request completion the web BFF calls with its service token and the person's
    access token. Nothing of it runs on the servers' core or inside a measured window."""

    def __init__(self, env: dict[str, str], email: str):
        from services.identity.app import create_app
        from services.identity.settings import Settings
        from shared.config import DEVELOPMENT_SECRET

        self.app = create_app(Settings.from_env(env))
        self.client = self.app.test_client()
        signed_in = self.client.post("/v1/sessions", json={"email": email, "password": PASSWORD})
        web = self.client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                                       "scope": "auth-requests:complete"},
                               headers=basic("web", DEVELOPMENT_SECRET))
        if signed_in.status_code != 200 or web.status_code != 200:
            raise RuntimeError(f"minter: sign-in {signed_in.status_code}, service token {web.status_code}")
        self.person = _object(signed_in)["access_token"]
        self.web = {"Authorization": f"Bearer {_object(web)['access_token']}"}

    def code(self) -> tuple[str, str]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        authorized = self.client.get("/oauth2/authorize", query_string={
            "response_type": "code", "client_id": RP, "redirect_uri": REDIRECT_URI, "scope": SCOPE,
            "state": secrets.token_urlsafe(12), "nonce": secrets.token_urlsafe(12), "code_challenge": challenge,
            "code_challenge_method": "S256"})
        request_id = _query(authorized.headers.get("Location", ""))["auth_request"]
        completed = self.client.post(f"/internal/v1/auth-requests/{request_id}/complete",
                                     json={"access_token": self.person}, headers=self.web)
        if completed.status_code != 200:
            raise RuntimeError(f"minter: completion answered {completed.status_code}: {_start(completed)}")
        return _query(_object(completed)["redirect_to"])["code"], verifier

    def codes(self, count: int) -> list[tuple[str, str]]:
        return [self.code() for _ in range(count)]

    def refresh_tokens(self, count: int) -> list[str]:
        tokens = []
        for code, verifier in self.codes(count):
            answer = self.client.post("/oauth2/token", headers=basic(RP, RP_SECRET), data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier})
            if answer.status_code != 200:
                raise RuntimeError(f"minter: code exchange answered {answer.status_code}: {_start(answer)}")
            tokens.append(_object(answer)["refresh_token"])
        return tokens


class CodePool:
    """Codes minted before each window (they live 60 s), taken by the clients; none left: `load.Exhausted`.
    Each refill is sized for the coming window from the rate the clients took codes at in the one before
    (the first from `first_rate`), at most `cap`. A window that ran dry only shows a lower bound of that
    rate, so the next refill doubles it: pools grow to what the server takes instead of shrinking window
    by window. (A window that runs dry leaves its server idle at the end: the per-CPU figure stays honest,
    an idle server spends next to nothing, but it rests on fewer requests.)"""

    def __init__(self, mint, cap: int, first_rate: float = 400.0):
        self.mint = mint  # count -> [(code, verifier)]
        self.cap = cap
        self.rate = first_rate
        self.codes: deque = deque()
        self.lock = threading.Lock()
        self.handed = 0
        self.ran_dry = False
        self.seconds = 0.0  # how long the clients of the last window took codes

    def refill(self, seconds: float) -> None:
        """Before a window whose clients run for `seconds`."""
        with self.lock:
            if self.handed:
                rate = self.handed / self.seconds
                self.rate = max(50.0, 2 * rate if self.ran_dry else rate)
            self.codes.clear()
            self.handed, self.ran_dry, self.seconds = 0, False, seconds
        self.codes.extend(self.mint(min(self.cap, int(self.rate * 1.3 * seconds) + 8)))

    def take(self) -> tuple[str, str]:
        try:
            code = self.codes.popleft()
        except IndexError:
            self.ran_dry = True
            raise load.Exhausted() from None
        self.handed += 1
        return code


class Unexpected(Exception):
    """An answer other than the one expected: an error of the window, its message the first error shown."""


def expect(status: int, body: dict, wanted: int = 200) -> None:
    if status != wanted:
        raise Unexpected(f"{status}: {json.dumps(body)[:200]}")


def exchange_step(pool: CodePool, path: str, headers: dict[str, str], redirect_uri: str) -> load.Step:
    def step(client: load.Client) -> bool:
        code, verifier = pool.take()
        expect(*client.call("POST", path, form={"grant_type": "authorization_code", "code": code,
                                                "redirect_uri": redirect_uri, "code_verifier": verifier},
                            headers=headers))
        return True

    return step


def refresh_grant_step(path: str, first_token: str, headers: dict[str, str]) -> load.Step:
    """The refresh_token grant, keeping the token each answer hands out (rotation)."""
    chain = {"token": first_token}

    def step(client: load.Client) -> bool:
        status, body = client.call("POST", path, form={"grant_type": "refresh_token",
                                                       "refresh_token": chain["token"]}, headers=headers)
        expect(status, body)
        chain["token"] = body["refresh_token"]
        return True

    return step


def client_credentials_step(path: str, headers: dict[str, str], scope: str | None = None) -> load.Step:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}

    def step(client: load.Client) -> bool:
        expect(*client.call("POST", path, form=form, headers=headers))
        return True

    return step
