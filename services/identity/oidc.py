"""OpenID Connect sign-in with any number of providers (Google is one entry of OIDC_PROVIDERS).

The authorization code flow with PKCE (S256), `state` bound to the browser by a signed cookie, and a
`nonce`. Each provider's endpoints come from its discovery document, fetched on first use and cached;
nothing touches the network at import or start-up. ID tokens are verified by the shared JWT module
against the provider's JWKS (issuer, audience, expiry), then the nonce is compared here.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote_plus, urlencode, urlsplit

from shared import jwt
from shared.config import ConfigError
from shared.errors import DomainError

if TYPE_CHECKING:
    import requests

ID_TOKEN_ALGORITHMS = ("RS256", "ES256", "PS256", "RS384", "ES384", "RS512")
ERROR_CODE = re.compile(r"[a-z_]{1,40}")
log = logging.getLogger("threshold.identity.oidc")


class OidcError(DomainError):
    code = "oidc_failed"
    message = "Sign-in with the identity provider did not work."


class UnknownProvider(OidcError):
    code = "not_found"
    message = "There is no such sign-in provider."


class ReturnToNotAllowed(OidcError):
    code = "return_to_not_allowed"
    message = "The return_to address is not on the allow-list (ALLOWED_RETURN_URLS)."


class ProviderUnavailable(OidcError):
    code = "provider_unavailable"
    message = "The identity provider did not answer; try again shortly."


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"
    token_auth: str = "client_secret_basic"  # or client_secret_post
    allow_linking: bool = False
    require_mfa: bool = False


def parse_providers(raw: dict) -> dict[str, ProviderConfig]:
    """OIDC_PROVIDERS as parsed JSON -> configs; raises ConfigError naming the variable."""
    providers = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) and entry.get(k)
                                                  for k in ("issuer", "client_id", "client_secret")):
            raise ConfigError("OIDC_PROVIDERS", f"{name!r} needs issuer, client_id and client_secret strings")
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError("OIDC_PROVIDERS", f"provider name {name!r} must be letters, digits, - or _")
        if urlsplit(entry["issuer"]).scheme not in ("https", "http"):
            raise ConfigError("OIDC_PROVIDERS", f"{name!r}: issuer must be an https URL")
        token_auth = entry.get("token_endpoint_auth_method", "client_secret_basic")
        if token_auth not in ("client_secret_basic", "client_secret_post"):
            raise ConfigError("OIDC_PROVIDERS", f"{name!r}: token_endpoint_auth_method must be client_secret_basic "
                                                "or client_secret_post")
        providers[name] = ProviderConfig(
            name=name, issuer=entry["issuer"], client_id=entry["client_id"],
            client_secret=entry["client_secret"], scopes=entry.get("scopes", "openid email profile"),
            token_auth=token_auth, allow_linking=entry.get("allow_linking") is True,
            require_mfa=entry.get("require_mfa") is True)
    return providers


@dataclass(frozen=True)
class ReturnUrlPattern:
    """`scheme://host:port/path` where port may be `*` and path may end in `*`."""

    scheme: str
    host: str
    port: str
    path: str

    @classmethod
    def parse(cls, pattern: str) -> ReturnUrlPattern:
        scheme, _, rest = pattern.partition("://")
        hostport, slash, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        if scheme not in ("http", "https") or not host or "@" in hostport:
            raise ConfigError("ALLOWED_RETURN_URLS", f"{pattern!r} is not scheme://host[:port][/path]")
        default_port = "443" if scheme == "https" else "80"
        return cls(scheme, host.lower(), port or default_port, (slash + path) if slash else "/*")

    def allows(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = str(parts.port or (443 if parts.scheme == "https" else 80))
        except ValueError:
            return False
        if parts.username is not None or parts.password is not None or parts.scheme != self.scheme:
            return False
        if (parts.hostname or "") != self.host or (self.port != "*" and port != self.port):
            return False
        path = parts.path or "/"
        return path.startswith(self.path[:-1]) if self.path.endswith("*") else path == self.path


def parse_return_urls(raw: str) -> tuple[ReturnUrlPattern, ...]:
    return tuple(ReturnUrlPattern.parse(p.strip()) for p in raw.split(",") if p.strip())


def return_to_allowed(url: str, patterns: tuple[ReturnUrlPattern, ...]) -> bool:
    return len(url) <= 2000 and any(pattern.allows(url) for pattern in patterns)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the browser must bring back: kept in a signed cookie between authorize and callback."""

    provider: str
    state: str
    nonce: str
    code_verifier: str
    return_to: str

    @classmethod
    def new(cls, provider: str, return_to: str) -> AuthorizationRequest:
        return cls(provider, secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48),
                   return_to)

    @property
    def code_challenge(self) -> str:
        return _b64(hashlib.sha256(self.code_verifier.encode()).digest())


@dataclass
class Provider:
    """One provider: its discovery document and keys, fetched on first use and cached."""

    config: ProviderConfig
    http: requests.Session
    discovery_ttl: float = 3600
    timeout: float = 5
    _discovery: dict | None = None
    _fetched_at: float = float("-inf")
    _jwks: jwt.JwksClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def discovery(self) -> dict:
        with self._lock:
            if self._discovery is None or time.monotonic() - self._fetched_at > self.discovery_ttl:
                url = f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration"
                try:
                    response = self.http.get(url, timeout=self.timeout)
                    response.raise_for_status()
                    document = response.json()
                except (_requests().RequestException, ValueError):
                    raise ProviderUnavailable() from None
                if not isinstance(document, dict) or document.get("issuer") != self.config.issuer:
                    raise ProviderUnavailable("The provider's discovery document names another issuer.")
                if not all(isinstance(document.get(k), str) and document[k]
                           for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")):
                    raise ProviderUnavailable("The provider's discovery document lacks an endpoint.")
                self._discovery, self._fetched_at = document, time.monotonic()
                self._jwks = jwt.JwksClient(document["jwks_uri"], session=self.http)
            return self._discovery

    def authorization_url(self, request: AuthorizationRequest, redirect_uri: str) -> str:
        query = urlencode({
            "response_type": "code", "client_id": self.config.client_id, "redirect_uri": redirect_uri,
            "scope": self.config.scopes, "state": request.state, "nonce": request.nonce,
            "code_challenge": request.code_challenge, "code_challenge_method": "S256",
        })
        endpoint = self.discovery()["authorization_endpoint"]
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def exchange(self, code: str, request: AuthorizationRequest, redirect_uri: str) -> dict:
        """Trade the code for tokens and return the verified ID token's claims."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": request.code_verifier}
        auth = None
        if self.config.token_auth == "client_secret_post":
            form.update(client_id=self.config.client_id, client_secret=self.config.client_secret)
        else:  # RFC 6749 2.3.1: each part form-encoded before Base64 (a secret may hold `+`, `%` or `:`)
            auth = (quote_plus(self.config.client_id), quote_plus(self.config.client_secret))
        try:
            response = self.http.post(self.discovery()["token_endpoint"], data=form, auth=auth, timeout=self.timeout,
                                      headers={"Accept": "application/json"})
        except _requests().RequestException:
            raise ProviderUnavailable() from None
        if response.status_code >= 400:
            log.warning("the provider refused the token request", extra={
                "event": "oidc_token_refused", "provider": self.config.name, "status": response.status_code,
                "error": _error_code(response)})
            raise OidcError("The provider refused the authorization code (expired or already used).")
        try:
            answer = response.json()
            id_token = answer["id_token"]
        except (ValueError, KeyError, TypeError):
            raise OidcError("The provider's answer holds no ID token.") from None
        claims = self.verify_id_token(id_token)
        if claims.get("nonce") != request.nonce:
            raise OidcError("The ID token's nonce does not match this sign-in.")
        if not claims.get("email"):  # OpenID Connect lets a provider keep the profile to UserInfo
            claims = {**self.userinfo(answer.get("access_token"), claims["sub"]), **claims}
        return claims

    def userinfo(self, access_token: object, subject: str) -> dict:
        """The email and name claims of UserInfo (OpenID Connect Core 5.3), for the person the ID token
        names: an answer about another `sub` is refused (5.3.2). Empty when the provider has no UserInfo."""
        endpoint = self.discovery().get("userinfo_endpoint")
        if not isinstance(endpoint, str) or not endpoint or not isinstance(access_token, str) or not access_token:
            return {}
        try:
            response = self.http.get(endpoint, headers={"Authorization": f"Bearer {access_token}",
                                                        "Accept": "application/json"}, timeout=self.timeout)
        except _requests().RequestException:
            raise ProviderUnavailable() from None
        if response.status_code >= 400:
            log.warning("the provider refused the UserInfo request", extra={
                "event": "oidc_userinfo_refused", "provider": self.config.name, "status": response.status_code})
            raise OidcError("The provider did not share the person's profile.")
        try:
            info = response.json()
        except ValueError:
            raise OidcError("The provider's UserInfo answer is not JSON.") from None
        if not isinstance(info, dict) or info.get("sub") != subject:
            raise OidcError("The provider's UserInfo answer is about someone else.")
        return {name: info[name] for name in ("email", "email_verified", "given_name", "family_name") if name in info}

    def verify_id_token(self, id_token: str) -> dict:
        supported = self.discovery().get("id_token_signing_alg_values_supported", ["RS256"])
        algorithms = [alg for alg in ID_TOKEN_ALGORITHMS if alg in supported] or ["RS256"]
        assert self._jwks is not None  # discovery() sets it
        # The wall clock (the default), not identity's: the provider dates its tokens by its own real clock.
        verifier = jwt.Verifier(self._jwks.get, self.config.issuer, self.config.client_id, algorithms=algorithms,
                                token_type=None, cache_size=0)  # built per ID token: nothing to remember
        try:
            claims = verifier.verify(id_token)
        except jwt.TokenRejected as error:
            raise OidcError(f"The ID token is not valid: {error.detail}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcError("The ID token was issued to another party (azp).")
        return claims


def _error_code(response) -> str:
    """The RFC 6749 `error` of a refusal, if it is a plain code (nothing else of the answer is logged)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return "unreadable"
    return error if isinstance(error, str) and ERROR_CODE.fullmatch(error) else "unreadable"


def _requests():
    """The HTTP client, imported on first use: identity without OpenID providers never needs it (it is
    some 5 MB of every worker's memory)."""
    import requests

    return requests


class Providers:
    def __init__(self, configs: dict[str, ProviderConfig], http: requests.Session | None = None):
        self._providers: dict[str, Provider] = {}
        if configs:  # without providers, no HTTP client at all
            session = http or _requests().Session()
            self._providers = {name: Provider(config, session) for name, config in configs.items()}

    def get(self, name: str) -> Provider:
        provider = self._providers.get(name)
        if provider is None:
            raise UnknownProvider()
        return provider
