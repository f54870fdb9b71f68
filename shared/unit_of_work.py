"""Unit of work: one database transaction, and the events it records go into the outbox at commit."""
from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.orm import Session, sessionmaker

from shared import outbox
from shared.events import Event


class UnitOfWork:
    """`with uow:` opens a session; `commit()` writes recorded events to the outbox, then commits.

    Leaving the block without commit rolls back, events included: nothing is half-written.
    """

    def __init__(self, session_factory: sessionmaker, outbox_table: Table, source: str, request_id: str | None = None):
        self._session_factory = session_factory
        self._outbox_table = outbox_table
        self._source = source
        self._request_id = request_id
        self.session: Session | None = None
        self._events: list[Event] = []

    def __enter__(self):
        self.session = self._session_factory()
        self._events = []
        self.open_repositories(self.session)
        return self

    def __exit__(self, *exc):
        # close() rolls back whatever was not committed and, unlike rollback(), leaves loaded
        # objects readable after the block.
        self.session.close()
        self.session = None

    def open_repositories(self, session: Session) -> None:
        """Subclasses attach their repositories to the session here."""

    def record(self, event: Event) -> None:
        self._events.append(event)

    def commit(self) -> None:
        outbox.write(self.session, self._outbox_table, self._source, self._events, self._request_id)
        self._events = []
        self.session.commit()
