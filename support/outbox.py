"""The events a service wrote to its outbox table, read from the database it really uses. Every service's
outbox has the one shape `shared.outbox.define_outbox` gives it, so one reader serves identity and tenancy."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, create_engine, select

from shared.outbox import define_outbox

TABLE = define_outbox(MetaData())


class Outbox:
    """`engine.dispose()` when done (fixtures do it)."""

    def __init__(self, database_url: str):
        self.engine = create_engine(database_url)

    def sent(self, event_type: str | None = None) -> list[tuple[dict[str, Any], datetime | None]]:
        """(event, when the relay marked it sent or None), oldest first; only `event_type`'s when given."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(TABLE.c.envelope, TABLE.c.sent_at).order_by(TABLE.c.created_at)).all()
        pairs = [(json.loads(envelope), sent_at) for envelope, sent_at in rows]
        return [(event, sent_at) for event, sent_at in pairs if event_type is None or event["type"] == event_type]

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The events (CloudEvents envelopes), oldest first; only `event_type`'s when given."""
        return [event for event, _sent_at in self.sent(event_type)]

    def last(self, event_type: str, email: str | None = None) -> dict[str, Any]:
        """The latest `event_type` event (whose data's email is `email`, when given); AssertionError if none."""
        matching = [e for e in self.events(event_type) if email is None or e["data"].get("email") == email]
        assert matching, f"no {event_type} event in the outbox"
        return matching[-1]
