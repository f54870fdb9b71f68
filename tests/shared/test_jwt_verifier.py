"""The shared token verifier as a product service uses it (SECURITY.md, JWTs).

Identity runs over real HTTP; a tiny product app builds `Verifier(JwksClient(jwks_url).get, ...)`,
protects a route with `bearer_required()` and maps `TokenRejected` to 401 the way tenancy does, and
every attack below is sent to it over HTTP. Forged tokens are assembled byte by byte here, with the
`cryptography` package (not python-jose), so the library under test never helps build its own
attacks. Where a forgery needs identity's real signing key, the key comes from the identity app's
loaded key store.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from flask import Flask, g, jsonify

from shared import auth as shared_auth
from shared.errors import ErrorMap
from shared.jwt import MAX_LEEWAY, JwksClient, TokenRejected, Verifier, load_public_key, sign
from shared.service_app import build_app
from tests.conftest import bearer

AUDIENCE = "threshold"
JWKS_PATH = "/.well-known/jwks.json"
# RFC 6750 section 3: error_description is a quoted string of NQSCHAR (no '"' and no '\').
BEARER_CHALLENGE = re.compile(
    r'^Bearer error="invalid_token"(, error_description="[\x20\x21\x23-\x5b\x5d-\x7e]*")?$'
)


# --- forging tokens -------------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def compact(header: dict, claims, signer=None) -> str:
    """A JWS compact serialization of exactly these header and claims; `signer(bytes) -> bytes`."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = signer(signing_input.encode()) if signer is not None else b""
    return f"{signing_input}.{b64url(signature)}"


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def unverified_parts(token: str) -> tuple[dict, dict]:
    header, payload, _signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def ecdsa_signer(private_key: ec.EllipticCurvePrivateKey, hash_algorithm):
    size = (private_key.curve.key_size + 7) // 8

    def signer(data: bytes) -> bytes:
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hash_algorithm)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return signer


def rsa_signer(private_key: rsa.RSAPrivateKey):
    return lambda data: private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def hmac_signer(secret: bytes):
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def ec_public_jwk(private_key: ec.EllipticCurvePrivateKey, kid: str) -> dict:
    numbers = private_key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")), "use": "sig", "alg": "ES256", "kid": kid}


def self_signed_certificate_pem(private_key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker.example")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
                   .sign(private_key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM)


# --- servers --------------------------------------------------------------------------------------

class CountingMiddleware:
    """Counts requests for each path that reach a WSGI app (how often verifiers fetch a JWKS)."""

    def __init__(self, app):
        self.app = app
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            path = environ.get("PATH_INFO", "")
            self.hits[path] = self.hits.get(path, 0) + 1
        return self.app(environ, start_response)

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(self.hits.values()) if path is None else self.hits.get(path, 0)


def product_app(jwks_url: str, issuer: str, algorithms=("ES256",), **client_options) -> Flask:
    """What a product service builds: a JWKS-backed verifier and one protected route."""
    app, _api = build_app("product", "Product", "A product service behind Threshold tokens.",
                          ErrorMap({TokenRejected: 401}), readiness={})
    jwks = JwksClient(jwks_url, **client_options)
    app.extensions[shared_auth.EXTENSION] = Verifier(jwks.get, issuer=issuer, audience=AUDIENCE,
                                                     algorithms=algorithms)
    app.extensions["test.jwks"] = jwks

    @app.get("/v1/things")
    @shared_auth.bearer_required()
    def things():
        return jsonify(claims=g.claims)

    return app


def key_server_app(jwks: dict, certificate_pem: bytes = b"") -> Flask:
    """An attacker's (or a foreign issuer's) key server."""
    app = Flask("key_server")

    @app.get("/jwks.json")
    def jwks_document():
        return jsonify(jwks)

    @app.get("/cert.pem")
    def certificate():
        return certificate_pem, 200, {"Content-Type": "application/x-pem-file"}

    return app


@pytest.fixture
def identity(identity_app, live_server):
    """Identity over real HTTP, with a count of the requests that reach it, and its live signing key."""
    counter = CountingMiddleware(identity_app)
    server = live_server(counter)
    runtime = identity_app.extensions["threshold.identity"]
    return SimpleNamespace(app=identity_app, server=server, url=server.url, jwks_url=f"{server.url}{JWKS_PATH}",
                           counter=counter, issuer=runtime.settings.issuer, key=runtime.keys.signing_key())


@pytest.fixture
def make_product(identity, live_server):
    def make(jwks_url: str | None = None, issuer: str | None = None, **options):
        app = product_app(jwks_url or identity.jwks_url, issuer or identity.issuer, **options)
        server = live_server(app)
        http = requests.Session()

        def call(token: str | None = None, headers: dict | None = None) -> requests.Response:
            sent = dict(headers or {})
            if token is not None:
                sent["Authorization"] = f"Bearer {token}"
            return http.get(f"{server.url}/v1/things", headers=sent, timeout=10)

        return SimpleNamespace(app=app, server=server, call=call, jwks=app.extensions["test.jwks"])

    return make


@pytest.fixture
def product(make_product):
    return make_product()


@pytest.fixture
def signed_in(auth):
    """A real account and the token pair identity issued for it."""
    account, tokens = auth.verified_account()
    _header, claims = unverified_parts(tokens["access_token"])
    return SimpleNamespace(account=account, tokens=tokens, claims=claims)


@pytest.fixture
def attacker(live_server):
    """An attacker's EC key, published at an attacker-controlled JWKS and certificate URL."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = ec_public_jwk(private_key, "attacker-key")
    counter = CountingMiddleware(key_server_app({"keys": [jwk]}, self_signed_certificate_pem(private_key)))
    server = live_server(counter)
    return SimpleNamespace(key=private_key, jwk=jwk, kid=jwk["kid"], signer=ecdsa_signer(private_key, hashes.SHA256()),
                           server=server, counter=counter)


def real_signer(identity):
    """Signs with identity's own current private key (what only identity should be able to do)."""
    return identity.key.signing.sign


def real_header(identity, **changes) -> dict:
    header = {"alg": "ES256", "kid": identity.key.kid, "typ": "at+jwt"}
    header.update(changes)
    return {name: value for name, value in header.items() if value is not None}


def fresh_claims(signed_in, **changes) -> dict:
    """The claims of a real access token, re-dated to now, with `changes` (None removes a claim)."""
    now = int(time.time())
    claims = dict(signed_in.claims, iat=now, exp=now + 600)
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def assert_rejected(response: requests.Response) -> dict:
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "invalid_token"
    assert "claims" not in body
    challenge = response.headers.get("WWW-Authenticate", "")
    assert BEARER_CHALLENGE.match(challenge), challenge
    return body


# --- the happy path -------------------------------------------------------------------------------

def test_a_real_access_token_is_accepted_with_its_claims(product, signed_in, identity):
    response = product.call(signed_in.tokens["access_token"])

    assert response.status_code == 200, response.text
    claims = response.json()["claims"]
    assert claims["sub"] == signed_in.account["id"]
    assert claims["email"] == signed_in.account["email"]
    assert claims["iss"] == identity.issuer
    assert claims["aud"] == AUDIENCE


def test_a_token_forged_with_identitys_key_and_good_claims_is_accepted(product, signed_in, identity):
    """The positive control for every forgery below: the forging helpers themselves make valid tokens."""
    token = compact(real_header(identity), fresh_claims(signed_in), real_signer(identity))

    assert product.call(token).status_code == 200
    signed_by_shared_helper = sign(fresh_claims(signed_in), identity.key.signing, identity.key.kid, "ES256")
    assert product.call(signed_by_shared_helper).status_code == 200


def test_media_type_form_of_the_access_token_type_is_accepted(product, signed_in, identity):
    token = compact(real_header(identity, typ="application/at+jwt"), fresh_claims(signed_in), real_signer(identity))

    assert product.call(token).status_code == 200


# --- algorithm attacks ----------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_unsigned_alg_none_token_is_refused(product, signed_in, identity, alg):
    assert_rejected(product.call(compact(real_header(identity, alg=alg), fresh_claims(signed_in))))


@pytest.mark.parametrize("alg", ["none", "nOnE"])
def test_alg_none_with_the_real_signature_attached_is_refused(product, signed_in, identity, alg):
    good = compact(real_header(identity), fresh_claims(signed_in), real_signer(identity))
    header, payload, signature = good.split(".")
    forged = f"{b64url_json(real_header(identity, alg=alg))}.{payload}.{signature}"

    assert_rejected(product.call(forged))


def _public_key_secrets(identity) -> dict[str, bytes]:
    public_key = serialization.load_pem_public_key(identity.key.verifying.to_pem())
    return {
        "pem": public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "der": public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "jwk-json": json.dumps(identity.key.public_jwk).encode(),
        "jwk-json-compact": json.dumps(identity.key.public_jwk, separators=(",", ":")).encode(),
    }


@pytest.mark.parametrize("form", ["pem", "der", "jwk-json", "jwk-json-compact"])
def test_hs256_signed_with_the_public_key_is_refused(product, signed_in, identity, form):
    secret = _public_key_secrets(identity)[form]
    token = compact(real_header(identity, alg="HS256"), fresh_claims(signed_in), hmac_signer(secret))

    assert_rejected(product.call(token))


@pytest.mark.parametrize("form", ["pem", "der", "jwk-json"])
def test_hs256_with_the_public_key_is_refused_even_if_a_service_lists_hs256(make_product, signed_in, identity, form):
    """A careless service that adds HS256 to its list is still safe: the key's own algorithm decides."""
    product = make_product(algorithms=("ES256", "HS256"))
    secret = _public_key_secrets(identity)[form]
    token = compact(real_header(identity, alg="HS256"), fresh_claims(signed_in), hmac_signer(secret))

    assert_rejected(product.call(token))
    assert product.call(signed_in.tokens["access_token"]).status_code == 200


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES384", "ES512", "HS512", "EdDSA"])
def test_an_algorithm_off_the_list_is_refused(product, signed_in, identity, alg):
    if alg.startswith(("RS", "PS")):
        signer = rsa_signer(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif alg == "ES384":
        signer = ecdsa_signer(ec.generate_private_key(ec.SECP384R1()), hashes.SHA384())
    elif alg == "ES512":
        signer = ecdsa_signer(ec.generate_private_key(ec.SECP521R1()), hashes.SHA512())
    else:
        signer = hmac_signer(b"attacker-chosen-secret")
    token = compact(real_header(identity, alg=alg), fresh_claims(signed_in), signer)

    assert_rejected(product.call(token))


# --- claims ---------------------------------------------------------------------------------------

CLAIM_PROBLEMS = {
    "wrong iss": {"iss": "https://evil.example"},
    "iss with trailing slash": "TRAILING_SLASH_ISS",
    "missing iss": {"iss": None},
    "wrong aud": {"aud": "another-audience"},
    "aud list without ours": {"aud": ["another-audience", "yet-another"]},
    "missing aud": {"aud": None},
    "missing exp": {"exp": None},
    "exp not a number": {"exp": "tomorrow"},
    "exp null": {"exp": "NULL"},
    "exp a list": {"exp": [9999999999]},
    "exp infinite": {"exp": float("inf")},
    "exp an object": {"exp": {"at": 9999999999}},
    "missing iat": {"iat": None},
    "iat null": {"iat": "NULL"},
    "iat a list": {"iat": [1]},
    "iat not a number": {"iat": "yesterday"},
    "nbf null": {"nbf": "NULL"},
    "iss null": {"iss": "NULL"},
    "aud null": {"aud": "NULL"},
    "missing sub": {"sub": None},
    "sub null": {"sub": "NULL"},
    "sub not a string": {"sub": 12345},
    "not yet valid (nbf)": "NBF_FUTURE",
}


@pytest.mark.parametrize("problem", list(CLAIM_PROBLEMS))
def test_a_claim_problem_is_refused(product, signed_in, identity, problem):
    change = CLAIM_PROBLEMS[problem]
    if change == "TRAILING_SLASH_ISS":
        change = {"iss": identity.issuer + "/"}
    elif change == "NBF_FUTURE":
        change = {"nbf": int(time.time()) + 3600}
    claims = fresh_claims(signed_in, **{k: v for k, v in change.items() if v != "NULL"})
    claims.update({k: None for k, v in change.items() if v == "NULL"})  # present, but JSON null
    token = compact(real_header(identity), claims, real_signer(identity))

    assert_rejected(product.call(token))


def test_claims_that_are_not_a_json_object_are_refused(product, identity):
    token = compact(real_header(identity), ["sub", "someone"], real_signer(identity))

    assert_rejected(product.call(token))


@pytest.mark.parametrize("seconds_ago", [45, MAX_LEEWAY + 1, 3600])
def test_a_token_expired_beyond_the_leeway_is_refused(product, signed_in, identity, seconds_ago):
    now = int(time.time())
    claims = fresh_claims(signed_in, iat=now - 900 - seconds_ago, exp=now - seconds_ago)
    body = assert_rejected(product.call(compact(real_header(identity), claims, real_signer(identity))))

    assert "expired" in body["detail"]


def test_a_token_expired_within_the_leeway_is_accepted(product, signed_in, identity):
    """Default leeway is 30 s; a token 5 s past exp is still fine (clock skew between hosts)."""
    now = int(time.time())
    claims = fresh_claims(signed_in, iat=now - 905, exp=now - 5)

    assert product.call(compact(real_header(identity), claims, real_signer(identity))).status_code == 200


@pytest.mark.parametrize("leeway", [MAX_LEEWAY + 1, 120, 3600, -1])
def test_a_leeway_over_sixty_seconds_or_negative_is_refused(leeway):
    with pytest.raises(ValueError):
        Verifier(lambda kid: None, issuer="http://127.0.0.1:8001", audience=AUDIENCE, leeway=leeway)


def test_a_leeway_of_sixty_seconds_is_allowed():
    assert Verifier(lambda kid: None, issuer="http://127.0.0.1:8001", audience=AUDIENCE, leeway=MAX_LEEWAY).leeway == 60


# --- token kinds and types ------------------------------------------------------------------------

@pytest.mark.parametrize("typ", ["JWT", "jwt", None, "", "refresh+jwt", "id_token+jwt", "at+jwt2", "application/jwt"])
def test_a_token_that_is_not_typed_as_an_access_token_is_refused(product, signed_in, identity, typ):
    header = real_header(identity)
    if typ is None:
        del header["typ"]
    else:
        header["typ"] = typ

    assert_rejected(product.call(compact(header, fresh_claims(signed_in), real_signer(identity))))


def test_a_refresh_token_presented_as_a_bearer_token_is_refused(product, signed_in, identity):
    refresh_token = signed_in.tokens["refresh_token"]

    assert_rejected(product.call(refresh_token))
    assert_rejected(requests.get(f"{identity.url}/v1/me", headers={"Authorization": f"Bearer {refresh_token}"},
                                 timeout=10))


def test_an_email_verification_token_presented_as_a_bearer_token_is_refused(product, auth, identity):
    account = auth.sign_up()
    verification_token = auth.verification_token(account["email"])

    assert_rejected(product.call(verification_token))
    assert_rejected(requests.get(f"{identity.url}/v1/me",
                                 headers={"Authorization": f"Bearer {verification_token}"}, timeout=10))


def test_a_service_token_is_refused_on_a_user_route(product, signed_in, identity):
    claims = fresh_claims(signed_in, sid=None, email=None, client_id="billing", scope="accounts:read")

    assert_rejected(product.call(compact(real_header(identity), claims, real_signer(identity))))


# --- tampering, malformed input and foreign issuers -----------------------------------------------

def test_a_tampered_payload_is_refused(product, signed_in, auth, identity):
    other, _tokens = auth.verified_account()
    header, _payload, signature = signed_in.tokens["access_token"].split(".")
    forged_payload = b64url_json(dict(signed_in.claims, sub=other["id"], email=other["email"]))

    assert_rejected(product.call(f"{header}.{forged_payload}.{signature}"))


def test_a_tampered_signature_is_refused(product, signed_in):
    header, payload, signature = signed_in.tokens["access_token"].split(".")
    raw = bytearray(b64url_decode(signature))
    raw[-1] ^= 0x01

    assert_rejected(product.call(f"{header}.{payload}.{b64url(bytes(raw))}"))
    assert_rejected(product.call(f"{header}.{payload}."))
    assert_rejected(product.call(f"{header}.{payload}.{signature[:-8]}"))


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi", "Bearer not-a-jwt", "Bearer a.b.c",
    "Bearer ...", "Bearer a.b.c.d", "Bearer " + b64url(b"[1,2]") + ".e30.", "Bearer " + b64url(b"\xff\xfe") + ".e30.",
    "Bearer %%%.%%%.%%%",
])
def test_a_malformed_authorization_header_is_refused(product, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}

    assert_rejected(product.call(headers=headers))


@pytest.mark.parametrize("kid", [None, "", 123, ["kid"], {"kid": "x"}])
def test_a_missing_or_non_string_kid_is_refused(product, signed_in, identity, kid):
    header = real_header(identity)
    if kid is None:
        del header["kid"]
    else:
        header["kid"] = kid

    assert_rejected(product.call(compact(header, fresh_claims(signed_in), real_signer(identity))))


def test_a_token_from_a_foreign_issuer_is_refused(product, signed_in, identity, live_server, make_product):
    foreign_key = ec.generate_private_key(ec.SECP256R1())
    foreign_jwk = ec_public_jwk(foreign_key, "foreign-1")
    foreign = live_server(key_server_app({"keys": [foreign_jwk]}))
    foreign_issuer = foreign.url
    signer = ecdsa_signer(foreign_key, hashes.SHA256())
    header = {"alg": "ES256", "kid": "foreign-1", "typ": "at+jwt"}
    own_claims = fresh_claims(signed_in, iss=foreign_issuer)

    # The foreign issuer's own consumers accept it: the token itself is well formed.
    foreign_product = make_product(jwks_url=f"{foreign.url}/jwks.json", issuer=foreign_issuer)
    assert foreign_product.call(compact(header, own_claims, signer)).status_code == 200

    assert_rejected(product.call(compact(header, own_claims, signer)))
    # Claiming to be identity and reusing identity's kid does not help either.
    impersonation = compact(real_header(identity), fresh_claims(signed_in), signer)
    assert_rejected(product.call(impersonation))
    # ... nor does a token from identity help at the foreign issuer's consumers.
    assert_rejected(foreign_product.call(signed_in.tokens["access_token"]))


# --- key headers and the JWKS cache ---------------------------------------------------------------

@pytest.mark.parametrize("key_header", ["jku", "x5u", "jwk"])
def test_key_location_headers_pointing_to_an_attacker_key_are_ignored(product, signed_in, identity, attacker,
                                                                      key_header):
    header = {"alg": "ES256", "kid": attacker.kid, "typ": "at+jwt"}
    if key_header == "jku":
        header["jku"] = f"{attacker.server.url}/jwks.json"
    elif key_header == "x5u":
        header["x5u"] = f"{attacker.server.url}/cert.pem"
    else:
        header["jwk"] = attacker.jwk
    forged = compact(header, fresh_claims(signed_in), attacker.signer)
    # The same forgery with identity's kid, in case a verifier prefers kid lookups but trusts the header key.
    with_real_kid = compact(dict(header, kid=identity.key.kid), fresh_claims(signed_in), attacker.signer)

    assert_rejected(product.call(forged))
    assert_rejected(product.call(with_real_kid))
    assert attacker.counter.count() == 0


@pytest.mark.parametrize("key_header", ["jku", "x5u", "jwk"])
def test_a_real_token_with_a_key_location_header_is_still_verified_by_the_real_key(product, signed_in, identity,
                                                                                  attacker, key_header):
    value = {"jku": f"{attacker.server.url}/jwks.json", "x5u": f"{attacker.server.url}/cert.pem",
             "jwk": attacker.jwk}[key_header]
    token = compact(real_header(identity, **{key_header: value}), fresh_claims(signed_in), real_signer(identity))

    assert product.call(token).status_code == 200
    assert attacker.counter.count() == 0


def test_a_token_with_critical_header_extensions_is_refused(product, signed_in, identity):
    """RFC 7515 4.1.11: `crit` names extensions the verifier must understand; it understands none."""
    token = compact(real_header(identity, crit=["exp"], exp=1), fresh_claims(signed_in), real_signer(identity))
    assert_rejected(product.call(token))
    plain = compact(real_header(identity), fresh_claims(signed_in), real_signer(identity))
    assert product.call(plain).status_code == 200


def test_an_unknown_kid_is_refused_and_refetches_the_jwks_at_most_once_per_interval(product, signed_in, identity):
    assert product.call(signed_in.tokens["access_token"]).status_code == 200
    fetches_before = identity.counter.count(JWKS_PATH)
    assert fetches_before == 1

    def forged(n: int) -> str:
        return compact(real_header(identity, kid=f"made-up-{n}"), fresh_claims(signed_in), real_signer(identity))

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda n: product.call(forged(n)), range(40)))

    for response in responses:
        assert_rejected(response)
    assert identity.counter.count(JWKS_PATH) - fetches_before <= 1
    # Known keys keep working throughout.
    assert product.call(signed_in.tokens["access_token"]).status_code == 200


def test_a_cold_verifier_flooded_with_unknown_kids_fetches_the_jwks_once(product, signed_in, identity):
    def forged(n: int) -> str:
        return compact(real_header(identity, kid=f"made-up-{n}"), fresh_claims(signed_in), real_signer(identity))

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda n: product.call(forged(n)), range(40)))

    for response in responses:
        assert_rejected(response)
    assert identity.counter.count(JWKS_PATH) == 1


def test_the_verifier_keeps_working_from_its_cache_while_identity_is_down(product, signed_in, identity):
    assert product.call(signed_in.tokens["access_token"]).status_code == 200
    identity.server.stop()

    assert product.call(signed_in.tokens["access_token"]).status_code == 200
    freshly_signed = compact(real_header(identity), fresh_claims(signed_in), real_signer(identity))
    assert product.call(freshly_signed).status_code == 200
    # Unknown keys are still refused cleanly (401, not 500) while identity cannot be reached.
    assert_rejected(product.call(compact(real_header(identity, kid="made-up"), fresh_claims(signed_in),
                                         real_signer(identity))))


def test_a_verifier_that_never_reached_identity_refuses_every_token(make_product, signed_in, live_server, identity):
    """Refused as an outage (503 with Retry-After), not as a bad token (401): a client told 401 would throw
    a good token away and sign the person out (issue 15)."""
    server = live_server(key_server_app({"keys": []}))
    url = server.url
    server.stop()  # nothing listens there any more
    product = make_product(jwks_url=f"{url}/jwks.json")

    response = product.call(signed_in.tokens["access_token"])
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "dependency_unavailable" and "claims" not in response.json()
    assert int(response.headers["Retry-After"]) >= 1


def test_symmetric_and_private_keys_in_a_jwks_are_never_used(make_product, live_server, signed_in, identity):
    """A JWKS that (wrongly or maliciously) publishes an HMAC key does not make HS256 tokens valid."""
    secret = b"published-shared-secret"
    oct_key = {"kty": "oct", "k": b64url(secret), "alg": "HS256", "kid": "shared", "use": "sig"}
    attacker_key = ec.generate_private_key(ec.SECP256R1())
    private_jwk = dict(ec_public_jwk(attacker_key, "with-private-half"),
                       d=b64url(attacker_key.private_numbers().private_value.to_bytes(32, "big")))
    server = live_server(key_server_app({"keys": [oct_key, private_jwk]}))
    product = make_product(jwks_url=f"{server.url}/jwks.json", algorithms=("ES256", "HS256"))

    hs_token = compact({"alg": "HS256", "kid": "shared", "typ": "at+jwt"}, fresh_claims(signed_in), hmac_signer(secret))
    es_token = compact({"alg": "ES256", "kid": "with-private-half", "typ": "at+jwt"}, fresh_claims(signed_in),
                       ecdsa_signer(attacker_key, hashes.SHA256()))

    assert_rejected(product.call(hs_token))
    assert_rejected(product.call(es_token))


# --- remembered verdicts -------------------------------------------------------------------------

ISSUER = "http://127.0.0.1:8001"


@pytest.fixture
def own_key():
    """A key of this test's own, as a key source and a signer (no identity needed)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = ec_public_jwk(private_key, "test-key")
    keys = {jwk["kid"]: ("ES256", load_public_key(jwk))}

    def token(**claims) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "someone", "iat": now, "exp": now + 600, **claims}
        return compact({"alg": "ES256", "kid": jwk["kid"], "typ": "at+jwt"}, body,
                       ecdsa_signer(private_key, hashes.SHA256()))

    return SimpleNamespace(kid=jwk["kid"], keys=keys, source=keys.get, token=token)


def test_a_remembered_token_is_refused_once_it_has_expired(own_key):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE, leeway=0)
    token = own_key.token(exp=int(time.time()) + 1)
    assert verifier.verify(token)["sub"] == "someone"

    expires = unverified_parts(token)[1]["exp"]
    while int(time.time()) <= expires:  # at most two seconds: python-jose counts whole seconds
        time.sleep(0.1)
    with pytest.raises(TokenRejected, match="expired"):
        verifier.verify(token)


def test_a_remembered_token_is_refused_once_its_key_leaves_the_key_set(own_key):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE)
    token = own_key.token()
    assert verifier.verify(token)["sub"] == "someone"

    del own_key.keys[own_key.kid]
    with pytest.raises(TokenRejected, match="key we do not know"):
        verifier.verify(token)


def test_a_remembered_token_is_refused_once_its_kid_names_another_key(own_key):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE)
    token = own_key.token()
    assert verifier.verify(token)["sub"] == "someone"

    other = ec_public_jwk(ec.generate_private_key(ec.SECP256R1()), own_key.kid)
    own_key.keys[own_key.kid] = ("ES256", load_public_key(other))
    with pytest.raises(TokenRejected):
        verifier.verify(token)


def test_tampered_copies_of_a_remembered_token_are_refused(own_key):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE)
    token = own_key.token()
    assert verifier.verify(token)["sub"] == "someone"
    header, payload, signature = token.split(".")
    raw = bytearray(b64url_decode(signature))
    raw[-1] ^= 0x01

    for forged in (f"{header}.{payload}.{b64url(bytes(raw))}", f"{header}.{payload}.", token + "A", " " + token,
                   f"{header}.{b64url_json(dict(unverified_parts(token)[1], sub='someone-else'))}.{signature}"):
        with pytest.raises(TokenRejected):
            verifier.verify(forged)
    assert verifier.verify(token)["sub"] == "someone"


def test_changing_the_claims_a_caller_got_does_not_change_the_next_answer(own_key):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE)
    token = own_key.token()
    verifier.verify(token)["sub"] = "someone-else"

    assert verifier.verify(token)["sub"] == "someone"


def test_the_verifier_remembers_at_most_cache_size_tokens(own_key):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE, cache_size=3)
    tokens = [own_key.token(jti=str(number)) for number in range(10)]
    for token in tokens:
        verifier.verify(token)

    assert verifier.remembered == 3
    assert [verifier.verify(token)["jti"] for token in tokens] == [str(number) for number in range(10)]
    assert verifier.remembered == 3
    assert Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE, cache_size=0).remembered == 0


def test_a_verifier_with_cache_size_zero_remembers_nothing(own_key):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE, cache_size=0)
    token = own_key.token()
    assert verifier.verify(token)["sub"] == "someone"
    assert verifier.remembered == 0

    del own_key.keys[own_key.kid]
    with pytest.raises(TokenRejected):
        verifier.verify(token)


# --- issued in the future -------------------------------------------------------------------------
# PyJWT refuses a token whose `iat` is later than now plus the leeway; python-jose only checks that it
# is a number. "Now" is the service's own clock (the test clock here), so tests that move it keep working.

LEEWAY = 30  # the verifier's default


def test_the_default_leeway_is_thirty_seconds():
    assert Verifier(lambda kid: None, issuer=ISSUER, audience=AUDIENCE).leeway == LEEWAY


@pytest.mark.parametrize("leeway", [0, LEEWAY, MAX_LEEWAY])
@pytest.mark.parametrize("cache_size", [0, 1024])
def test_a_token_issued_beyond_the_leeway_in_the_future_is_refused(own_key, clock, leeway, cache_size):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE, leeway=leeway, cache_size=cache_size,
                        clock=clock)
    now = int(clock.now.timestamp())

    with pytest.raises(TokenRejected, match="issued in the future"):
        verifier.verify(own_key.token(iat=now + leeway + 1, exp=now + 900))
    assert verifier.remembered == 0


@pytest.mark.parametrize("ahead", [-1, 0])
@pytest.mark.parametrize("leeway", [0, LEEWAY, MAX_LEEWAY])
def test_a_token_issued_within_the_leeway_in_the_future_is_accepted(own_key, clock, leeway, ahead):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE, leeway=leeway, clock=clock)
    now = int(clock.now.timestamp())

    assert verifier.verify(own_key.token(iat=now + leeway + ahead, exp=now + 900))["sub"] == "someone"


def test_a_refused_future_token_is_accepted_once_its_time_has_come(own_key, clock):
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    now = int(clock.now.timestamp())
    token = own_key.token(iat=now + LEEWAY + 1, exp=now + 900)
    with pytest.raises(TokenRejected, match="issued in the future"):
        verifier.verify(token)

    clock.advance(1)
    assert verifier.verify(token)["sub"] == "someone"


def test_a_remembered_token_is_refused_when_the_clock_goes_back_before_its_iat(own_key, clock):
    """The remembered verdict does not outlive the `iat` check: a host clock stepped back (NTP) makes
    a remembered token from the future as unacceptable as a new one."""
    verifier = Verifier(own_key.source, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    now = int(clock.now.timestamp())
    token = own_key.token(iat=now + LEEWAY, exp=now + 900)
    assert verifier.verify(token)["sub"] == "someone"
    assert verifier.verify(token)["sub"] == "someone"  # now from memory
    assert verifier.remembered == 1

    clock.advance(-1)
    with pytest.raises(TokenRejected, match="issued in the future"):
        verifier.verify(token)
    assert verifier.remembered == 0


def forged_at(identity_app, signed_in, issued: int) -> str:
    """An access token of `signed_in` signed with identity's real key, issued at `issued`."""
    key = identity_app.extensions["threshold.identity"].keys.signing_key()
    claims = dict(signed_in.claims, iat=issued, exp=issued + 900)
    return compact({"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}, claims, key.signing.sign)


@pytest.fixture
def organizations(tenancy_app, live_server):
    """Tenancy's GET /v1/organizations over real HTTP, with a token."""
    url = f"{live_server(tenancy_app).url}/v1/organizations"
    return lambda token: requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_tenancy_refuses_a_token_issued_beyond_the_leeway_in_the_future(organizations, identity_app, signed_in,
                                                                        clock):
    now = int(clock.now.timestamp())

    body = assert_rejected(organizations(forged_at(identity_app, signed_in, now + LEEWAY + 1)))
    assert "issued in the future" in body["detail"]
    assert organizations(forged_at(identity_app, signed_in, now + LEEWAY - 1)).status_code == 200


def test_identity_and_tenancy_take_tokens_minted_after_the_test_clock_moved_on(organizations, client, auth, clock):
    """Both services judge `iat` by the clock they were built with, the one identity mints by."""
    clock.advance(3600)
    _account, tokens = auth.verified_account()

    assert organizations(tokens["access_token"]).status_code == 200
    assert client.get("/v1/me", headers=bearer(tokens)).status_code == 200


# --- the cryptography backend ---------------------------------------------------------------------

def test_python_jose_uses_the_cryptography_backend(product, signed_in, identity):
    from jose import backends
    from jose.backends.cryptography_backend import CryptographyECKey, CryptographyRSAKey

    assert backends.ECKey is CryptographyECKey
    assert backends.RSAKey is CryptographyRSAKey
    assert product.call(signed_in.tokens["access_token"]).status_code == 200
    algorithm, key = product.jwks.get(identity.key.kid)
    assert algorithm == "ES256"
    assert isinstance(key, CryptographyECKey)
    assert isinstance(identity.key.signing, CryptographyECKey)
    assert isinstance(identity.key.verifying, CryptographyECKey)
