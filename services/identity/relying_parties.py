"""The OpenID Provider's clients (relying parties): product apps that sign people in through Threshold.

They are registered by OIDC_CLIENTS (JSON keyed by client_id, read once into the settings) and by
`python -m services.identity clients add`, which writes the same shape to the `oauth_clients` table.
Either way a client is a `RelyingParty`, which is what authlib's server asks its questions of
(`ClientMixin`). Secrets are kept only as SHA-256 digests, like service clients' (`shared.opaque_tokens`).
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
import string
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin

from shared import opaque_tokens
from shared.config import ConfigError

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
GRANT_TYPES = ("authorization_code", "refresh_token")
ID_TOKEN_ALGORITHMS = ("ES256", "RS256")
SCOPES = ("openid", "email", "profile", "offline_access", "workspace")
CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,100}")
# RFC 3986 unreserved characters: a generated secret needs no encoding in a form or a Basic header.
SECRET_ALPHABET = string.ascii_letters + string.digits + "-._~"
MIN_PRODUCTION_SECRET = 32


@dataclass(frozen=True)
class RelyingParty(ClientMixin):
    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str
    grant_types: tuple[str, ...]
    id_token_signed_response_alg: str
    first_party: bool

    @property
    def public(self) -> bool:
        """A client that keeps no secret (a browser or native app): PKCE S256 is its only proof."""
        return self.token_endpoint_auth_method == "none"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # OpenID Connect: every authorization request names its redirect_uri

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(dict.fromkeys((scope or "").split()))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string match, nothing normalised

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(opaque_tokens.digest(client_secret),
                                                                    self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def registration(self) -> dict:
        """The OIDC_CLIENTS shape of this client, without the secret (for the database)."""
        fields = asdict(self)
        del fields["client_id"], fields["secret_hash"]
        return {key: list(value) if isinstance(value, tuple) else value for key, value in fields.items()}


def _absolute_url(value: object, *, production: bool) -> bool:
    """http(s), no fragment, no user info; plain http only on a loopback host (RFC 8252 7.3) outside production."""
    if not isinstance(value, str) or len(value) > 2000:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if parts.fragment or not parts.hostname or parts.username is not None:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and (not production or _loopback(parts.hostname))


def secure_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname or ""))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse(client_id: str, entry: object, *, variable: str = "OIDC_CLIENTS", production: bool = False,
          secret_hash: str | None = None) -> RelyingParty:
    """One registration in the OIDC_CLIENTS shape -> a RelyingParty; ConfigError naming `variable` when wrong.
    `secret_hash` stands for `client_secret` when the secret is stored hashed (the database)."""
    def fail(message: str) -> ConfigError:
        return ConfigError(variable, f"client {client_id!r}: {message}")

    if not CLIENT_ID.fullmatch(client_id):
        raise ConfigError(variable, f"client id {client_id!r} must be 1-100 of A-Z a-z 0-9 - . _ ~")
    if not isinstance(entry, dict):
        raise fail("must be a JSON object")
    known = {"client_secret", "redirect_uris", "post_logout_redirect_uris", "token_endpoint_auth_method",
             "grant_types", "id_token_signed_response_alg", "first_party", "name", "jwks_uri"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise fail(f"unknown field(s) {', '.join(unknown)}")
    method = entry.get("token_endpoint_auth_method", "client_secret_basic")
    if method == "private_key_jwt":
        raise fail("private_key_jwt is not supported yet; use client_secret_basic or client_secret_post")
    if method not in AUTH_METHODS:
        raise fail(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    secret = entry.get("client_secret")
    if method == "none":
        if secret is not None or secret_hash is not None:
            raise fail("a public client (token_endpoint_auth_method none) has no client_secret")
    elif secret_hash is None:
        if not isinstance(secret, str) or not secret:
            raise fail(f"{method} needs a client_secret string")
        if production and len(secret) < MIN_PRODUCTION_SECRET:
            raise fail(f"needs a client_secret of {MIN_PRODUCTION_SECRET}+ characters when APP_ENV=production")
        secret_hash = opaque_tokens.digest(secret)
    redirect_uris = entry.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris or \
            not all(_absolute_url(uri, production=production) for uri in redirect_uris):
        raise fail("redirect_uris must be a non-empty list of absolute https URLs without a fragment "
                   "(http only on a loopback host, outside production)")
    logout_uris = entry.get("post_logout_redirect_uris", [])
    if not isinstance(logout_uris, list) or not all(_absolute_url(uri, production=production) for uri in logout_uris):
        raise fail("post_logout_redirect_uris must be a list of absolute URLs like redirect_uris")
    grant_types = entry.get("grant_types", list(GRANT_TYPES))
    if not isinstance(grant_types, list) or "authorization_code" not in grant_types or \
            not set(grant_types) <= set(GRANT_TYPES):
        raise fail(f"grant_types must include authorization_code and be among {', '.join(GRANT_TYPES)}")
    algorithm = entry.get("id_token_signed_response_alg", "ES256")
    if algorithm not in ID_TOKEN_ALGORITHMS:
        raise fail(f"id_token_signed_response_alg must be one of {', '.join(ID_TOKEN_ALGORITHMS)}")
    first_party = entry.get("first_party", True)
    if first_party is not True:
        raise fail("first_party must be true: there is no consent screen for third-party clients yet")
    name = entry.get("name", client_id)
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise fail("name must be a string of 1-100 characters")
    return RelyingParty(client_id=client_id, name=name, secret_hash=secret_hash, redirect_uris=tuple(redirect_uris),
                        post_logout_redirect_uris=tuple(logout_uris), token_endpoint_auth_method=method,
                        grant_types=tuple(dict.fromkeys(grant_types)), id_token_signed_response_alg=algorithm,
                        first_party=True)


def parse_all(raw: dict, *, production: bool) -> dict[str, RelyingParty]:
    """OIDC_CLIENTS as parsed JSON -> clients by id."""
    return {client_id: parse(client_id, entry, production=production) for client_id, entry in raw.items()}


def from_record(client_id: str, secret_hash: str | None, metadata_json: str) -> RelyingParty:
    """A client the CLI wrote to the database (validated again, as if it were configuration)."""
    return parse(client_id, json.loads(metadata_json), variable="oauth_clients", secret_hash=secret_hash)


def generate_secret() -> str:
    """256 bits, in characters that need no encoding anywhere (form, Basic, shell)."""
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(43))
