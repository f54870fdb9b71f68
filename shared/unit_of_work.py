"""Unit of work: one database transaction, and the events it records go into the outbox at commit."""
from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.orm import Session, sessionmaker

from shared import outbox
from shared.events import Event


class UnitOfWork:
    """`with uow:` is one transaction; `commit()` writes recorded events to the outbox, then commits.

    Leaving the block without commit rolls back, events included: nothing is half-written.

    The connection (and the transaction on it) is opened on first use, and the ORM session only when
    a repository asks for one, bound to that same connection: the hot paths, which run Core
    statements only, pay for no session (its setup and teardown cost more than their SQL).
    """

    def __init__(self, session_factory: sessionmaker, outbox_table: Table, source: str, request_id: str | None = None):
        self._session_factory = session_factory
        self._engine = session_factory.kw["bind"]
        self._outbox_table = outbox_table
        self._source = source
        self._request_id = request_id
        self._connection: Connection | None = None
        self._session: Session | None = None
        self._events: list[Event] = []
        self.open_repositories()

    def __enter__(self):
        self._events = []
        return self

    def __exit__(self, *exc):
        # Closing rolls back whatever was not committed; closing the session (rather than rolling it
        # back) leaves the objects it loaded readable after the block.
        session, connection = self._session, self._connection
        self._session = self._connection = None
        if session is not None:
            session.close()
        if connection is not None:
            connection.close()

    def open_repositories(self) -> None:
        """Subclasses make their repositories (`Repository(self)`) here."""

    @property
    def connection(self) -> Connection:
        """The connection of this unit of work, inside its transaction."""
        if self._connection is None:
            self._connection = self._engine.connect()
        if not self._connection.in_transaction():
            self._connection.begin()
        return self._connection

    @property
    def session(self) -> Session:
        """The ORM session of this unit of work, on its connection and in its transaction."""
        if self._session is None:
            self._session = self._session_factory(bind=self.connection, join_transaction_mode="control_fully")
        return self._session

    def flush(self) -> None:
        """Write what the ORM session holds, so Core statements that follow can see (and refer to) it."""
        if self._session is not None:
            self._session.flush()

    def record(self, event: Event) -> None:
        self._events.append(event)

    def commit(self) -> None:
        self.flush()
        if self._events:
            outbox.write(self.connection, self._outbox_table, self._source, self._events, self._request_id)
            self._events = []
        if self._session is not None:
            self._session.commit()  # it controls the connection's transaction: this commits it
        elif self._connection is not None and self._connection.in_transaction():
            self._connection.commit()


class Repository:
    """Base of the repositories: they reach the session or connection of their unit of work."""

    def __init__(self, uow: UnitOfWork):
        self._uow = uow

    @property
    def session(self) -> Session:
        return self._uow.session

    @property
    def connection(self) -> Connection:
        return self._uow.connection
