"""Rate limits and failure throttles kept in the service's database, so every worker and replica
shares them. Each call runs in its own short transaction: a refused request still counts. Calls that
are one statement run on the autocommit engine when there is one (no BEGIN and COMMIT around them)."""
from __future__ import annotations

import importlib
import math
from datetime import datetime, timedelta

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, bindparam, case, delete, select, update

from shared.database import UTCDateTime, utcnow
from shared.errors import RateLimited
from shared.statements import Precompiled


def define_throttles(metadata: MetaData) -> Table:
    return Table(
        "throttles",
        metadata,
        Column("key", String(200), primary_key=True),
        Column("hits", Integer, nullable=False),
        Column("window_start", UTCDateTime, nullable=False),
        Column("blocked_until", UTCDateTime, nullable=True),
    )


class Throttle:
    def __init__(self, engine: Engine, table: Table, clock=utcnow, autocommit_engine: Engine | None = None):
        self.engine = engine
        self.autocommit_engine = autocommit_engine or engine
        self.table = table
        self.clock = clock
        # Both dialects spell the upsert alike; only the one in use is imported.
        self._insert = importlib.import_module(f"sqlalchemy.dialects.{engine.dialect.name}").insert
        # One upsert: a first hit inserts 1; later ones count on, or start a new window when the old one
        # is over (SET reads the existing row on both PostgreSQL and SQLite). Built once: building and
        # hashing a statement costs more than running it.
        now = bindparam("now", type_=UTCDateTime)
        stale = table.c.window_start <= bindparam("cutoff", type_=UTCDateTime)
        self._count_hit = Precompiled(
            self._insert(table).values(key=bindparam("key"), hits=1, window_start=now)
            .on_conflict_do_update(index_elements=["key"], set_={
                "hits": case((stale, 1), else_=table.c.hits + 1),
                "window_start": case((stale, now), else_=table.c.window_start),
            })
            .returning(table.c.hits, table.c.window_start)
        )
        self._blocked_until = Precompiled(select(table.c.blocked_until).where(table.c.key == bindparam("key")))

    def hit(self, key: str, limit: int, window_seconds: int) -> None:
        """Count one event in a fixed window; raise RateLimited once more than `limit` fell in it."""
        now = self.clock()
        with self.autocommit_engine.begin() as conn:
            hits, window_start = self._count_hit.first(conn, {
                "key": key, "now": now, "cutoff": now - timedelta(seconds=window_seconds),
            })
        if hits > limit:
            raise RateLimited(_seconds_until(window_start + timedelta(seconds=window_seconds), now))

    def check_blocked(self, key: str) -> bool:
        """Raise RateLimited while `key` is blocked by earlier failures; otherwise say whether any
        failure is on record (so a success knows whether there is anything to clear)."""
        now = self.clock()
        with self.autocommit_engine.connect() as conn:
            row = self._blocked_until.first(conn, {"key": key})
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            raise RateLimited(_seconds_until(row.blocked_until, now))
        return row is not None

    def record_failure(self, key: str, free_failures: int, base_delay: int, max_delay: int, forget_after: int) -> None:
        """One more failure: from the `free_failures`-th on, each blocks the next attempt for a doubling
        delay (`base_delay`, then twice that, ...), capped at `max_delay`."""
        now = self.clock()
        table = self.table
        with self.engine.begin() as conn:
            # One statement that inserts or locks the row and returns it: a concurrent clear() (a success)
            # cannot delete it between an insert-if-missing and a separate SELECT (that was a 500).
            row = conn.execute(
                self._insert(table).values(key=key, hits=0, window_start=now)
                .on_conflict_do_update(index_elements=["key"], set_={"hits": table.c.hits})
                .returning(table.c.hits, table.c.window_start)
            ).one()
            forgotten = row.window_start <= now - timedelta(seconds=forget_after)
            hits = 1 if forgotten else row.hits + 1
            window_start = now if hits == 1 else row.window_start
            blocked_until = None
            if hits >= free_failures:
                delay = min(max_delay, base_delay * 2 ** (hits - free_failures))
                blocked_until = now + timedelta(seconds=delay)
            conn.execute(
                update(table).where(table.c.key == key).values(hits=hits, window_start=window_start, blocked_until=blocked_until)
            )

    def clear(self, key: str) -> None:
        with self.autocommit_engine.begin() as conn:
            conn.execute(delete(self.table).where(self.table.c.key == key))


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))
