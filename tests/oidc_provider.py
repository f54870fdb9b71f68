"""A small but real OpenID provider for the tests, served over HTTP on loopback with `live_server`.

It speaks the authorization code flow the way Google and other issuers do (and UserInfo: `/userinfo`
with the access token the code gave): a discovery document whose
`issuer` is its own URL, `/authorize` (checks the client, its registered redirect_uri, response_type=code,
scope openid, a nonce and a PKCE S256 challenge, then plays the user's consent by redirecting straight
back with `code` and `state`), `/token` (the code once and before it expires, the same redirect_uri, the
PKCE verifier against the challenge, and the client's authentication by the one method it registered:
client_secret_basic or client_secret_post), and `/jwks` (the public RSA key). ID tokens are RS256 with a
`kid`, signed here with `cryptography` (not with the project's JWT library).

The test knobs (`provider.user`, `provider.knobs`) decide whom the user logs in as and how the provider
misbehaves: deny consent, a tampered nonce, another audience or issuer, an id_token expired in real time,
an id_token signed with a key it never published, or with a forged signature under a published kid.
`provider.advance(seconds)` moves the provider's own clock (codes expire); ID token times are real time,
since the relying party checks them against the real clock.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from urllib.parse import unquote_plus, urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, jsonify, request

CODE_TTL = 60
ID_TOKEN_TTL = 300


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class User:
    """The person who logs in at the provider."""

    sub: str = "110169484474386276334"
    email: str | None = "ada@example.com"
    email_verified: bool = True
    given_name: str | None = "Ada"
    family_name: str | None = "Lovelace"


@dataclass
class Knobs:
    """How the provider behaves for the next authorizations (taken when the user consents)."""

    deny: str | None = None  # an `error` to send back instead of a code, e.g. "access_denied"
    nonce: str | None = None  # put this nonce in the ID token instead of the client's
    audience: str | list | None = None  # put this aud in the ID token instead of the client_id
    azp: str | None = None  # put this azp in the ID token instead of the client_id
    issuer: str | None = None  # put this iss in the ID token instead of the provider's own
    expired: bool = False  # an ID token whose exp lies in the real past (beyond any leeway)
    signing: str = "published"  # "published" | "unknown_key" (kid never published) | "forged" (published kid)
    discovery_issuer: str | None = None  # the discovery document names this issuer instead
    discovery_without: tuple[str, ...] = ()  # leave these fields out of the discovery document
    profile_in_userinfo_only: bool = False  # email and names in UserInfo, not in the ID token (panva's default)
    userinfo_sub: str | None = None  # UserInfo answers for this subject instead of the user's


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    user: User
    knobs: Knobs
    expires_at: float
    used: bool = False


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def new(cls, kid: str) -> "SigningKey":
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": _int_b64(numbers.n),
                "e": _int_b64(numbers.e)}

    def sign(self, claims: dict, kid: str | None = None) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"


class OidcProvider:
    """One issuer with one registered client. Start it with `OidcProvider.serve(live_server, ...)`."""

    def __init__(self, client_id: str, client_secret: str, redirect_uris: list[str],
                 auth_method: str = "client_secret_basic"):
        assert auth_method in ("client_secret_basic", "client_secret_post")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = list(redirect_uris)
        self.auth_method = auth_method
        self.user = User()
        self.knobs = Knobs()
        self.key = SigningKey.new(f"key-{secrets.token_hex(4)}")
        self.other_key = SigningKey.new(f"key-{secrets.token_hex(4)}")  # never published
        self.issuer = ""  # set by serve()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request received
        self.token_requests: list[dict] = []  # the form of every /token request
        self.token_errors: list[str] = []  # the `error` of every refused /token request
        self.issued_id_tokens: list[str] = []
        self._grants: dict[str, Grant] = {}
        self._access_tokens: dict[str, Grant] = {}
        self._offset = 0.0
        self._lock = threading.Lock()
        self.app = self._make_app()

    @classmethod
    def serve(cls, live_server, client_id: str = "threshold-client", client_secret: str | None = None,
              redirect_uris: list[str] = (), auth_method: str = "client_secret_basic") -> "OidcProvider":
        provider = cls(client_id, client_secret or secrets.token_urlsafe(16), list(redirect_uris), auth_method)
        server = live_server(provider.app)
        provider.issuer = server.url
        return provider

    # --- test controls -------------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Time passes at the provider: its authorization codes expire."""
        self._offset += seconds

    def now(self) -> float:
        return time.time() + self._offset

    def count(self, path: str, method: str = "GET") -> int:
        return sum(1 for m, p in self.requests if (m, p) == (method, path))

    # --- the endpoints -------------------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask(f"oidc-provider-{id(self)}")

        @app.before_request
        def record():
            self.requests.append((request.method, request.path))

        @app.get("/.well-known/openid-configuration")
        def discovery():
            document = {
                "issuer": self.knobs.discovery_issuer or self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": [self.auth_method],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "email_verified",
                                     "given_name", "family_name", "name"],
            }
            return jsonify({k: v for k, v in document.items() if k not in self.knobs.discovery_without})

        @app.get("/jwks")
        def jwks():
            return jsonify({"keys": [self.key.jwk()]})

        @app.get("/authorize")
        def authorize():
            args = request.args
            if args.get("client_id") != self.client_id:
                return "unknown client_id", 400  # never redirect to an unverified redirect_uri
            redirect_uri = args.get("redirect_uri", "")
            if redirect_uri not in self.redirect_uris:
                return "redirect_uri is not registered for this client", 400
            state = args.get("state")

            def back(**params):
                if state is not None:
                    params["state"] = state
                return "", 302, {"Location": f"{redirect_uri}?{urlencode(params)}"}

            challenge = args.get("code_challenge", "")
            if args.get("response_type") != "code":
                return back(error="unsupported_response_type")
            if "openid" not in args.get("scope", "").split():
                return back(error="invalid_scope")
            if args.get("code_challenge_method") != "S256" or not (43 <= len(challenge) <= 128):
                return back(error="invalid_request", error_description="PKCE with S256 is required")
            if not args.get("nonce") or not state:
                return back(error="invalid_request", error_description="state and nonce are required")
            knobs = replace(self.knobs)
            if knobs.deny:
                return back(error=knobs.deny)
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._grants[code] = Grant(self.client_id, redirect_uri, challenge, args["nonce"], replace(self.user),
                                           knobs, self.now() + CODE_TTL)
            return back(code=code)

        @app.post("/token")
        def token():
            form = request.form
            self.token_requests.append(form.to_dict())

            def refuse(error: str, status: int = 400):
                self.token_errors.append(error)
                return jsonify({"error": error}), status

            client_id = self._authenticated_client()
            if client_id is None:
                return refuse("invalid_client", 401)
            if form.get("grant_type") != "authorization_code":
                return refuse("unsupported_grant_type")
            with self._lock:
                grant = self._grants.get(form.get("code", ""))
                if grant is None or grant.used:
                    return refuse("invalid_grant")
                grant.used = True  # spent even when the rest fails, as RFC 6749 asks
            if grant.expires_at <= self.now() or grant.client_id != client_id:
                return refuse("invalid_grant")
            if form.get("redirect_uri") != grant.redirect_uri:
                return refuse("invalid_grant")
            verifier = form.get("code_verifier", "")
            if not (43 <= len(verifier) <= 128) or s256(verifier) != grant.code_challenge:
                return refuse("invalid_grant")
            id_token = self._id_token(grant)
            self.issued_id_tokens.append(id_token)
            access_token = secrets.token_urlsafe(32)
            with self._lock:
                self._access_tokens[access_token] = grant
            return jsonify({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600,
                            "scope": "openid email profile", "id_token": id_token}), 200, {"Cache-Control": "no-store"}

        @app.get("/userinfo")
        def userinfo():
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            grant = self._access_tokens.get(token) if scheme.lower() == "bearer" else None
            if grant is None:
                return jsonify({"error": "invalid_token"}), 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            user = grant.user
            return jsonify({"sub": grant.knobs.userinfo_sub or user.sub, **self._profile(user)})

        return app

    @staticmethod
    def _profile(user: User) -> dict:
        """The email and name claims of the user (those they have)."""
        claims: dict = {}
        if user.email is not None:
            claims.update(email=user.email, email_verified=user.email_verified)
        if user.given_name is not None:
            claims["given_name"] = user.given_name
        if user.family_name is not None:
            claims["family_name"] = user.family_name
        names = [n for n in (user.given_name, user.family_name) if n]
        if names:
            claims["name"] = " ".join(names)
        return claims

    def _authenticated_client(self) -> str | None:
        """The client_id when the client authenticated with its registered method and secret."""
        if self.auth_method == "client_secret_basic":
            if "client_secret" in request.form:
                return None
            credentials = request.authorization
            if credentials is None or credentials.type != "basic":
                return None
            # RFC 6749 2.3.1: id and secret are each form-encoded before Base64.
            client_id, secret = unquote_plus(credentials.username), unquote_plus(credentials.password or "")
        else:
            if request.authorization is not None:
                return None
            client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        if client_id == self.client_id and secret is not None and secrets.compare_digest(secret, self.client_secret):
            return client_id
        return None

    def _id_token(self, grant: Grant) -> str:
        knobs, user = grant.knobs, grant.user
        issued = int(time.time())  # real time: the relying party checks exp against the real clock
        if knobs.expired:
            issued -= 2 * ID_TOKEN_TTL  # exp is ID_TOKEN_TTL seconds in the past
        claims = {"iss": knobs.issuer or self.issuer, "sub": user.sub, "aud": knobs.audience or grant.client_id,
                  "iat": issued, "exp": issued + ID_TOKEN_TTL, "auth_time": issued,
                  "nonce": knobs.nonce or grant.nonce, "azp": knobs.azp or grant.client_id}
        if not knobs.profile_in_userinfo_only:
            claims.update(self._profile(user))
        if knobs.signing == "unknown_key":
            return self.other_key.sign(claims)
        if knobs.signing == "forged":
            return self.other_key.sign(claims, kid=self.key.kid)
        return self.key.sign(claims)
