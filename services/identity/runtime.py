"""What identity's request handlers share for the life of the process (built once in the app factory)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy.orm import sessionmaker

from services.identity.autocommit import Reads, Rotations
from services.identity.keys import KeyStore
from services.identity.oidc import Providers
from services.identity.provider import Provider
from services.identity.settings import Settings
from services.identity.totp import SecretBox
from services.identity.unit_of_work import IdentityUnitOfWork
from shared.logs import current_request_id
from shared.throttle import Throttle

EXTENSION = "threshold.identity"


@dataclass(kw_only=True)
class Runtime:
    settings: Settings
    reads: Reads  # single-statement reads on the autocommit engine
    rotations: Rotations  # refresh-token rotation, on the autocommit engine too
    session_factory: sessionmaker
    keys: KeyStore
    throttle: Throttle
    clock: Callable[[], datetime]
    totp_box: SecretBox
    oidc: Providers
    provider: Provider  # the OpenID Provider (this service as the issuer product apps sign in with)

    def uow(self) -> IdentityUnitOfWork:
        return IdentityUnitOfWork(self.session_factory, current_request_id())


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION]
