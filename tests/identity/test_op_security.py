"""The OpenID Provider's security rules, each tried as an attacker or a careless client would, against a
live identity on loopback (authlib's client where a real RP does the step)."""
from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from urllib.parse import quote_plus, urlencode

import pytest
from authlib.common.security import generate_token
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from shared.config import EXIT_BAD_CONFIG
from support import ROOT
from tests.conftest import identity_env
from tests.identity.op_support import (
    ODD_SECRET,
    POST_SECRET,
    RP,
    SHOP_SECRET,
    Person,
    Web,
    clients_config,
    query_of,
    start_identity,
)
from tests.identity.test_op_flow import code_flow, shop, verify_id_token


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize(identity, **params):
    query = {"response_type": "code", "client_id": "shop", "redirect_uri": f"{RP}/shop/cb", "scope": "openid email",
             "state": "st-1", "nonce": "n-1", **params}
    return identity.get("/oauth2/authorize?" + urlencode({k: v for k, v in query.items() if v is not None}))


def code_for(identity, web, person, **params) -> tuple[str, str]:
    """A code through the hosted pages; returns (code, verifier)."""
    verifier = generate_token(48)
    response = authorize(identity, code_challenge=s256(verifier), code_challenge_method="S256", **params)
    assert response.status_code == 302, response.text
    completed = web.complete(web.request_id(response.headers["Location"]), person)
    assert completed.status_code == 200, completed.text
    return query_of(completed.json()["redirect_to"])["code"], verifier


def basic(client: str, secret: str) -> dict:
    """client_secret_basic as RFC 6749 2.3.1 writes it: each part form-encoded, then Base64."""
    encoded = base64.b64encode(f"{quote_plus(client)}:{quote_plus(secret)}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def exchange(identity, code: str, verifier: str | None, client: str = "shop", secret: str = SHOP_SECRET,
             redirect_uri: str | None = None):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri or f"{RP}/{client}/cb"}
    if verifier is not None:
        form["code_verifier"] = verifier
    return identity.post("/oauth2/token", data=form, headers=basic(client, secret))


def assert_oauth_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json()
    assert body["error"] == error, body
    assert response.headers["Cache-Control"] == "no-store"
    return body


# --- redirect URIs and open redirects


@pytest.mark.parametrize("redirect_uri", [f"{RP}/shop/cb/", f"{RP}/shop/cb?x=1", f"{RP}/shop/CB",
                                          "http://127.0.0.1:9/shop/cb#frag", "https://evil.example/shop/cb",
                                          f"{RP}/poster/cb", None])
def test_a_redirect_uri_not_registered_exactly_gets_an_error_page_and_no_redirect(identity, redirect_uri):
    response = authorize(identity, redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Location" not in response.headers


def test_an_unknown_client_gets_an_error_page_and_no_redirect(identity):
    response = authorize(identity, client_id="nobody")
    assert response.status_code == 400 and "Location" not in response.headers


def test_errors_after_a_trusted_redirect_uri_go_back_with_state_and_iss(identity):
    response = authorize(identity, scope="email")  # no openid
    assert response.status_code == 302
    back = query_of(response.headers["Location"])
    assert back["error"] == "invalid_scope" and back["state"] == "st-1" and back["iss"] == identity.url
    assert response.headers["Location"].startswith(f"{RP}/shop/cb?")


# --- PKCE


def test_a_public_client_without_pkce_is_refused(identity):
    response = authorize(identity, client_id="spa", redirect_uri=f"{RP}/spa/cb")
    back = query_of(response.headers["Location"])
    assert back["error"] == "invalid_request" and back["iss"] == identity.url and back["state"] == "st-1"


def test_plain_pkce_is_refused(identity):
    verifier = generate_token(48)
    for method in ("plain", None):
        response = authorize(identity, client_id="spa", redirect_uri=f"{RP}/spa/cb", code_challenge=verifier,
                             code_challenge_method=method)
        assert query_of(response.headers["Location"])["error"] == "invalid_request", method


def test_a_wrong_or_missing_pkce_verifier_gets_invalid_grant_or_invalid_request(identity, web, person):
    code, _ = code_for(identity, web, person)
    assert_oauth_error(exchange(identity, code, generate_token(48)), 400, "invalid_grant")
    code, _ = code_for(identity, web, person)
    assert_oauth_error(exchange(identity, code, None), 400, "invalid_request")


def test_a_public_client_redeems_its_code_with_the_verifier_and_no_secret(identity, web, person):
    verifier = generate_token(48)
    response = authorize(identity, client_id="spa", redirect_uri=f"{RP}/spa/cb", code_challenge=s256(verifier),
                         code_challenge_method="S256")
    code = query_of(web.complete(web.request_id(response.headers["Location"]), person).json()["redirect_to"])["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": f"{RP}/spa/cb", "client_id": "spa"}
    assert_oauth_error(identity.post("/oauth2/token", data=form), 400, "invalid_request")  # no verifier
    response = authorize(identity, client_id="spa", redirect_uri=f"{RP}/spa/cb", code_challenge=s256(verifier),
                         code_challenge_method="S256")
    code = query_of(web.complete(web.request_id(response.headers["Location"]), person).json()["redirect_to"])["code"]
    response = identity.post("/oauth2/token", data={**form, "code": code, "code_verifier": verifier})
    assert response.status_code == 200, response.text
    assert "id_token" in response.json()


# --- codes


def test_a_code_used_twice_is_invalid_grant_and_revokes_what_it_issued(identity, web, person):
    code, verifier = code_for(identity, web, person)
    first = exchange(identity, code, verifier)
    assert first.status_code == 200, first.text
    access_token = first.json()["access_token"]
    bearer = {"Authorization": f"Bearer {access_token}"}
    assert identity.get("/oauth2/userinfo", headers=bearer).status_code == 200
    assert_oauth_error(exchange(identity, code, verifier), 400, "invalid_grant")
    assert identity.get("/oauth2/userinfo", headers=bearer).status_code == 401
    introspected = identity.post("/oauth2/introspect", data={"token": access_token}, auth=("shop", SHOP_SECRET))
    assert introspected.json() == {"active": False}


def test_a_code_expires_after_a_minute(identity, web, person, clock):
    code, verifier = code_for(identity, web, person)
    clock.advance(61)
    assert_oauth_error(exchange(identity, code, verifier), 400, "invalid_grant")


def test_a_code_is_bound_to_its_client_and_redirect_uri(identity, web, person):
    code, verifier = code_for(identity, web, person)
    assert_oauth_error(exchange(identity, code, verifier, client="odd", secret=ODD_SECRET,
                                redirect_uri=f"{RP}/shop/cb"), 400, "invalid_grant")
    code, verifier = code_for(identity, web, person)
    assert_oauth_error(exchange(identity, code, verifier, redirect_uri=f"{RP}/shop/other"), 400, "invalid_grant")


# --- client authentication


def test_a_wrong_secret_is_401_invalid_client_with_a_basic_challenge(identity, web, person):
    code, verifier = code_for(identity, web, person)
    response = exchange(identity, code, verifier, secret="wrong")
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_basic_credentials_are_form_urldecoded_after_base64(identity, web, person):
    code, verifier = code_for(identity, web, person, client_id="odd", redirect_uri=f"{RP}/odd/cb")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": f"{RP}/odd/cb",
            "code_verifier": verifier}
    response = identity.post("/oauth2/token", data=form, headers=basic("odd", ODD_SECRET))
    assert response.status_code == 200, response.text
    # Sent raw, `+` reads as a space and `%od` as nothing: not the secret.
    code, verifier = code_for(identity, web, person, client_id="odd", redirect_uri=f"{RP}/odd/cb")
    raw = identity.post("/oauth2/token", data={**form, "code": code, "code_verifier": verifier},
                        auth=("odd", ODD_SECRET))
    assert_oauth_error(raw, 401, "invalid_client")


def test_client_secret_post_is_taken_from_the_client_that_registered_it(identity, web, person):
    code, verifier = code_for(identity, web, person, client_id="poster", redirect_uri=f"{RP}/poster/cb")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": f"{RP}/poster/cb",
            "code_verifier": verifier, "client_id": "poster", "client_secret": POST_SECRET}
    assert identity.post("/oauth2/token", data=form).status_code == 200
    # The client registered client_secret_post: Basic is not its method.
    code, verifier = code_for(identity, web, person, client_id="poster", redirect_uri=f"{RP}/poster/cb")
    assert_oauth_error(exchange(identity, code, verifier, client="poster", secret=POST_SECRET), 401, "invalid_client")


# --- prompt, max_age, login_hint, single sign-on


def test_prompt_none_without_a_session_returns_login_required_to_the_client(identity, web):
    response = authorize(identity, prompt="none")
    request_id = web.request_id(response.headers["Location"])
    assert web.read(request_id).json()["prompt"] == ["none"]
    back = query_of(web.refuse(request_id, "login_required").json()["redirect_to"])
    assert back == {"error": "login_required", "state": "st-1", "iss": identity.url}


def test_prompt_login_and_max_age_0_need_a_fresh_password(identity, web, person, clock):
    for params in ({"prompt": "login"}, {"max_age": "0"}):
        clock.advance(5)
        response = authorize(identity, **params)
        request_id = web.request_id(response.headers["Location"])
        assert web.read(request_id).json()["password_required"] is True
        refused = web.complete(request_id, person)
        assert refused.status_code == 409 and refused.json()["code"] == "login_required", refused.text
        person.sign_in()  # the hosted pages ask for the password again
        assert web.complete(request_id, person).status_code == 200


def test_login_hint_and_client_name_reach_the_sign_in_page(identity, web):
    response = authorize(identity, login_hint="ada@example.com")
    described = web.read(web.request_id(response.headers["Location"])).json()
    assert described["login_hint"] == "ada@example.com" and described["client_name"] == "The Shop"
    assert described["password_required"] is False and described["workspace_required"] is False


def test_a_second_client_signs_in_without_a_password(identity, web, person):
    """Single sign-on: the hosted pages complete the second request at once with the same session."""
    code_flow(identity, web, person, shop())
    verifier = generate_token(48)
    response = authorize(identity, client_id="poster", redirect_uri=f"{RP}/poster/cb",
                         code_challenge=s256(verifier), code_challenge_method="S256")
    completed = web.complete(web.request_id(response.headers["Location"]), person)
    assert completed.status_code == 200 and "code" in query_of(completed.json()["redirect_to"])


def test_an_expired_or_completed_auth_request_cannot_be_completed(identity, web, person, clock):
    response = authorize(identity)
    request_id = web.request_id(response.headers["Location"])
    assert web.complete(request_id, person).status_code == 200
    again = web.complete(request_id, person)
    assert again.status_code == 409 and again.json()["code"] == "auth_request_completed"
    response = authorize(identity)
    request_id = web.request_id(response.headers["Location"])
    clock.advance(1801)
    expired = web.complete(request_id, person)
    assert expired.status_code == 400 and expired.json()["code"] == "auth_request_expired"


def test_the_internal_routes_need_a_service_token_with_their_scope(identity, web, person, outbox):
    response = authorize(identity)
    request_id = web.request_id(response.headers["Location"])
    as_person = {"Authorization": f"Bearer {person.tokens['access_token']}"}
    assert identity.get(f"/internal/v1/auth-requests/{request_id}", headers=as_person).status_code == 401
    tenancy = identity.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            auth=("tenancy", "development-only-secret-do-not-use-in-production")).json()
    as_tenancy = {"Authorization": f"Bearer {tenancy['access_token']}"}
    assert identity.get(f"/internal/v1/auth-requests/{request_id}", headers=as_tenancy).status_code == 403
    forged = identity.post(f"/internal/v1/auth-requests/{request_id}/complete", headers=web.headers,
                           json={"access_token": tenancy["access_token"]})
    assert forged.status_code == 400 and forged.json()["code"] == "person_token_invalid"


def test_a_signed_out_session_cannot_complete_a_request(identity, web, person):
    identity.post("/v1/sessions/revoke", json={"refresh_token": person.tokens["refresh_token"]})
    response = authorize(identity)
    completed = web.complete(web.request_id(response.headers["Location"]), person)
    assert completed.status_code == 400 and completed.json()["code"] == "person_token_invalid"


# --- refresh tokens


def offline_tokens(identity, web, person) -> dict:
    code, verifier = code_for(identity, web, person, scope="openid offline_access")
    response = exchange(identity, code, verifier)
    assert response.status_code == 200, response.text
    assert "refresh_token" in response.json()
    return response.json()


def refresh(identity, refresh_token: str):
    return identity.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         auth=("shop", SHOP_SECRET))


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_grant(identity, web, person):
    first = offline_tokens(identity, web, person)
    second = refresh(identity, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert_oauth_error(refresh(identity, first["refresh_token"]), 400, "invalid_grant")
    assert_oauth_error(refresh(identity, second.json()["refresh_token"]), 400, "invalid_grant")
    bearer = {"Authorization": f"Bearer {second.json()['access_token']}"}
    assert identity.get("/oauth2/userinfo", headers=bearer).status_code == 401


def test_no_refresh_token_without_offline_access(identity, web, person):
    code, verifier = code_for(identity, web, person, scope="openid email")
    assert "refresh_token" not in exchange(identity, code, verifier).json()


# --- revocation and introspection


def test_revocation_revokes_the_grant_and_introspection_says_inactive(identity, web, person):
    tokens = offline_tokens(identity, web, person)
    introspected = identity.post("/oauth2/introspect", data={"token": tokens["access_token"]},
                                 auth=("shop", SHOP_SECRET))
    body = introspected.json()
    assert body["active"] is True and body["client_id"] == "shop" and body["sub"] == person.id
    revoked = identity.post("/oauth2/revoke", data={"token": tokens["refresh_token"]}, auth=("shop", SHOP_SECRET))
    assert revoked.status_code == 200
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert identity.post("/oauth2/introspect", data={"token": token},
                             auth=("shop", SHOP_SECRET)).json() == {"active": False}
    assert_oauth_error(refresh(identity, tokens["refresh_token"]), 400, "invalid_grant")


def test_introspection_refuses_public_clients_and_hides_other_clients_tokens(identity, web, person):
    tokens = offline_tokens(identity, web, person)
    public = identity.post("/oauth2/introspect", data={"token": tokens["access_token"], "client_id": "spa"})
    assert_oauth_error(public, 401, "invalid_client")
    other = identity.post("/oauth2/introspect", data={"token": tokens["access_token"]},
                          headers=basic("odd", ODD_SECRET))
    assert other.status_code == 200 and other.json() == {"active": False}
    unknown = identity.post("/oauth2/introspect", data={"token": "no-such-token"}, auth=("shop", SHOP_SECRET))
    assert unknown.json() == {"active": False}


def test_revoking_an_unknown_token_is_200(identity):
    response = identity.post("/oauth2/revoke", data={"token": "never-issued"}, auth=("shop", SHOP_SECRET))
    assert response.status_code == 200


# --- logout


def test_rp_initiated_logout_signs_out_and_returns_with_state(identity, web, person):
    token, _, _ = code_flow(identity, web, person, shop(scope="openid offline_access"))
    response = identity.get("/oauth2/logout?" + urlencode({
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": f"{RP}/shop/", "state": "bye"}))
    assert response.status_code == 302 and response.headers["Location"] == f"{RP}/shop/?state=bye"
    # The session is over: its refresh tokens, the client's grant, and the hosted pages' next completion.
    refreshed = identity.post("/v1/tokens/refresh", json={"refresh_token": person.tokens["refresh_token"]})
    assert refreshed.status_code == 401
    assert_oauth_error(refresh(identity, token["refresh_token"]), 400, "invalid_grant")
    completed = web.complete(web.request_id(authorize(identity).headers["Location"]), person)
    assert completed.json()["code"] == "person_token_invalid"


def test_logout_to_an_unregistered_uri_gets_an_error_page_and_no_redirect(identity, web, person):
    token, _, _ = code_flow(identity, web, person, shop())
    for uri in ("https://evil.example/", f"{RP}/shop", f"{RP}/poster/"):
        response = identity.get("/oauth2/logout?" + urlencode({"id_token_hint": token["id_token"],
                                                               "post_logout_redirect_uri": uri}))
        assert response.status_code == 400 and "Location" not in response.headers
    response = identity.get("/oauth2/logout?" + urlencode({"post_logout_redirect_uri": f"{RP}/shop/"}))
    assert response.status_code == 400 and "Location" not in response.headers
    # Nothing was signed out by the refused requests.
    refreshed = identity.post("/v1/tokens/refresh", json={"refresh_token": person.tokens["refresh_token"]})
    assert refreshed.status_code == 200


# --- RS256


def test_a_client_registered_for_rs256_gets_rs256_id_tokens(identity, web, person):
    from authlib.integrations.requests_client import OAuth2Session

    client = OAuth2Session(client_id="rsa", client_secret="rsa-client-secret", scope="openid",
                           redirect_uri=f"{RP}/rsa/cb", code_challenge_method="S256")
    token, nonce, _ = code_flow(identity, web, person, client)
    assert jose_jwt.decode(token["id_token"], KeySet.import_key_set(identity.get("/.well-known/jwks.json").json()),
                           algorithms=["RS256"]).header["alg"] == "RS256"
    verify_id_token(identity, token["id_token"], client_id="rsa", nonce=nonce, access_token=token["access_token"],
                    algorithm="RS256")


# --- the workspace scope


def test_the_workspace_scope_puts_the_chosen_workspace_in_every_token(identity, web, person):
    workspace = {"workspace_id": "w-1", "organization_id": "o-1", "workspace_role": "admin"}
    verifier = generate_token(48)
    response = authorize(identity, scope="openid workspace", workspace_hint="w-1", code_challenge=s256(verifier),
                         code_challenge_method="S256")
    request_id = web.request_id(response.headers["Location"])
    described = web.read(request_id).json()
    assert described["workspace_required"] is True and described["workspace_hint"] == "w-1"
    refused = web.complete(request_id, person)
    assert refused.status_code == 409 and refused.json()["code"] == "workspace_required"
    completed = web.complete(request_id, person, workspace=workspace)
    code = query_of(completed.json()["redirect_to"])["code"]
    tokens = exchange(identity, code, verifier).json()
    keys = KeySet.import_key_set(identity.get("/.well-known/jwks.json").json())
    for token in (tokens["id_token"], tokens["access_token"]):
        claims = jose_jwt.decode(token, keys, algorithms=["ES256"]).claims
        assert {key: claims[key] for key in workspace} == workspace
    userinfo = identity.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert {key: userinfo[key] for key in workspace} == workspace


# --- configuration


@pytest.mark.parametrize("clients", [
    {"shop": {"redirect_uris": [f"{RP}/cb"]}},  # no secret for client_secret_basic
    {"shop": {"client_secret": "s", "redirect_uris": []}},
    {"shop": {"client_secret": "s", "redirect_uris": ["https://shop.example/cb#x"]}},
    {"spa": {"client_secret": "s", "token_endpoint_auth_method": "none", "redirect_uris": [f"{RP}/cb"]}},
    {"shop": {"client_secret": "s", "redirect_uris": [f"{RP}/cb"], "id_token_signed_response_alg": "HS256"}},
    {"shop": {"client_secret": "s", "redirect_uris": [f"{RP}/cb"], "grant_types": ["implicit"]}},
    {"shop": {"client_secret": "s", "redirect_uris": [f"{RP}/cb"], "surprise": 1}},
    {"bad id": {"client_secret": "s", "redirect_uris": [f"{RP}/cb"]}},
    ["not", "an", "object"],
])
def test_bad_oidc_clients_stop_identity_with_exit_2(clients, tmp_path):
    env = {**identity_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path), "OIDC_CLIENTS": json.dumps(clients),
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "services.identity", "migrate"], env=env, cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == EXIT_BAD_CONFIG, result.stderr
    assert "OIDC_CLIENTS" in result.stderr


def test_the_cli_registers_a_client_that_signs_in(identity_db, tmp_path, clock, outbox):
    env = {**identity_env(identity_db, tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "services.identity", "clients", "add", "cli-app",
                             "--redirect-uri", f"{RP}/cli/cb", "--name", "CLI App"], env=env, cwd=ROOT,
                            capture_output=True, text=True, check=True)
    secret = result.stdout.split("client_secret: ")[1].split()[0]
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    live = start_identity(identity_db, tmp_path, clock, OIDC_CLIENTS="")
    try:
        from authlib.integrations.requests_client import OAuth2Session

        client = OAuth2Session(client_id="cli-app", client_secret=secret, scope="openid",
                               redirect_uri=f"{RP}/cli/cb", code_challenge_method="S256")
        token, nonce, _ = code_flow(live, Web(live), Person(live, outbox, "cli@example.com"), client)
        verify_id_token(live, token["id_token"], client_id="cli-app", nonce=nonce, access_token=token["access_token"])
    finally:
        live.stop()


def test_wrong_client_secrets_are_throttled_like_wrong_passwords(identity, web, person):
    for _ in range(5):
        assert_oauth_error(identity.post("/oauth2/introspect", data={"token": "x"}, headers=basic("shop", "guess")),
                           401, "invalid_client")
    blocked = identity.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": "x"},
                            headers=basic("shop", SHOP_SECRET))
    body = assert_oauth_error(blocked, 429, "slow_down")
    assert int(blocked.headers["Retry-After"]) > 0 and body["error_description"]


@pytest.mark.parametrize("params", [
    {"redirect_uri": 'http://127.0.0.1:9/"\\é'},
    {"response_type": 'é"'},
    {"client_id": 'é"'},
    {"scope": 'openid é"'},
    {"code_challenge": "é", "code_challenge_method": "S256"},
    {"prompt": "é"},
    {"max_age": "é"},
])
def test_hostile_authorization_parameters_get_a_page_or_an_error_redirect_never_a_500(identity, params):
    response = authorize(identity, **params)
    assert response.status_code in (302, 400), response.text
    if response.status_code == 302:
        assert response.headers["Location"].startswith(f"{RP}/shop/cb?")
        assert query_of(response.headers["Location"])["error"]


def test_an_unsupported_token_type_hint_is_400(identity):
    for path in ("/oauth2/revoke", "/oauth2/introspect"):
        response = identity.post(path, data={"token": "x", "token_type_hint": "id_token"},
                                 headers=basic("shop", SHOP_SECRET))
        assert_oauth_error(response, 400, "unsupported_token_type")


def test_a_development_issuer_on_plain_http_off_loopback_still_authorizes(make_identity_app):
    """Only production insists on https (settings); authlib's own https check must not turn into a 500."""
    clients = {"shop": clients_config()["shop"]}
    app = make_identity_app(IDENTITY_PUBLIC_URL="http://identity.test:8001", OIDC_CLIENTS=json.dumps(clients))
    response = app.test_client().get("/oauth2/authorize?" + urlencode({
        "response_type": "code", "client_id": "shop", "redirect_uri": f"{RP}/shop/cb", "scope": "openid"}))
    assert response.status_code == 302 and "/sign-in?auth_request=" in response.headers["Location"]
    assert app.test_client().get("/.well-known/openid-configuration").json["issuer"] == "http://identity.test:8001"


def test_client_credentials_at_the_token_endpoint_answers_in_rfc_6749_shapes(identity):
    good = identity.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": "accounts:read"},
                         headers=basic("tenancy", "development-only-secret-do-not-use-in-production"))
    assert good.status_code == 200 and good.json()["token_type"] == "Bearer" and good.json()["scope"] == "accounts:read"
    wrong = identity.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic("tenancy", "no"))
    assert_oauth_error(wrong, 401, "invalid_client")
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    scope = identity.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": "admin"},
                          headers=basic("tenancy", "development-only-secret-do-not-use-in-production"))
    assert_oauth_error(scope, 400, "invalid_scope")
    relying_party = identity.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                  headers=basic("shop", SHOP_SECRET))
    assert_oauth_error(relying_party, 401, "invalid_client")  # service tokens are for SERVICE_CLIENTS only
