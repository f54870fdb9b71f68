"""Sign-in with Google or any OpenID provider, end to end against a real provider on loopback.

Every test drives the real flow: identity's GET /v1/oidc/<p>/authorize (Flask test client, which is the
browser and keeps the `threshold_oidc` cookie for localhost), then the provider's /authorize over real HTTP
(tests/oidc_provider.py, which plays the user's consent and redirects back), then identity's callback
with the browser's cookie; identity itself talks to the provider over HTTP for discovery, the code
exchange and the JWKS. The browser then finds `#login_code=…` (or `#error=…`) on return_to and trades the
code at POST /v1/sessions/oidc.

Time: identity's clock is the test clock (`clock.advance`); the provider's codes expire on its own clock
(`provider.advance`); ID token times are real time, as the shared JWT module checks them against it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import socket
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from jose import jwt

from tests.conftest import AuthActions, assert_problem, bearer, token_from_url
from tests.identity.test_totp import code_at, enable_mfa, query, second_step
from tests.oidc_provider import CODE_TTL, Knobs, OidcProvider, User

PUBLIC_URL = "http://localhost"  # the Flask test client's host: the cookie is kept for this domain
RETURN_TO = "http://127.0.0.1:3000/app/signed-in"
COOKIE = "threshold_oidc"
LOGIN_CODE_TTL = 60
VERIFICATION_REQUESTED = "identity.email_verification.requested"
REGISTERED = "identity.account.registered"


def callback_uri(name: str) -> str:
    return f"{PUBLIC_URL}/v1/oidc/{name}/callback"


def fragment_of(location: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).fragment).items()}


def claims_of(tokens: dict) -> dict:
    return jwt.get_unverified_claims(tokens["access_token"])


class Federation:
    """Identity configured with some OpenID providers, and the browser steps of a sign-in."""

    def __init__(self, app, idps: dict[str, OidcProvider], outbox, database_url: str):
        self.app = app
        self.idps = idps
        self.outbox = outbox
        self.database_url = database_url
        self.client = app.test_client()
        self.auth = AuthActions(self.client, outbox)

    def idp(self, name: str = "google") -> OidcProvider:
        return self.idps[name]

    # --- the browser's steps -------------------------------------------------------------------------------

    def authorize(self, name: str = "google", return_to: str = RETURN_TO, browser=None):
        return (browser or self.client).get(f"/v1/oidc/{name}/authorize", query_string={"return_to": return_to})

    def consent(self, authorize_response) -> str:
        """Follow identity's redirect to the provider (real HTTP); returns where the provider sends the browser."""
        assert authorize_response.status_code == 302, authorize_response.get_data(as_text=True)
        response = requests.get(authorize_response.headers["Location"], allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text
        return response.headers["Location"]

    def callback(self, callback_url: str, browser=None):
        """The browser arrives at identity's callback (with its cookies)."""
        parts = urlsplit(callback_url)
        assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL, callback_url
        return (browser or self.client).get(parts.path, query_string=parts.query)

    def back_at_app(self, name: str = "google", return_to: str = RETURN_TO) -> dict:
        """The whole browser round trip; returns the fragment the app finds on return_to."""
        response = self.callback(self.consent(self.authorize(name, return_to)))
        assert response.status_code == 302, response.get_data(as_text=True)
        location = response.headers["Location"]
        assert location.split("#")[0] == return_to, location
        return fragment_of(location)

    def login_code(self, name: str = "google") -> str:
        fragment = self.back_at_app(name)
        assert "login_code" in fragment and "error" not in fragment, fragment
        return fragment["login_code"]

    def exchange(self, login_code: str):
        return self.client.post("/v1/sessions/oidc", json={"login_code": login_code})

    def sign_in(self, name: str = "google") -> dict:
        response = self.exchange(self.login_code(name))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert "access_token" in response.json, response.json
        return response.json

    # --- looking at the result -----------------------------------------------------------------------------

    def me(self, tokens: dict) -> dict:
        response = self.client.get("/v1/me", headers=bearer(tokens))
        assert response.status_code == 200, response.json
        return response.json

    def identities(self, tokens: dict) -> list[dict]:
        response = self.client.get("/v1/me/identities", headers=bearer(tokens))
        assert response.status_code == 200, response.json
        return response.json["items"]

    def count(self, table: str) -> int:
        return query(self.database_url, f"SELECT count(*) FROM {table}")[0][0]

    def login_codes_issued(self) -> int:
        return query(self.database_url, "SELECT count(*) FROM one_time_tokens WHERE purpose = 'oidc_login'")[0][0]


@pytest.fixture
def federation(make_identity_app, live_server, outbox, identity_db):
    """`federation(google={...options}, corp={...})` starts one provider per name and identity configured with
    them. Options: `auth_method` (what the provider registered), `user` (a User), `provider_secret` (the
    client secret it issued, random by default), any OIDC_PROVIDERS field
    (they win over the defaults, e.g. a token_endpoint_auth_method that differs from the provider's)."""

    def make(env: dict | None = None, **providers) -> Federation:
        providers = providers or {"google": {}}
        idps, config = {}, {}
        for name, options in providers.items():
            options = dict(options)
            auth_method = options.pop("auth_method", "client_secret_basic")
            user = options.pop("user", None)
            idp = OidcProvider.serve(live_server, client_id=f"{name}-client.apps.example",
                                     client_secret=options.pop("provider_secret", None),
                                     redirect_uris=[callback_uri(name)], auth_method=auth_method)
            if user is not None:
                idp.user = user
            idps[name] = idp
            config[name] = {"issuer": idp.issuer, "client_id": idp.client_id, "client_secret": idp.client_secret,
                            "token_endpoint_auth_method": auth_method, **options}
        app = make_identity_app(IDENTITY_PUBLIC_URL=PUBLIC_URL, OIDC_PROVIDERS=json.dumps(config), **(env or {}))
        return Federation(app, idps, outbox, identity_db)

    return make


@pytest.fixture
def fed(federation) -> Federation:
    """Identity with one provider, `google`, linking off and require_mfa off (the defaults)."""
    return federation()


# --- the start: GET /v1/oidc/<p>/authorize -----------------------------------------------------------------


def test_authorize_redirects_to_the_provider_with_pkce_state_nonce_and_a_browser_bound_cookie(fed):
    idp = fed.idp()

    response = fed.authorize()

    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{idp.issuer}/authorize"  # from discovery
    params = {key: values[0] for key, values in parse_qs(target.query).items()}
    assert params["response_type"] == "code"
    assert params["client_id"] == idp.client_id
    assert params["redirect_uri"] == callback_uri("google")
    assert "openid" in params["scope"].split()
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url of a SHA-256 digest, no padding
    assert len(params["state"]) >= 22 and len(params["nonce"]) >= 22
    assert params["state"] != params["nonce"]
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{COOKIE}="))
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "path=/v1/oidc/google/" in attributes
    assert "httponly" in attributes and "samesite=lax" in attributes

    # The provider is sent the verifier matching this challenge when the code is exchanged.
    fed.callback(fed.consent(response))
    (token_request,) = idp.token_requests
    verifier = token_request["code_verifier"]
    assert 43 <= len(verifier) <= 128
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert digest == params["code_challenge"]
    assert token_request["redirect_uri"] == callback_uri("google")


def test_every_sign_in_gets_its_own_state_nonce_and_challenge(fed):
    first = parse_qs(urlsplit(fed.authorize().headers["Location"]).query)
    second = parse_qs(urlsplit(fed.authorize().headers["Location"]).query)

    for name in ("state", "nonce", "code_challenge"):
        assert first[name] != second[name], name


def test_the_state_cookie_is_signed_and_a_forged_one_is_refused(fed):
    idp = fed.idp()
    callback_url = fed.consent(fed.authorize())
    state = parse_qs(urlsplit(callback_url).query)["state"][0]
    forged = base64.urlsafe_b64encode(json.dumps({"provider": "google", "state": state, "nonce": "n",
                                                  "code_verifier": "v" * 64,
                                                  "return_to": "https://evil.example/"}).encode()).decode()
    fed.client.set_cookie(COOKIE, forged, domain="localhost", path="/v1/oidc/google/")

    response = fed.callback(callback_url)

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "evil.example" not in response.headers.get("Location", "")
    assert idp.token_requests == []


def test_an_unknown_provider_is_404_problem(fed):
    response = fed.client.get("/v1/oidc/nope/authorize", query_string={"return_to": RETURN_TO})

    assert_problem(response, 404, "not_found")
    assert COOKIE not in response.headers.get("Set-Cookie", "")


def test_the_callback_of_an_unknown_provider_is_a_clear_page_not_a_500(fed):
    response = fed.client.get("/v1/oidc/nope/callback", query_string={"code": "abc", "state": "xyz"})

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Sign-in did not work" in response.get_data(as_text=True)


def test_authorize_needs_return_to(fed):
    response = fed.client.get("/v1/oidc/google/authorize")

    body = assert_problem(response, 422, "validation_failed")
    assert "return_to" in body["errors"]


# --- first and returning sign-in -----------------------------------------------------------------------------


def test_first_sign_in_creates_an_account_with_the_providers_verified_email_and_no_verification_mail(fed):
    idp = fed.idp()
    idp.user = User(sub="10001", email="Grace.Hopper@Example.com", email_verified=True, given_name="Grace",
                    family_name="Hopper")

    tokens = fed.sign_in()

    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    account = fed.me(tokens)
    assert account["email"] == "grace.hopper@example.com"
    assert account["email_verified"] is True
    assert (account["first_name"], account["last_name"]) == ("Grace", "Hopper")
    assert account["mfa_enabled"] is False
    claims = claims_of(tokens)
    assert claims["amr"] == ["fed"]
    assert claims["sub"] == account["id"] and claims["email_verified"] is True
    assert fed.outbox.events(VERIFICATION_REQUESTED) == []
    assert [e["data"]["account_id"] for e in fed.outbox.events(REGISTERED)] == [account["id"]]
    (identity,) = fed.identities(tokens)
    assert (identity["provider"], identity["issuer"], identity["subject"]) == ("google", idp.issuer, "10001")
    assert fed.count("accounts") == 1


def test_no_account_is_made_from_an_email_the_provider_does_not_vouch_for(fed):
    """Else the address's real owner could later verify, or reset into, an account someone else signs in to."""
    fed.idp().user = User(sub="10002", email="lin@example.com", email_verified=False)

    response = fed.exchange(fed.login_code())

    assert_problem(response, 403, "email_not_verified")
    assert fed.count("accounts") == 0
    assert fed.outbox.events(VERIFICATION_REQUESTED) == []


def test_first_sign_in_without_names_falls_back_to_the_email(fed):
    fed.idp().user = User(sub="10003", email="kay@example.com", given_name=None, family_name=None)

    account = fed.me(fed.sign_in())

    assert account["first_name"] == "kay" and account["last_name"]


def test_provider_names_that_break_the_name_rule_are_not_taken(fed):
    # A provider's profile name is the user's to choose; it reaches other people's mail (invitations)
    # like a name given at sign-up, so the same rule (shared/names.py) decides.
    fed.idp().user = User(sub="10005", email="www.kay@example.com", given_name="Prize at evil.com",
                          family_name="   ")

    account = fed.me(fed.sign_in())

    assert (account["first_name"], account["last_name"]) == ("-", "-")  # the local part reads as a link too


def test_a_provider_that_puts_the_profile_in_userinfo_only_signs_the_person_in(fed):
    """panva's oidc-provider, by default, keeps email and names out of the ID token; UserInfo has them."""
    idp = fed.idp()
    idp.user = User(sub="10006", email="ida@example.com", email_verified=True, given_name="Ida", family_name="Rhodes")
    idp.knobs.profile_in_userinfo_only = True

    account = fed.me(fed.sign_in())

    assert (account["email"], account["first_name"], account["last_name"]) == ("ida@example.com", "Ida", "Rhodes")
    assert account["email_verified"] is True
    assert idp.requests.count(("GET", "/userinfo")) == 1


def test_a_userinfo_answer_about_someone_else_is_refused(fed):
    idp = fed.idp()
    idp.user = User(sub="10007", email="eve@example.com")
    idp.knobs.profile_in_userinfo_only = True
    idp.knobs.userinfo_sub = "someone-else"

    fragment = fed.back_at_app()

    assert fragment["error"] == "oidc_failed" and "login_code" not in fragment
    assert fed.count("accounts") == 0


def test_a_provider_that_shares_no_email_cannot_create_an_account(fed):
    fed.idp().user = User(sub="10004", email=None)

    response = fed.exchange(fed.login_code())

    assert_problem(response, 400, "email_missing")
    assert fed.count("accounts") == 0 and fed.count("federated_identities") == 0


@pytest.mark.parametrize("email", ["jos\u00e9@example.com", '"kay"@example.com', "kay@[192.0.2.1]"])
def test_a_vouched_address_we_cannot_mail_creates_no_account(fed, email):
    fed.idp().user = User(sub="10005", email=email, email_verified=True)

    response = fed.exchange(fed.login_code())

    assert_problem(response, 400, "email_missing")
    assert fed.count("accounts") == 0 and fed.count("federated_identities") == 0


def test_a_vouched_internationalised_domain_makes_an_account_in_ascii(fed):
    fed.idp().user = User(sub="10006", email="Kay@B\u00fccher.de", email_verified=True)

    assert fed.me(fed.sign_in())["email"] == "kay@xn--bcher-kva.de"


def test_returning_sign_in_lands_on_the_same_account_keyed_by_issuer_and_subject(fed):
    idp = fed.idp()
    idp.user = User(sub="20001", email="ada@example.com")
    first = fed.me(fed.sign_in())

    idp.user = User(sub="20001", email="ada.lovelace@example.org", given_name="Augusta")  # changed at the provider
    second_tokens = fed.sign_in()

    second = fed.me(second_tokens)
    assert second["id"] == first["id"]
    assert second["email"] == "ada@example.com"
    assert claims_of(second_tokens)["amr"] == ["fed"]
    assert fed.count("accounts") == 1 and fed.count("federated_identities") == 1


def test_another_subject_with_the_same_issuer_is_another_person(fed):
    idp = fed.idp()
    idp.user = User(sub="20002", email="one@example.com")
    one = fed.me(fed.sign_in())
    idp.user = User(sub="20003", email="two@example.com")
    two = fed.me(fed.sign_in())

    assert one["id"] != two["id"]
    assert fed.count("accounts") == 2


def test_two_providers_at_once_each_from_its_own_discovery_and_keyed_by_its_own_issuer(federation):
    fed = federation(google={}, corp={"auth_method": "client_secret_post"})
    google, corp = fed.idp("google"), fed.idp("corp")
    google.user = User(sub="42", email="alice@gmail.example")
    corp.user = User(sub="42", email="alice@corp.example")  # the same `sub` at another issuer

    to_google = urlsplit(fed.authorize("google").headers["Location"])
    to_corp = urlsplit(fed.authorize("corp").headers["Location"])
    assert f"{to_google.scheme}://{to_google.netloc}" == google.issuer
    assert f"{to_corp.scheme}://{to_corp.netloc}" == corp.issuer
    assert parse_qs(to_corp.query)["redirect_uri"] == [callback_uri("corp")]

    at_google = fed.sign_in("google")
    at_corp = fed.sign_in("corp")

    assert fed.me(at_google)["email"] == "alice@gmail.example"
    assert fed.me(at_corp)["email"] == "alice@corp.example"
    assert fed.me(at_google)["id"] != fed.me(at_corp)["id"]
    assert [(i["provider"], i["issuer"]) for i in fed.identities(at_corp)] == [("corp", corp.issuer)]
    assert google.count("/token", "POST") == 1 and corp.count("/token", "POST") == 1


def test_a_state_from_one_provider_is_refused_at_the_callback_of_another(federation):
    fed = federation(google={}, corp={})
    callback_url = fed.consent(fed.authorize("google"))
    fed.authorize("corp")  # the browser has a cookie for corp too, with its own state

    response = fed.client.get("/v1/oidc/corp/callback", query_string=urlsplit(callback_url).query)

    assert response.status_code == 400 and response.mimetype == "text/html"
    assert fed.idp("corp").token_requests == [] and fed.idp("google").token_requests == []


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_the_client_authenticates_at_the_token_endpoint_as_configured(federation, method):
    fed = federation(google={"auth_method": method})
    idp = fed.idp()

    tokens = fed.sign_in()

    assert claims_of(tokens)["amr"] == ["fed"]
    (token_request,) = idp.token_requests
    if method == "client_secret_post":
        assert token_request["client_id"] == idp.client_id
        assert token_request["client_secret"] == idp.client_secret
    else:
        assert "client_secret" not in token_request


@pytest.mark.parametrize("provider_wants, identity_uses", [("client_secret_post", "client_secret_basic"),
                                                           ("client_secret_basic", "client_secret_post")])
def test_a_client_authentication_the_provider_refuses_ends_on_an_error_redirect(federation, provider_wants,
                                                                                  identity_uses):
    fed = federation(google={"auth_method": provider_wants, "token_endpoint_auth_method": identity_uses})

    fragment = fed.back_at_app()

    assert fragment["error"] == "oidc_failed" and "login_code" not in fragment
    assert fed.idp().token_errors == ["invalid_client"]
    assert fed.count("accounts") == 0


def test_a_wrong_client_secret_ends_on_an_error_redirect(federation):
    fed = federation(google={"client_secret": "not-the-secret"})

    fragment = fed.back_at_app()

    assert fragment["error"] == "oidc_failed"
    assert fed.idp().token_errors == ["invalid_client"]
    assert fed.count("accounts") == 0


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_secret_with_plus_percent_and_colon_authenticates_by_either_method(federation, method):
    fed = federation(google={"auth_method": method, "provider_secret": "a+b%2Bc:d e"})

    tokens = fed.sign_in()

    assert claims_of(tokens)["amr"] == ["fed"] and fed.idp().token_errors == []


def test_a_refused_token_request_logs_the_providers_error_code_and_no_secret(federation, caplog):
    fed = federation(google={"client_secret": "not-the-secret"})

    fed.back_at_app()

    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "oidc_token_refused"]
    assert record.error == "invalid_client" and record.provider == "google" and record.status == 401
    assert "not-the-secret" not in caplog.text and fed.idp().client_secret not in caplog.text


# --- 2FA on this path ---------------------------------------------------------------------------------------


def test_no_second_factor_is_asked_even_when_the_account_has_2fa_on(federation, clock):
    fed = federation(google={"allow_linking": True})
    ada = enable_mfa(fed.auth, clock, "ada@example.com")
    fed.idp().user = User(sub="30001", email="ada@example.com", email_verified=True)

    response = fed.exchange(fed.login_code())

    assert response.status_code == 200, response.json
    assert "mfa_required" not in response.json
    claims = claims_of(response.json)
    assert claims["sub"] == ada.id and claims["amr"] == ["fed"]


def test_require_mfa_asks_for_the_second_factor_and_completing_it_gives_fed_and_otp(federation, clock):
    fed = federation(google={"allow_linking": True, "require_mfa": True})
    ada = enable_mfa(fed.auth, clock, "ada@example.com")
    fed.idp().user = User(sub="30002", email="ada@example.com", email_verified=True)

    response = fed.exchange(fed.login_code())

    assert response.status_code == 200, response.json
    assert response.json["mfa_required"] is True
    assert "access_token" not in response.json and "refresh_token" not in response.json
    assert "totp" in response.json["methods"]
    done = second_step(fed.client, response.json["mfa_token"], code_at(ada.secret, clock.now))
    assert done.status_code == 200, done.json
    claims = claims_of(done.json)
    assert claims["sub"] == ada.id and claims["amr"] == ["fed", "otp"]


def test_require_mfa_with_a_wrong_code_gives_no_tokens(federation, clock):
    fed = federation(google={"allow_linking": True, "require_mfa": True})
    ada = enable_mfa(fed.auth, clock, "ada@example.com")
    fed.idp().user = User(sub="30003", email="ada@example.com", email_verified=True)
    mfa_token = fed.exchange(fed.login_code()).json["mfa_token"]
    right = code_at(ada.secret, clock.now)

    response = second_step(fed.client, mfa_token, f"{(int(right) + 1) % 1_000_000:06d}")

    assert_problem(response, 401, "invalid_code")


def test_require_mfa_does_not_block_an_account_without_2fa(federation):
    fed = federation(google={"require_mfa": True})
    fed.idp().user = User(sub="30004", email="new@example.com")

    tokens = fed.sign_in()

    assert claims_of(tokens)["amr"] == ["fed"]


# --- linking to an existing password account ---------------------------------------------------------------


def test_linking_allowed_signs_in_to_the_existing_password_account(federation):
    fed = federation(google={"allow_linking": True})
    ada, _ = fed.auth.verified_account("ada@example.com")
    fed.idp().user = User(sub="40001", email="ADA@example.com", email_verified=True, given_name="Someone")

    tokens = fed.sign_in()

    account = fed.me(tokens)
    assert account["id"] == ada["id"]
    assert account["first_name"] == ada["first_name"]  # the provider's names do not overwrite the account
    assert claims_of(tokens)["amr"] == ["fed"]
    assert fed.count("accounts") == 1
    assert [i["subject"] for i in fed.identities(tokens)] == ["40001"]
    # the password still works too
    assert fed.auth.sign_in("ada@example.com").status_code == 200


def test_linking_allowed_does_not_touch_an_unverified_password_account(federation):
    """Pre-account-hijacking: someone registers the victim's address with a password of theirs and never
    verifies it; the victim's later sign-in with the provider must not land in (and unlock) that account."""
    fed = federation(google={"allow_linking": True})
    squatter = fed.auth.sign_up("victim@example.com", password="squatters password")
    fed.idp().user = User(sub="40002", email="victim@example.com", email_verified=True)

    response = fed.exchange(fed.login_code())

    body = assert_problem(response, 409, "account_exists")
    assert fed.count("federated_identities") == 0 and fed.count("accounts") == 1
    assert query(fed.database_url, "SELECT email_verified FROM accounts WHERE id = :id",
                 id=squatter["id"])[0][0] in (False, 0)

    # The owner of the address proves it (password reset by mail), which shuts the squatter out, then links.
    assert fed.client.post("/v1/password-resets", json={"email": "victim@example.com"}).status_code == 202
    reset_url = fed.outbox.last("identity.password_reset.requested", "victim@example.com")["data"]["reset_url"]
    confirmed = fed.client.post("/v1/password-resets/confirm", json={"token": token_from_url(reset_url),
                                                                      "new_password": "the owners own password"})
    assert confirmed.status_code == 204, confirmed.json
    assert fed.auth.sign_in("victim@example.com", "squatters password").status_code == 401
    tokens = fed.auth.sign_in("victim@example.com", "the owners own password").json
    linked = fed.client.post("/v1/me/identities", json={"link_code": body["link_code"]}, headers=bearer(tokens))
    assert linked.status_code == 201, linked.json
    assert claims_of(fed.sign_in())["sub"] == squatter["id"]


@pytest.mark.parametrize("allow_linking, email_verified", [(False, True), (True, False)],
                         ids=["linking-off", "email-not-vouched"])
def test_linking_refused_answers_409_with_a_link_code_then_linking_from_the_profile_works(
        federation, allow_linking, email_verified):
    fed = federation(google={"allow_linking": allow_linking})
    ada, password_tokens = fed.auth.verified_account("ada@example.com")
    before = fed.me(password_tokens)
    fed.idp().user = User(sub="50001", email="ada@example.com", email_verified=email_verified,
                          given_name="Mallory", family_name="M")

    refused = fed.exchange(fed.login_code())

    body = assert_problem(refused, 409, "account_exists")
    assert "password" in body["detail"].lower()
    link_code = body["link_code"]
    assert isinstance(link_code, str) and len(link_code) >= 20
    assert "access_token" not in body
    assert fed.count("accounts") == 1 and fed.count("federated_identities") == 0
    assert fed.me(password_tokens) == before  # nothing about the account changed

    # Sign in with the password, then link from the profile.
    tokens = fed.auth.sign_in("ada@example.com").json
    linked = fed.client.post("/v1/me/identities", json={"link_code": link_code}, headers=bearer(tokens))
    assert linked.status_code == 201, linked.json
    (identity,) = linked.json["items"]
    assert (identity["provider"], identity["issuer"], identity["subject"]) == ("google", fed.idp().issuer, "50001")
    again = fed.client.post("/v1/me/identities", json={"link_code": link_code}, headers=bearer(tokens))
    assert_problem(again, 400, "token_invalid")

    # From now on the provider's sign-in lands on that account.
    via_provider = fed.sign_in()
    assert claims_of(via_provider)["sub"] == ada["id"]
    assert claims_of(via_provider)["amr"] == ["fed"]
    assert fed.count("accounts") == 1


def test_linking_from_the_profile_needs_a_signed_in_account(federation):
    fed = federation(google={})
    fed.auth.verified_account("ada@example.com")
    fed.idp().user = User(sub="50002", email="ada@example.com")
    link_code = fed.exchange(fed.login_code()).json["link_code"]

    response = fed.client.post("/v1/me/identities", json={"link_code": link_code})

    assert response.status_code == 401
    assert fed.count("federated_identities") == 0


def test_a_login_code_is_not_a_link_code(fed):
    _account, tokens = fed.auth.verified_account("ada@example.com")
    fed.idp().user = User(sub="50003", email="someone@example.com")

    response = fed.client.post("/v1/me/identities", json={"link_code": fed.login_code()}, headers=bearer(tokens))

    assert_problem(response, 400, "token_invalid")
    assert fed.count("federated_identities") == 0


def test_an_identity_linked_to_one_account_cannot_be_linked_to_another(federation):
    fed = federation(google={})
    fed.auth.verified_account("ada@example.com")
    _bob, bob_tokens = fed.auth.verified_account("bob@example.com")
    fed.idp().user = User(sub="50004", email="ada@example.com")
    first_code = fed.exchange(fed.login_code()).json["link_code"]
    second_code = fed.exchange(fed.login_code()).json["link_code"]
    ada_tokens = fed.auth.sign_in("ada@example.com").json
    assert fed.client.post("/v1/me/identities", json={"link_code": first_code},
                           headers=bearer(ada_tokens)).status_code == 201

    response = fed.client.post("/v1/me/identities", json={"link_code": second_code}, headers=bearer(bob_tokens))

    assert_problem(response, 409, "identity_linked_elsewhere")
    assert fed.identities(bob_tokens) == []


# --- the login code -----------------------------------------------------------------------------------------


def test_a_login_code_works_once(fed):
    login_code = fed.login_code()
    assert fed.exchange(login_code).status_code == 200

    replayed = fed.exchange(login_code)

    assert_problem(replayed, 400, "token_invalid")
    assert fed.count("sessions") == 1


def test_a_login_code_expires_after_60_seconds_and_creates_nothing(fed, clock):
    fed.idp().user = User(sub="60001", email="late@example.com")
    login_code = fed.login_code()
    clock.advance(LOGIN_CODE_TTL + 1)

    response = fed.exchange(login_code)

    assert_problem(response, 400, "token_expired")
    assert fed.count("accounts") == 0


def test_a_login_code_still_works_just_before_it_expires(fed, clock):
    login_code = fed.login_code()
    clock.advance(LOGIN_CODE_TTL - 1)

    assert fed.exchange(login_code).status_code == 200


def test_an_unknown_login_code_is_token_invalid(fed):
    assert_problem(fed.exchange("x" * 43), 400, "token_invalid")


# --- errors at the provider ----------------------------------------------------------------------------------


@pytest.mark.parametrize("error, expected", [("access_denied", "access_denied"),
                                             ("Not A Code <script>", "provider_error")])
def test_denied_consent_goes_back_to_the_app_with_the_error_and_creates_nothing(fed, error, expected):
    idp = fed.idp()
    idp.knobs = Knobs(deny=error)

    response = fed.callback(fed.consent(fed.authorize()))

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.split("#")[0] == RETURN_TO
    fragment = fragment_of(location)
    assert fragment["error"] == expected and "login_code" not in fragment
    assert "<script>" not in location
    assert idp.token_requests == []
    assert fed.count("accounts") == 0 and fed.login_codes_issued() == 0


@pytest.mark.parametrize("knobs", [
    pytest.param(Knobs(nonce="not-the-nonce-identity-sent"), id="wrong-nonce"),
    pytest.param(Knobs(audience="another-client.apps.example"), id="wrong-audience"),
    pytest.param(Knobs(expired=True), id="expired-id-token"),
    pytest.param(Knobs(signing="unknown_key"), id="unknown-signing-key"),
    pytest.param(Knobs(signing="forged"), id="forged-signature-under-a-published-kid"),
    pytest.param(Knobs(issuer="https://accounts.evil.example"), id="wrong-issuer"),
])
def test_an_id_token_that_fails_verification_ends_on_an_error_redirect_and_creates_nothing(fed, knobs):
    idp = fed.idp()
    idp.knobs = knobs

    response = fed.callback(fed.consent(fed.authorize()))

    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.split("#")[0] == RETURN_TO
    fragment = fragment_of(location)
    assert fragment["error"] == "oidc_failed" and "login_code" not in fragment
    assert fragment.get("error_description")
    assert len(idp.issued_id_tokens) == 1  # the provider did answer; identity refused its ID token
    assert fed.login_codes_issued() == 0
    assert fed.count("accounts") == 0 and fed.count("federated_identities") == 0


def test_the_same_provider_behaving_again_signs_in(fed):
    """The control for the test above: only the knob made the difference."""
    idp = fed.idp()
    idp.knobs = Knobs(nonce="wrong")
    assert fed.back_at_app()["error"] == "oidc_failed"
    idp.knobs = Knobs()

    assert claims_of(fed.sign_in())["amr"] == ["fed"]


@pytest.mark.parametrize("azp, accepted", [(None, True), ("another-client.apps.example", False)],
                         ids=["azp-is-us", "azp-is-another-party"])
def test_an_id_token_for_several_audiences_must_name_us_as_authorized_party(fed, azp, accepted):
    idp = fed.idp()
    idp.knobs = Knobs(audience=[idp.client_id, "another-client.apps.example"], azp=azp)

    fragment = fed.back_at_app()

    if accepted:
        assert "login_code" in fragment, fragment
    else:
        assert fragment["error"] == "oidc_failed" and "login_code" not in fragment
        assert fed.login_codes_issued() == 0


def test_a_code_that_expired_at_the_provider_ends_on_an_error_redirect(fed):
    idp = fed.idp()
    callback_url = fed.consent(fed.authorize())
    idp.advance(CODE_TTL + 1)

    response = fed.callback(callback_url)

    assert response.status_code == 302
    assert fragment_of(response.headers["Location"])["error"] == "oidc_failed"
    assert idp.token_errors == ["invalid_grant"]
    assert fed.count("accounts") == 0


def test_a_code_from_another_browsers_sign_in_is_refused_by_pkce(fed):
    """Code injection: the attacker's code (made for the attacker's challenge) arrives with the victim's state."""
    idp = fed.idp()
    victim_callback = urlsplit(fed.consent(fed.authorize()))
    attacker = fed.app.test_client()
    attacker_callback = urlsplit(fed.consent(fed.authorize(browser=attacker)))
    injected = urlencode({"code": parse_qs(attacker_callback.query)["code"][0],
                          "state": parse_qs(victim_callback.query)["state"][0]})

    response = fed.client.get(victim_callback.path, query_string=injected)

    assert response.status_code == 302
    assert fragment_of(response.headers["Location"])["error"] == "oidc_failed"
    assert idp.token_errors == ["invalid_grant"]
    assert fed.login_codes_issued() == 0


def test_a_wrong_state_is_a_clear_400_page_and_the_code_is_not_exchanged(fed):
    idp = fed.idp()
    callback = urlsplit(fed.consent(fed.authorize()))
    params = {key: values[0] for key, values in parse_qs(callback.query).items()}
    params["state"] = "forged-state-forged-state"

    response = fed.client.get(callback.path, query_string=params)

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Sign-in did not work" in response.get_data(as_text=True)
    assert idp.token_requests == []
    assert fed.count("accounts") == 0


def test_a_missing_state_is_a_clear_400_page(fed):
    callback = urlsplit(fed.consent(fed.authorize()))
    code = parse_qs(callback.query)["code"][0]

    response = fed.client.get(callback.path, query_string={"code": code})

    assert response.status_code == 400 and response.mimetype == "text/html"
    assert fed.idp().token_requests == []


def test_a_callback_in_a_browser_without_the_cookie_is_a_clear_400_page(fed):
    """Login CSRF: the attacker's finished sign-in cannot be completed in the victim's browser."""
    idp = fed.idp()
    callback_url = fed.consent(fed.authorize())

    response = fed.callback(callback_url, browser=fed.app.test_client())

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Sign-in did not work" in response.get_data(as_text=True)
    assert idp.token_requests == []
    assert fed.count("accounts") == 0


def test_the_callback_works_once_per_sign_in(fed):
    idp = fed.idp()
    callback_url = fed.consent(fed.authorize())
    first = fed.callback(callback_url)
    assert "login_code" in fragment_of(first.headers["Location"])
    assert any(c.startswith(f"{COOKIE}=;") and "/v1/oidc/google/" in c for c in first.headers.getlist("Set-Cookie"))

    replayed = fed.callback(callback_url)

    assert replayed.status_code == 400 and replayed.mimetype == "text/html"
    assert len(idp.token_requests) == 1


# --- return_to and the allow-list ----------------------------------------------------------------------------


@pytest.mark.parametrize("return_to", [
    "https://evil.com/",
    "http://evil.com/",
    "http://127.0.0.1:80@evil.com/",
    "http://127.0.0.1:3000@evil.com/",
    "http://user:pass@127.0.0.1:3000/",
    "http://127.0.0.1:3000\\@evil.com/",
    "http://127.0.0.1.evil.com:3000/",
    "http://localhost.evil.com/",
    "https://127.0.0.1:3000/",  # the allow-list names http only
    "//evil.com/",
    "/relative/path",
    "javascript:alert(document.cookie)",
    "javascript://127.0.0.1:3000/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://[::1]:3000/",
    f"http://127.0.0.1:3000/{'a' * 2100}",
])
def test_a_return_to_off_the_allow_list_is_refused_before_the_provider(fed, return_to):
    idp = fed.idp()

    response = fed.authorize(return_to=return_to)

    if len(return_to) > 2000:
        assert_problem(response, 422, "validation_failed")
    else:
        assert_problem(response, 400, "return_to_not_allowed")
    assert "Location" not in response.headers
    assert COOKIE not in response.headers.get("Set-Cookie", "")
    assert idp.count("/authorize") == 0


@pytest.mark.parametrize("return_to", ["http://127.0.0.1:3000/", "http://localhost:8080/app?tab=1",
                                       "http://127.0.0.1:5173/signed-in#old-fragment"])
def test_the_default_allow_list_lets_loopback_apps_in(fed, return_to):
    response = fed.callback(fed.consent(fed.authorize(return_to=return_to)))

    location = response.headers["Location"]
    assert location.split("#")[0] == return_to.split("#")[0]
    assert "login_code" in fragment_of(location) and "old-fragment" not in location


def test_a_configured_allow_list_is_exact_about_host_scheme_and_path(federation):
    fed = federation(env={"ALLOWED_RETURN_URLS": "https://app.example.com/signed-in"})

    fragment = fed.back_at_app(return_to="https://app.example.com/signed-in")
    assert "login_code" in fragment

    for refused in ("http://127.0.0.1:3000/", "http://app.example.com/signed-in",
                    "https://app.example.com/signed-in/other", "https://app.example.com.evil.com/signed-in",
                    "https://app.example.com:8443/signed-in", "https://evil.com@app.example.com/signed-in"):
        assert_problem(fed.authorize(return_to=refused), 400, "return_to_not_allowed")


# --- discovery: on first use, cached, and never at start-up -------------------------------------------------


def test_discovery_and_keys_are_fetched_once_and_cached(fed):
    idp = fed.idp()
    idp.user = User(sub="70001", email="one@example.com")
    fed.sign_in()
    idp.user = User(sub="70002", email="two@example.com")
    fed.sign_in()
    fed.authorize()

    assert idp.count("/.well-known/openid-configuration") == 1
    assert idp.count("/jwks") == 1
    assert idp.count("/token", "POST") == 2


def test_creating_the_app_touches_no_network_and_a_dead_provider_only_fails_its_authorize(make_identity_app,
                                                                                          live_server):
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    alive = OidcProvider.serve(live_server, redirect_uris=[callback_uri("alive")])
    providers = {
        "dead": {"issuer": f"http://127.0.0.1:{dead_port}", "client_id": "c", "client_secret": "s"},
        "alive": {"issuer": alive.issuer, "client_id": alive.client_id, "client_secret": alive.client_secret},
    }

    app = make_identity_app(IDENTITY_PUBLIC_URL=PUBLIC_URL, OIDC_PROVIDERS=json.dumps(providers))

    assert alive.requests == []
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert alive.requests == []
    response = client.get("/v1/oidc/dead/authorize", query_string={"return_to": RETURN_TO})
    assert_problem(response, 503, "provider_unavailable")
    assert COOKIE not in response.headers.get("Set-Cookie", "")
    assert client.get("/v1/oidc/alive/authorize", query_string={"return_to": RETURN_TO}).status_code == 302


def test_a_discovery_document_naming_another_issuer_is_refused(fed):
    fed.idp().knobs = Knobs(discovery_issuer="https://accounts.evil.example")

    response = fed.authorize()

    assert_problem(response, 503, "provider_unavailable")
    assert "Location" not in response.headers


@pytest.mark.parametrize("missing", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
def test_a_discovery_document_without_an_endpoint_is_provider_unavailable_not_a_500(fed, missing):
    fed.idp().knobs = Knobs(discovery_without=(missing,))

    response = fed.authorize()

    assert_problem(response, 503, "provider_unavailable")
    assert COOKIE not in response.headers.get("Set-Cookie", "")
