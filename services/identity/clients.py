"""Service-to-service tokens: client credentials for internal HTTP calls."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from services.identity.accounts import failure_policy
from services.identity.autocommit import Reads
from services.identity.errors import InvalidClient, InvalidScope, UnsupportedGrantType
from services.identity.keys import KeyStore
from services.identity.models import Account, ServiceClient
from services.identity.settings import Settings
from services.identity.unit_of_work import IdentityUnitOfWork
from shared import jwt, opaque_tokens
from shared.throttle import Throttle

MAX_ACCOUNT_IDS = 100


def register(uow: IdentityUnitOfWork, *, client_id: str, secret: str, scopes: list[str], now: datetime) -> None:
    """Create or update a client (its secret is stored as a SHA-256)."""
    with uow:
        uow.clients.put(ServiceClient(client_id=client_id, secret_hash=opaque_tokens.digest(secret),
                                      scopes=" ".join(sorted(set(scopes))), created_at=now))
        uow.commit()


def secret_guess_key(client_id: str) -> str:
    """The failure-throttle key of guesses at a client's secret (service clients and relying parties alike)."""
    return f"client:{hashlib.sha256(client_id.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"


def issue_token(reads: Reads, *, throttle: Throttle, keys: KeyStore, settings: Settings, grant_type: str,
                client_id: str, client_secret: str, scope: str | None, now: datetime) -> dict:
    """A client-credentials token. Wrong secrets are throttled per client id and client address like
    wrong passwords (`Throttle.guess_cheap`; `throttle` is bound to the client's address). The client is one
    precompiled read (`Reads`): this runs for every service-to-service call."""
    if grant_type != "client_credentials":
        raise UnsupportedGrantType()
    client = reads.service_client(client_id)

    def check() -> None:
        presented = opaque_tokens.digest(client_secret)
        expected = client.secret_hash if client is not None else opaque_tokens.digest("no such client")
        if not hmac.compare_digest(presented, expected) or client is None:
            raise InvalidClient()

    throttle.guess_cheap(secret_guess_key(client_id), check, InvalidClient, **failure_policy(settings))
    allowed = set(client.scopes.split())
    requested = set(scope.split()) if scope else allowed
    if not requested <= allowed:
        raise InvalidScope(f"Allowed scopes: {' '.join(sorted(allowed))}.")
    key = keys.signing_key()
    granted = " ".join(sorted(requested))
    token = jwt.mint(key=key.signing, kid=key.kid, algorithm=key.algorithm, issuer=settings.issuer,
                     subject=client_id, audience=settings.audience, issued_at=now,
                     lifetime=settings.access_token_ttl, claims={"client_id": client_id, "scope": granted})
    return {"access_token": token, "token_type": "Bearer", "expires_in": settings.access_token_ttl, "scope": granted}


def accounts_by_id(uow: IdentityUnitOfWork, *, ids: list[str]) -> dict:
    with uow:
        accounts: list[Account] = uow.accounts.many(list(dict.fromkeys(ids))[:MAX_ACCOUNT_IDS])
        return {"items": [account.public() for account in accounts]}
