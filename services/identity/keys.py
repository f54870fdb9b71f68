"""Access-token signing keys: generation, rotation and the published key set.

Keys live in the identity database (every replica sees the same set), private halves encrypted with
SECRET_KEY. Each process loads them once at start and re-reads the set every `reload_interval` seconds
(before a request, never inside a transaction), so a rotation reaches every worker without a restart.
A rotated-in key is published at once but signs only from `activates_at` on, by which time every
worker and every consumer's JWKS cache has seen it; the previous key stays published until the last
token it signed has expired.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose.backends.base import Key

from services.identity.models import SigningKey
from services.identity.unit_of_work import IdentityUnitOfWork
from shared import jwt
from shared.database import utcnow

ALGORITHM = "ES256"  # access tokens, and ID tokens unless a client asks for RS256
ALGORITHMS = ("ES256", "RS256")
log = logging.getLogger("threshold.identity.keys")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _public_jwk(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, algorithm: str) -> dict:
    """The public JWK, its kid the RFC 7638 thumbprint."""
    numbers = private_key.public_key().public_numbers()
    if isinstance(numbers, rsa.RSAPublicNumbers):  # an RS256 key
        required = {"e": _int(numbers.e), "kty": "RSA", "n": _int(numbers.n)}
    else:
        required = {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x.to_bytes(32, "big")),
                    "y": _b64(numbers.y.to_bytes(32, "big"))}
    thumbprint = hashlib.sha256(json.dumps(required, separators=(",", ":"), sort_keys=True).encode()).digest()
    return {**required, "use": "sig", "alg": algorithm, "kid": _b64(thumbprint)}


def generate(secret_key: str, activates_at: datetime, algorithm: str = ALGORITHM) -> SigningKey:
    """A new key (P-256 for ES256, RSA 2048 for RS256), its private half encrypted with `secret_key`."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"signing keys are {' or '.join(ALGORITHMS)}, not {algorithm}")
    private_key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if algorithm == "RS256"
                   else ec.generate_private_key(ec.SECP256R1()))
    public = _public_jwk(private_key, algorithm)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret_key.encode()),
    )
    return SigningKey(kid=public["kid"], algorithm=algorithm, private_pem=pem.decode(), public_jwk=json.dumps(public),
                      activates_at=activates_at)


def rotate(uow: IdentityUnitOfWork, *, secret_key: str, activation_delay: int,
           algorithm: str = ALGORITHM) -> SigningKey:
    """Add a key; the first key of its algorithm signs at once, later ones after `activation_delay` seconds."""
    with uow:
        now = utcnow()
        first = not [key for key in uow.signing_keys.all() if key.algorithm == algorithm]
        key = generate(secret_key, now if first else now + timedelta(seconds=activation_delay), algorithm)
        uow.signing_keys.add(key)
        uow.commit()
    return key


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    algorithm: str
    activates_at: datetime
    public_jwk: dict
    verifying: Key
    signing: Key


def signing_choice(keys: Sequence[LoadedKey], now: datetime) -> LoadedKey:
    """Of one algorithm's keys, in activation order: the newest that is active, else the first to come."""
    active = [key for key in keys if key.activates_at <= now]
    return active[-1] if active else keys[0]


def still_published(keys: Sequence[LoadedKey], now: datetime, grace: timedelta) -> list[LoadedKey]:
    """Of one algorithm's keys, in activation order, those that may still verify a live token: the one
    signing, those waiting to activate, and a retired one until `grace` (the longest a token it signed
    lives) after its successor took over."""
    if not keys:
        return []
    signing = signing_choice(keys, now)
    kept = []
    for key, successor in zip(keys, [*keys[1:], None], strict=True):
        retired_at = successor.activates_at if successor is not None and successor.activates_at <= now else None
        if key is signing or retired_at is None or retired_at + grace > now:
            kept.append(key)
    return kept


class NoSigningKey(RuntimeError):
    """The identity database holds no signing key yet (run the migrate command)."""


class KeyStore:
    """The loaded key set of one process."""

    def __init__(self, uow_factory, *, secret_key: str, access_token_ttl: int, reload_interval: int,
                 clock=utcnow):
        self.uow_factory = uow_factory
        self.secret_key = secret_key
        self.access_token_ttl = access_token_ttl
        self.reload_interval = reload_interval
        self.clock = clock
        self._keys: list[LoadedKey] = []
        self._loaded_at: datetime | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self.uow_factory() as uow:
            rows = uow.signing_keys.all()
        known = {key.kid: key for key in self._keys}
        keys = [known.get(row.kid) or self._decode(row) for row in rows]
        if not keys:
            raise NoSigningKey("no signing key in the identity database: run `python -m services.identity migrate`")
        self._keys = keys
        self._loaded_at = self.clock()

    def _decode(self, row: SigningKey) -> LoadedKey:
        private_key = serialization.load_pem_private_key(row.private_pem.encode(), self.secret_key.encode())
        pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        public = json.loads(row.public_jwk)
        return LoadedKey(row.kid, row.algorithm, row.activates_at, public, jwt.load_public_key(public),
                         jwt.load_private_key(pem, row.algorithm))

    def refresh(self) -> None:
        """Re-read the key set when `reload_interval` has passed. Call it outside any transaction (the
        app does, before each request): on SQLite a reload inside one waits on the caller's own write
        lock. If the database does not answer, the loaded keys stay in use until the next interval."""
        if self._reload_due():
            with self._lock:
                if self._reload_due():
                    try:
                        self.load()
                    except Exception:  # keep signing and verifying with the keys we have
                        log.warning("signing keys could not be reloaded; keeping the loaded set", exc_info=True)
                        self._loaded_at = self.clock()

    def _reload_due(self) -> bool:
        if self._loaded_at is None:
            return True
        elapsed = (self.clock() - self._loaded_at).total_seconds()
        return elapsed > self.reload_interval or elapsed < 0  # or the wall clock was set back

    def _current(self, algorithm: str = ALGORITHM) -> list[LoadedKey]:
        return [key for key in self._keys if key.algorithm == algorithm]

    def has(self, algorithm: str) -> bool:
        """Whether a key of `algorithm` is loaded (RS256 ID tokens need an RSA key: `rotate-key --algorithm RS256`)."""
        return bool(self._current(algorithm))

    def signing_key(self, algorithm: str = ALGORITHM) -> LoadedKey:
        now = self.clock()
        keys = self._current(algorithm)
        if not keys:
            raise NoSigningKey(f"no {algorithm} signing key: run `python -m services.identity rotate-key "
                               f"--algorithm {algorithm}`")
        return signing_choice(keys, now)

    def published(self) -> list[LoadedKey]:
        """Keys that may still verify a live token, of each algorithm: the active one, those waiting to
        activate, and retired ones until every token they signed has expired."""
        now = self.clock()
        grace = timedelta(seconds=self.access_token_ttl + jwt.MAX_LEEWAY)
        return [key for algorithm in ALGORITHMS for key in still_published(self._current(algorithm), now, grace)]

    def jwks(self) -> dict:
        return {"keys": [key.public_jwk for key in self.published()]}

    def verifying_key(self, kid: str) -> tuple[str, Key] | None:
        for key in self.published():
            if key.kid == kid:
                return key.algorithm, key.verifying
        return None
