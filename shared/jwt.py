"""Signing and verifying JWTs. The only module that touches python-jose.

Verification follows RFC 8725: the algorithm list is ours, never the token's; the key is chosen by
`kid` among the issuer's published keys (symmetric keys are never accepted from a JWKS); issuer,
audience, expiry, issued-at and subject are required, and an `iat` later than now plus the leeway is
refused (as PyJWT does); `jku`, `x5u` and `jwk` headers are ignored.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import TYPE_CHECKING

from jose import jwk, jws, jwt
from jose.backends.base import Key
from jose.exceptions import ExpiredSignatureError, JOSEError

from shared.errors import DomainError, Unavailable

if TYPE_CHECKING:
    import requests

log = logging.getLogger("threshold.jwt")

ACCESS_TOKEN_TYPE = "at+jwt"
ID_TOKEN_TYPE = "JWT"  # OpenID Connect ID tokens: RPs expect "JWT" or nothing (RFC 9068 "at+jwt" is for access tokens)
ASYMMETRIC_KEY_TYPES = ("EC", "RSA")
ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")  # what Threshold signs with
MAX_LEEWAY = 60
WALL_CLOCK = partial(datetime.now, UTC)  # shared.database.utcnow would load SQLAlchemy into every product service


class TokenRejected(DomainError):
    code = "invalid_token"
    message = "The bearer token is missing, malformed, expired or not ours."
    bearer = True


class KeysUnavailable(Unavailable):
    """The issuer's key set could not be fetched, so a token signed by a key not yet known cannot be judged:
    503 with Retry-After rather than 401, which would tell a client to throw a good token away."""

    message = "The token issuer's signing keys could not be fetched; try again shortly."

    def __init__(self):
        super().__init__(self.message)


def load_public_key(jwk_dict: dict) -> Key | None:
    """A verifying key from a JWK, or None when it is not an asymmetric signing key we accept."""
    if jwk_dict.get("kty") not in ASYMMETRIC_KEY_TYPES or jwk_dict.get("use", "sig") != "sig":
        return None
    if "d" in jwk_dict or not isinstance(jwk_dict.get("alg"), str):
        return None
    try:
        return jwk.construct(jwk_dict, jwk_dict["alg"])
    except JOSEError:
        return None


def load_private_key(pem: bytes, algorithm: str) -> Key:
    return jwk.construct(pem, algorithm)


def _base64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@lru_cache(maxsize=64)
def _encoded_header(algorithm: str, kid: str, token_type: str) -> bytes:
    return _base64url(json.dumps({"alg": algorithm, "kid": kid, "typ": token_type}, separators=(",", ":"),
                                 sort_keys=True).encode())


def sign(claims: dict, key: Key, kid: str, algorithm: str, token_type: str = ACCESS_TOKEN_TYPE) -> str:
    """Encode exactly these claims (tests use it to forge tokens; services mint with `mint`).

    The compact serialization python-jose's `jwt.encode` writes, byte for byte (the same JSON of the header
    and of the claims), signed by the jose key itself; without jose's per-call checks and re-encoding of a
    header that is the same for every token of a key, which cost as much as the signature."""
    if algorithm not in ASYMMETRIC_ALGORITHMS or not isinstance(key, Key):
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid, "typ": token_type})
    signing_input = _encoded_header(algorithm, kid, token_type) + b"." + _base64url(
        json.dumps(claims, separators=(",", ":")).encode())
    return (signing_input + b"." + _base64url(key.sign(signing_input))).decode()


def mint(*, key: Key, kid: str, algorithm: str, issuer: str, subject: str, audience: str | list[str],
         issued_at: datetime, lifetime: int, claims: Mapping[str, object],
         token_type: str = ACCESS_TOKEN_TYPE) -> str:
    """Every JWT Threshold issues: user and service access tokens, the OpenID Provider's ID tokens and
    RFC 9068 access tokens. The registered claims (`iss`, `sub`, `aud`, `iat`, `exp`, a fresh `jti`) are
    set here, once, for all of them; `claims` adds the kind's own and may not replace these."""
    issued = int(issued_at.timestamp())
    registered = {"iss": issuer, "sub": subject, "aud": audience, "iat": issued, "exp": issued + lifetime,
                  "jti": str(uuid.uuid4())}
    clash = registered.keys() & claims.keys()
    if clash:
        raise ValueError(f"mint sets {', '.join(sorted(clash))} itself")
    return sign({**registered, **claims}, key, kid, algorithm, token_type)


def unverified_audience(token: str) -> str | None:
    """The single `aud` of a token, read without verifying it: only to choose what to verify it against."""
    try:
        audience = jwt.get_unverified_claims(token).get("aud")
    except (JOSEError, AttributeError):
        return None
    return audience if isinstance(audience, str) else None


class JwksClient:
    """Keys of one issuer, fetched over HTTP and cached.

    A token with an unknown kid triggers at most one refetch per `refetch_interval`, so a flood of
    made-up kids cannot turn into a flood of requests to the issuer. While the issuer is down the
    cached keys keep working.
    """

    def __init__(self, jwks_url: str, cache_ttl: float = 300, refetch_interval: float = 30, timeout: float = 3,
                 session: requests.Session | None = None):
        self.jwks_url = jwks_url
        self.cache_ttl = cache_ttl
        self.refetch_interval = refetch_interval
        self.timeout = timeout
        import requests  # here, not at the top: a service that verifies only its own tokens never loads it

        self.http = session or requests.Session()
        self._fetch_errors = (requests.RequestException, ValueError)
        self._keys: dict[str, tuple[str, Key]] = {}
        self._fetched_at = float("-inf")
        self._fetch_failed = False
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        try:
            response = self.http.get(self.jwks_url, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
        except self._fetch_errors as exc:
            log.warning("JWKS fetch from %s failed: %s", self.jwks_url, exc)
            self._fetched_at = time.monotonic()  # failed fetches count against the refetch budget too
            self._fetch_failed = True
            return
        keys = {}
        for item in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(item, dict) or not isinstance(item.get("kid"), str):
                continue
            key = load_public_key(item)
            if key is not None:
                keys[item["kid"]] = (item["alg"], key)
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._fetch_failed = False

    def get(self, kid: str) -> tuple[str, Key] | None:
        """The key with this kid; None when the issuer's key set has none; KeysUnavailable when the key
        set could not be fetched and holds no such key."""
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > self.cache_ttl or (kid not in self._keys and age > self.refetch_interval):
                self._refresh()
            if kid not in self._keys and self._fetch_failed:
                raise KeysUnavailable()
            return self._keys.get(kid)


class Verifier:
    """Verifies access tokens from one issuer for one audience.

    A client sends the same access token with every request until it expires, so the verdict on a
    token is remembered (`cache_size` tokens, least recently used dropped first). A remembered token
    is accepted again only while it has not expired and its `kid` still gives the very key that
    verified it: a key that leaves the key set takes its tokens with it. The remembered entry is the
    exact token string, so nothing but a byte-identical token ever hits it; failures are never kept.
    A remembered token's `iat` is checked again against the clock, like its expiry.
    """

    def __init__(self, key_source: Callable[[str], tuple[str, Key] | None], issuer: str, audience: str | Iterable[str],
                 algorithms: Iterable[str] = ("ES256",), leeway: int = 30, token_type: str | None = ACCESS_TOKEN_TYPE,
                 cache_size: int = 1024, expired_ok: bool = False,
                 clock: Callable[[], datetime] = WALL_CLOCK):
        """`token_type=None` skips the `typ` check (ID tokens from OpenID providers carry none, or "JWT");
        `cache_size=0` verifies every token from scratch (one-time tokens gain nothing from the cache);
        `expired_ok=True` (with `cache_size=0`) takes an expired token, for hints such as a logout's
        `id_token_hint`, which name someone and authorize nothing. `clock` is the service's clock, which
        an `iat` may not be later than (plus the leeway)."""
        if expired_ok and cache_size:
            raise ValueError("expired_ok needs cache_size=0")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds")
        self.key_source = key_source
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self.token_type = token_type
        self.cache_size = cache_size
        self.expired_ok = expired_ok
        self.clock = clock
        self._verified: OrderedDict[str, tuple[dict, str, Key, int, int]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def remembered(self) -> int:
        """How many verified tokens are remembered now."""
        with self._lock:
            return len(self._verified)

    def verify(self, token: str) -> dict:
        """Claims of a valid token; raises TokenRejected for anything else."""
        if not self.cache_size:
            return self._verify_signed(token)[0]
        with self._lock:
            entry = self._verified.get(token)
            if entry is not None:
                self._verified.move_to_end(token)
        if entry is not None:
            claims, kid, key, expires, issued = entry
            found = self.key_source(kid)
            # Expired exactly when python-jose would say so: exp before now (whole seconds) minus the leeway.
            if found is not None and found[1] is key and expires >= int(time.time()) - self.leeway \
                    and not self._issued_in_future(issued):
                return dict(claims)
            with self._lock:
                self._verified.pop(token, None)
        claims, kid, key = self._verify_signed(token)
        with self._lock:
            # python-jose accepted int(exp) and int(iat), so they are numbers here whatever their JSON types were.
            self._verified[token] = (claims, kid, key, int(claims["exp"]), int(claims["iat"]))
            if len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return dict(claims)

    def _verify_signed(self, token: str) -> tuple[dict, str, Key]:
        """Claims, kid and key of a valid token, checked from scratch."""
        if not isinstance(token, str) or token.count(".") != 2:
            raise TokenRejected("The token is not a JWS compact serialization.")
        try:
            header = jws.get_unverified_header(token)
        except JOSEError:
            raise TokenRejected("The token header cannot be read.") from None
        if "crit" in header:
            # RFC 7515 4.1.11: extensions we do not understand must make the token invalid; we understand none.
            raise TokenRejected("The token names critical header extensions.")
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise TokenRejected("The token's algorithm is not accepted.")
        if self.token_type is not None and \
                str(header.get("typ", "")).lower() not in (self.token_type, f"application/{self.token_type}"):
            raise TokenRejected("The token is not an access token.")
        kid = header.get("kid")
        found = self.key_source(kid) if isinstance(kid, str) and kid else None
        if found is None:
            raise TokenRejected("The token was signed by a key we do not know.")
        key_algorithm, key = found
        if key_algorithm != algorithm:
            raise TokenRejected("The token's algorithm does not match its key.")
        audiences = [self.audience] if isinstance(self.audience, str) else list(self.audience)
        last_error: Exception | None = None
        for audience in audiences:
            try:
                claims = jwt.decode(
                    token, key, algorithms=[algorithm], audience=audience, issuer=self.issuer,
                    options={"require_exp": True, "require_iat": True, "require_sub": True, "require_aud": True,
                             "require_iss": True, "leeway": self.leeway, "verify_at_hash": False,
                             "verify_exp": not self.expired_ok},
                )
            except ExpiredSignatureError:
                raise TokenRejected("The token has expired.") from None
            except (JOSEError, TypeError, OverflowError) as exc:  # python-jose lets int(None) or int(inf) escape
                last_error = exc
                continue
            # python-jose only checks that iat is a number; a token from the future is refused here.
            if self._issued_in_future(int(claims["iat"])):
                raise TokenRejected("The token was issued in the future.")
            return claims, kid, key
        raise TokenRejected(f"The token is not valid: {last_error}.")

    def _issued_in_future(self, issued: int) -> bool:
        return issued > self.clock().timestamp() + self.leeway
