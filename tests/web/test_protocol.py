"""What the browser cannot easily show: CSRF on every form, the session cookie and where the tokens
live, security headers, `next` staying on the site, settings validation."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from support import ROOT
from tests.web.conftest import PASSWORD, unique_address

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(http: requests.Session, url: str) -> str:
    return CSRF.search(http.get(url, timeout=30).text).group(1)


def signed_in_session(stack) -> tuple[requests.Session, str]:
    """A browser-like session signed in to web, with an organization; returns it and the address."""
    address = unique_address()
    created = requests.post(f"{stack.identity}/v1/accounts", timeout=30, json={
        "email": address, "password": PASSWORD, "first_name": "Grace", "last_name": "Hopper"})
    assert created.status_code == 201, created.text
    token = parse_qs(urlsplit(stack.link_in_mail(address, "/verify-email")).query)["token"][0]
    assert requests.post(f"{stack.identity}/v1/email-verifications/confirm", json={"token": token},
                         timeout=30).status_code == 200
    http = requests.Session()
    answer = http.post(stack.web + "/sign-in", timeout=30, data={
        "csrf_token": csrf_token(http, stack.web + "/sign-in"), "email": address, "password": PASSWORD})
    assert answer.url.endswith("/organizations/new"), answer.url
    answer = http.post(stack.web + "/organizations/new", timeout=30, data={
        "csrf_token": csrf_token(http, stack.web + "/organizations/new"), "name": "Compilers"})
    assert "/w/" in answer.url, answer.url
    return http, address


def web_routes(stack) -> list[str]:
    from services.web.app import create_app
    from services.web.settings import Settings

    app = create_app(Settings.from_env({"VAR_DIR": str(stack.processes.workdir / "var")}))
    return sorted(rule.rule for rule in app.url_map.iter_rules() if "POST" in rule.methods)


def test_every_form_refuses_a_post_without_its_csrf_token_and_changes_nothing(stack):
    http, _address = signed_in_session(stack)
    home = http.get(stack.web + "/", timeout=30)
    organization_id = re.search(r'href="/o/([0-9a-f-]{36})/settings"', home.text).group(1)
    workspaces_before = home.text.count('href="/w/')
    routes = web_routes(stack)
    assert "/sign-up" in routes and "/organizations/new" in routes
    # Forms of a state this session is not in answer as they would to a GET (and change nothing)
    not_in_that_state = {"/check-email": 302, "/sign-in/code": 302, "/sign-in/recovery-code": 302,
                         "/sign-up": 302, "/sign-in": 302, "/security/two-factor": 302, "/invitations/accept": 404,
                         "/sign-in/workspace": 404}  # without an application's request (test_op_login posts with one)
    signed_out = requests.Session()
    for rule in set(not_in_that_state) - {"/security/two-factor", "/invitations/accept", "/check-email",
                                          "/sign-in/code", "/sign-in/recovery-code", "/sign-in/workspace"}:
        response = signed_out.post(stack.web + rule, data={"email": "forged@example.com", "password": PASSWORD},
                                   allow_redirects=False, timeout=30)
        assert response.status_code == 400 and "The form expired" in response.text, rule
    for rule in routes:
        path = (rule.replace("<organization_id>", organization_id).replace("<invitation_id>", "x" * 36)
                .replace("<action>", "revoke").replace("<workspace_id>", "w" * 36).replace("<user_id>", "u" * 36))
        response = http.post(stack.web + path, data={"name": "Forged", "email": "forged@example.com",
                                                     "password": PASSWORD, "code": "123456"},
                             allow_redirects=False, timeout=30)
        if rule in not_in_that_state:
            assert response.status_code == not_in_that_state[rule], rule
            continue
        assert response.status_code == 400, (rule, response.status_code, response.headers.get("Location"))
        assert "The form expired" in response.text, rule
        assert PASSWORD not in response.text, rule  # the form comes back without the password
    after = http.get(stack.web + "/", timeout=30)
    assert "Forged" not in after.text and after.text.count('href="/w/') == workspaces_before
    assert "/w/" in after.url  # still signed in: sign-out refused too


def test_a_refused_sign_up_keeps_the_values_but_not_the_password_and_creates_no_account(stack):
    http = requests.Session()
    address = unique_address()
    response = http.post(stack.web + "/sign-up", timeout=30, data={
        "email": address, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"})
    assert response.status_code == 400
    assert f'value="{address}"' in response.text and 'value="Ada"' in response.text
    assert PASSWORD not in response.text
    created = requests.post(f"{stack.identity}/v1/accounts", timeout=30, json={
        "email": address, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"})
    assert created.status_code == 201  # the address was still free


def test_the_cookie_is_an_opaque_httponly_lax_id_and_the_tokens_stay_encrypted_on_the_server(stack):
    _http, address = signed_in_session(stack)
    http = requests.Session()
    token = csrf_token(http, stack.web + "/sign-in")
    before = http.cookies.get("threshold_session")
    signed_in = http.post(stack.web + "/sign-in", timeout=30, allow_redirects=False, data={
        "csrf_token": token, "email": address, "password": PASSWORD})
    header = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Secure" not in header  # plain http on loopback; https or production sets it
    cookie = http.cookies.get("threshold_session")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie)  # 256 random bits, not a JWT or a signed blob
    assert len(http.cookies) == 1
    assert cookie != before  # a new id at sign-in: an id planted before is worth nothing
    assert requests.get(stack.web + "/", cookies={"threshold_session": before}, allow_redirects=False,
                        timeout=30).headers["Location"].endswith("/sign-in")

    with sqlite3.connect(stack.processes.workdir / "var" / "web.db") as db:
        rows = [row[0] for row in db.execute("SELECT data FROM browser_sessions")]
    assert rows and all(row.startswith("gAAAAA") for row in rows)  # Fernet
    # No JWT in clear: every one begins with the base64 of '{"alg":' (three letters alone, "eyJ", turn up in
    # random Fernet text about once in every 260 000 positions, so the check reads the longer prefix)
    assert not any("eyJhbGciOi" in row or address in row for row in rows)


def test_signing_out_ends_the_session_for_that_cookie(stack):
    http, _address = signed_in_session(stack)
    cookie = http.cookies.get("threshold_session")
    home = http.get(stack.web + "/", timeout=30)
    token = CSRF.search(home.text).group(1)
    http.post(stack.web + "/sign-out", data={"csrf_token": token}, timeout=30)
    replay = requests.get(stack.web + "/", cookies={"threshold_session": cookie}, allow_redirects=False, timeout=30)
    assert replay.status_code == 302 and replay.headers["Location"].endswith("/sign-in")


def test_security_headers_on_every_page(stack):
    for path in ("/sign-in", "/sign-up", "/no-such-page"):
        headers = requests.get(stack.web + path, timeout=30).headers
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("target",
                         ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"])
def test_next_never_leaves_the_site(stack, target):
    http, _address = signed_in_session(stack) if target == "https://evil.example/" else (requests.Session(), None)
    response = http.get(stack.web + "/sign-in", params={"next": target}, allow_redirects=False, timeout=30)
    location = response.headers.get("Location", "")
    assert "evil" not in location and "javascript" not in location


@pytest.mark.parametrize("variable, value", [("WEB_PORT", "0"), ("PRODUCT_URL", "https://app.example.com/"),
                                             ("WEB_DATABASE_URL", "mysql://x"), ("WEB_PUBLIC_URL", "ftp://x")])
def test_a_bad_setting_exits_2_naming_the_variable(tmp_path, variable, value):
    env = {"PATH": os.environ["PATH"], "VAR_DIR": str(tmp_path), variable: value}
    result = subprocess.run([sys.executable, "-m", "services.web", "serve"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert variable in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_too_many_wrong_passwords_answer_429_saying_when_to_retry(stack):
    _http, address = signed_in_session(stack)
    http = requests.Session()
    statuses = []
    for _attempt in range(8):
        response = http.post(stack.web + "/sign-in", timeout=30, data={
            "csrf_token": csrf_token(http, stack.web + "/sign-in"), "email": address, "password": "wrong password"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    assert re.search(r"Too many attempts\. Try again in \d+ seconds\.", response.text)
    assert 'role="alert"' in response.text


def expire_access_token(stack, cookie: str) -> str:
    """Mark the session's access token as expired, through web's own store; returns the token it had."""
    from services.web.sessions import SessionStore
    from shared.config import DEVELOPMENT_SECRET
    from shared.database import make_engine, make_session_factory, utcnow

    engine = make_engine(f"sqlite:///{stack.processes.workdir / 'var' / 'web.db'}")
    store = SessionStore(make_session_factory(engine), secret_key=DEVELOPMENT_SECRET, ttl=3600, clock=utcnow)
    seen = {}

    def expire(data: dict) -> dict:
        seen["token"] = data["auth"]["access_token"]
        return {**data, "auth": {**data["auth"], "expires_at": 0}}

    store.update_locked(cookie, expire)
    engine.dispose()
    return seen["token"]


def test_an_expired_access_token_is_refreshed_on_the_server_once_for_concurrent_requests(stack):
    http, _address = signed_in_session(stack)
    cookie = http.cookies.get("threshold_session")
    home = http.get(stack.web + "/", timeout=30).url
    old = expire_access_token(stack, cookie)

    barrier = threading.Barrier(4)

    def load(_n: int) -> int:
        barrier.wait(timeout=30)
        return requests.get(home, cookies={"threshold_session": cookie}, allow_redirects=False, timeout=30).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(load, range(4)))
    assert statuses == [200] * 4, statuses  # a refresh token spent twice would have ended the session
    assert http.get(home, timeout=30).status_code == 200
    assert expire_access_token(stack, cookie) != old  # the server holds a new token pair
