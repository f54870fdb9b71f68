"""What tenancy's request handlers share for the life of the process (built once in the app factory)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, g
from sqlalchemy.orm import sessionmaker

from services.tenancy.access import Caller
from services.tenancy.autocommit import Reads
from services.tenancy.directory import IdentityDirectory
from services.tenancy.invitations import InvitationLimits
from services.tenancy.settings import Settings
from services.tenancy.unit_of_work import TenancyUnitOfWork
from shared.logs import current_request_id

EXTENSION = "threshold.tenancy"


@dataclass(kw_only=True)
class Runtime:
    settings: Settings
    session_factory: sessionmaker
    directory: IdentityDirectory
    invitation_limits: InvitationLimits
    clock: Callable[[], datetime]
    reads: Reads

    def uow(self) -> TenancyUnitOfWork:
        return TenancyUnitOfWork(self.session_factory, current_request_id())


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION]


def caller() -> Caller:
    return Caller.from_claims(g.claims)
