"""Core statements compiled once and run straight on the DB-API cursor, for the hottest paths.

SQLAlchemy still writes the SQL (for each dialect) and still converts every value with the column
type's own bind and result processors. What `Precompiled` leaves out is the per-execution machinery
around them (cache-key generation, execution context, result objects and their events), which costs
several times the statement itself: 70 to 100 microseconds a statement against 10 to 25 for the
driver on the 2-core machine of docs/performance.md. Sign-in, refresh, GET /v1/me and the rate limits
run one to five statements a request, so that difference was most of what they spent besides the
framework. Everything else keeps the ordinary Core and ORM APIs.

A statement runs on the DB-API connection of a SQLAlchemy `Connection`, inside whatever transaction
that connection has open (a unit of work's, or none on an autocommit engine), so commits, rollbacks,
pooling and disconnect handling stay SQLAlchemy's. Only single parameter sets and plain bound
parameters are supported (no expanding IN lists).
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


class _Compiled:
    def __init__(self, statement: ClauseElement, dialect: Dialect):
        compiled: Any = statement.compile(dialect=dialect)  # positiontup, bind_names: the compiler's own
        self.compiled = compiled
        self.sql = compiled.string
        self.positions = compiled.positiontup  # None for named paramstyles (psycopg's pyformat)
        # The dialect's own variant of each type does the conversion (SQLite keeps datetimes as text).
        # Keyed by the name each parameter has in the SQL (anonymous ones, e.g. for literal values, get one).
        self.bind_processors = {name: processor for bind, name in compiled.bind_names.items()
                                if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
        exported = getattr(statement, "exported_columns", None)
        columns = list(exported) if exported else []
        self.row_type: Any = namedtuple("Row", [column.key for column in columns]) if columns else None
        self.result_processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                                  for column in columns]

    def parameters(self, params: Mapping[str, Any]):
        values = self.compiled.construct_params(params)
        for name, processor in self.bind_processors.items():
            values[name] = processor(values[name])
        return values if self.positions is None else [values[name] for name in self.positions]

    def row(self, raw: tuple | None):
        if raw is None:
            return None
        return self.row_type(*[value if processor is None else processor(value)
                               for processor, value in zip(self.result_processors, raw, strict=True)])


class Precompiled:
    """One Core statement, compiled the first time it runs on each dialect."""

    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, connection: Connection) -> _Compiled:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return compiled

    def _run(self, connection: Connection, params: Mapping[str, Any]):
        compiled = self._for(connection)
        values = compiled.parameters(params)
        cursor = connection.connection.cursor()
        dbapi = connection.dialect.loaded_dbapi
        try:
            cursor.execute(compiled.sql, values)
        except dbapi.Error as error:
            # As SQLAlchemy's own execution would: a dead connection leaves the pool, and so do the idle
            # ones (a restarted server killed them all); the error is SQLAlchemy's (IntegrityError,
            # OperationalError, ...), without the statement's parameters in its text.
            disconnected = connection.dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
            cursor.close()
            if disconnected:
                connection.invalidate(error)
                connection.engine.pool.dispose()
            raise exc.DBAPIError.instance(compiled.sql, values, error, dbapi.Error, hide_parameters=True,
                                          connection_invalidated=disconnected,
                                          dialect=connection.dialect) from error
        return compiled, cursor

    def first(self, connection: Connection, params: Mapping[str, Any]):
        """The first row (a named tuple of the statement's columns), or None."""
        compiled, cursor = self._run(connection, params)
        try:
            return compiled.row(cursor.fetchone())
        finally:
            cursor.close()

    def all(self, connection: Connection, params: Mapping[str, Any]) -> list:
        """Every row (named tuples of the statement's columns)."""
        compiled, cursor = self._run(connection, params)
        try:
            return [compiled.row(raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()

    def rowcount(self, connection: Connection, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        _compiled, cursor = self._run(connection, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()
