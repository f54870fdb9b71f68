"""Tenancy's unit of work: one transaction with its repositories and its outbox."""
from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from services.tenancy import repository
from services.tenancy.models import outbox
from shared.unit_of_work import UnitOfWork

SOURCE = "/threshold/tenancy"


class TenancyUnitOfWork(UnitOfWork):
    organizations: repository.Organizations
    workspaces: repository.Workspaces
    invitations: repository.Invitations

    def __init__(self, session_factory: sessionmaker, request_id: str | None = None):
        super().__init__(session_factory, outbox, SOURCE, request_id)

    def open_repositories(self) -> None:
        self.organizations = repository.Organizations(self)
        self.workspaces = repository.Workspaces(self)
        self.invitations = repository.Invitations(self)
