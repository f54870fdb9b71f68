"""Everything web runs on the autocommit engine: statements that stand alone, outside any transaction.

The persistence rule (docs/architecture.md): what must be atomic runs in a transaction (web's session
store writes in one of its own, `sessions.py`); a statement that needs no transaction around it lives
here, on the autocommit engine. Every page opens its browser session: one precompiled read
(`shared.statements`), no ORM session and no BEGIN around it.
"""
from __future__ import annotations

from sqlalchemy import Engine, bindparam, select

from services.web.models import BrowserSession
from shared.statements import Precompiled

_sessions = BrowserSession.__table__
_SESSION = Precompiled(select(_sessions.c.data, _sessions.c.expires_at).where(_sessions.c.id == bindparam("id")))


class Reads:
    """The read-only queries, over the service's autocommit engine."""

    def __init__(self, autocommit_engine: Engine):
        self.engine = autocommit_engine

    def session(self, session_id: str):
        """A stored browser session (its encrypted `data` and `expires_at`) by id (the cookie's digest), or None."""
        with self.engine.connect() as conn:
            return _SESSION.first(conn, {"id": session_id})
