"""Rate limits and failure throttles kept in the service's database, so every worker and replica
shares them. Both count first, in one statement, and then decide: `hit` (rate limits: a refused
request still counts) and `guess` (guesses at a secret: a refused guess does not). `guess_cheap`, for
a secret checked in microseconds, counts the wrong guesses first as `guess` does and lets a right one
take effect in one statement without counting it: the same answers, as one client in a row gets.

Where it stands in the persistence rule (docs/architecture.md): this is the shared counterpart of a
service's `autocommit.py`. Every statement here stands alone (an upsert that counts and decides at
once, a conditional update, a delete) and never joins a unit of work, so they all run on the
service's autocommit engine (no BEGIN and COMMIT around each statement). The hot statements are
precompiled (`shared.statements`)."""
from __future__ import annotations

import copy
import functools
import importlib
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, bindparam, case, delete, or_, select, update

from shared.database import UTCDateTime, utcnow
from shared.errors import RateLimited
from shared.statements import Precompiled

T = TypeVar("T")


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
    def __init__(self, autocommit_engine: Engine, table: Table, clock=utcnow):
        """`autocommit_engine`: `make_engine(url, autocommit=True)` (see the module's docstring)."""
        self.autocommit_engine = autocommit_engine
        self.table = table
        self.clock = clock
        self.source: str | None = None  # see for_source()
        # Both dialects spell the upsert alike; only the one in use is imported.
        self._insert = importlib.import_module(f"sqlalchemy.dialects.{autocommit_engine.dialect.name}").insert
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
        self._counted = Precompiled(select(table.c.hits, table.c.window_start, table.c.blocked_until)
                                    .where(table.c.key == bindparam("key")))
        # A guess: counted unless the key is blocked (then the conflict's WHERE is false and no row comes
        # back); the guess that reaches `free` blocks the key until it is decided. A stale count starts again.
        pending = bindparam("pending", type_=UTCDateTime)
        new_hits = case((stale, 1), else_=table.c.hits + 1)
        self._count_guess = Precompiled(
            self._insert(table).values(key=bindparam("key"), hits=1, window_start=now,
                                       blocked_until=bindparam("inserted_block", type_=UTCDateTime))
            .on_conflict_do_update(index_elements=["key"], set_={
                "hits": new_hits,
                "window_start": case((stale, now), else_=table.c.window_start),
                "blocked_until": case((new_hits >= bindparam("free", type_=Integer), pending), else_=None),
            }, where=or_(table.c.blocked_until.is_(None), table.c.blocked_until <= now))
            .returning(table.c.hits)
        )
        this_guess = (table.c.key == bindparam("key")) & (table.c.hits == bindparam("hits"))
        self._block = Precompiled(update(table).where(this_guess)
                                  .values(blocked_until=bindparam("until", type_=UTCDateTime)))
        self._clear = Precompiled(delete(table).where(table.c.key == bindparam("key")))
        # A right cheap guess forgets the count it read, unless another guess was counted (or blocked) since.
        self._clear_unchanged = Precompiled(delete(table).where(
            table.c.key == bindparam("key"), table.c.hits == bindparam("hits"),
            table.c.window_start == bindparam("window_start", type_=UTCDateTime),
            or_(table.c.blocked_until.is_(None), table.c.blocked_until <= bindparam("now", type_=UTCDateTime))))
        # Giving a try back lifts the block only if no later guess was counted (none can be while it holds).
        self._give_back = Precompiled(
            update(table).where(table.c.key == bindparam("key"), table.c.hits >= bindparam("hits"))
            .values(hits=table.c.hits - 1, blocked_until=case((this_guess, None), else_=table.c.blocked_until)))

    def hit(self, key: str, limit: int, window_seconds: int) -> None:
        """Count one event in a fixed window; raise RateLimited once more than `limit` fell in it."""
        now = self.clock()
        with self.autocommit_engine.begin() as conn:
            hits, window_start = self._count_hit.first(conn, {
                "key": key, "now": now, "cutoff": now - timedelta(seconds=window_seconds),
            })
        if hits > limit:
            raise RateLimited(_seconds_until(window_start + timedelta(seconds=window_seconds), now))

    def for_source(self, address: str | None) -> Throttle:
        """This throttle, with guesses keyed on the client's address as well as their target."""
        bound = copy.copy(self)
        bound.source = address or "unknown"
        return bound

    def guess(self, key: str, check: Callable[[], T], wrong: type[Exception], *, free_failures: int,
              base_delay: int, max_delay: int, forget_after: int) -> T:
        """Run `check`, one guess at a secret, under the failure throttle of `key` and the caller's address.

        The guess is counted before it is checked, in one statement, so concurrent guesses (other workers,
        other replicas) get no more tries than one client in a row. From the `free_failures`-th guess on,
        counting it also blocks the key until it is decided: a wrong guess (`check` raising `wrong`) keeps
        it blocked for a doubling delay (`base_delay`, then twice that, ...) capped at `max_delay`; a right
        one clears the count; any other error gives the try back. Past `forget_after` seconds from the
        first counted guess the count starts again. Keyed on the source address (`for_source`) as well,
        so guessing from one address never blocks the real user at another."""
        key = self._source_key(key)
        now = self.clock()
        first_block = now + timedelta(seconds=max_delay)  # until the guess is decided
        with self.autocommit_engine.begin() as conn:
            counted = self._count_guess.first(conn, {
                "key": key, "now": now, "cutoff": now - timedelta(seconds=forget_after), "free": free_failures,
                "pending": first_block, "inserted_block": first_block if free_failures <= 1 else None,
            })
            if counted is None:
                row = self._counted.first(conn, {"key": key})
                until = row.blocked_until if row is not None and row.blocked_until is not None else now
                raise RateLimited(_seconds_until(until, now))
        hits = counted.hits
        try:
            result = check()
        except wrong:
            delay = block_delay(hits, free_failures=free_failures, base_delay=base_delay, max_delay=max_delay)
            if delay is not None:
                with self.autocommit_engine.begin() as conn:
                    self._block.rowcount(conn, {"key": key, "hits": hits,
                                                "until": self.clock() + timedelta(seconds=delay)})
            raise
        except BaseException:
            with self.autocommit_engine.begin() as conn:
                self._give_back.rowcount(conn, {"key": key, "hits": hits})
            raise
        self.clear(key)
        return result

    def guess_cheap(self, key: str, check: Callable[[], T], wrong: type[Exception], *, free_failures: int,
                    base_delay: int, max_delay: int, forget_after: int) -> T:
        """`guess`, with the same limits and the same answers, for a check that costs next to nothing and
        takes as long right as wrong (a client secret's SHA-256 compare), which every token request of a
        confidential client runs: a right guess at a key with nothing counted costs one read, no write.

        The key's row is read first. While the key is blocked the guess is refused unchecked, right or wrong
        alike (so neither the answer nor its time says anything about the secret), as `guess` refuses it.
        Otherwise the secret is checked. A wrong one goes through `guess`: counted, then answered from a
        check made after counting. A right one takes effect at the read (nothing counted: nothing to undo)
        or clears the count it read with one compare-and-delete (same count, same window, still not
        blocked); if another guess was counted since, `guess` decides it. Each guess so takes effect at one
        statement, and concurrent guesses are answered as if they came one after another in that order:
        no more tries than one client in a row (`tests/shared/test_service_tokens.py` races them)."""
        bound = self._source_key(key)
        counted = functools.partial(self.guess, key, check, wrong, free_failures=free_failures,
                                    base_delay=base_delay, max_delay=max_delay, forget_after=forget_after)
        now = self.clock()
        with self.autocommit_engine.connect() as conn:
            row = self._counted.first(conn, {"key": bound})
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            raise RateLimited(_seconds_until(row.blocked_until, now))
        try:
            result = check()
        except wrong:
            return counted()
        if row is None:
            return result
        with self.autocommit_engine.begin() as conn:
            cleared = self._clear_unchanged.rowcount(conn, {"key": bound, "hits": row.hits,
                                                             "window_start": row.window_start, "now": now})
        return result if cleared else counted()

    def _source_key(self, key: str) -> str:
        if self.source is None:
            raise TypeError("guess() needs a throttle bound to the client's address: use for_source()")
        return f"{key}@{self.source}"

    def clear(self, key: str) -> None:
        with self.autocommit_engine.begin() as conn:
            self._clear.rowcount(conn, {"key": key})

    def clear_every_source(self, key: str) -> None:
        """Forget the guesses at `key` from every address (a password reset proved who the user is)."""
        table = self.table
        with self.autocommit_engine.begin() as conn:
            conn.execute(delete(table).where(table.c.key.startswith(f"{key}@", autoescape=True)))


def block_delay(hits: int, *, free_failures: int, base_delay: int, max_delay: int) -> int | None:
    """Seconds a key stays blocked after its `hits`-th guess turned out wrong: none before the
    `free_failures`-th, then `base_delay`, doubling with each further wrong guess, capped at `max_delay`."""
    if hits < free_failures:
        return None
    return min(max_delay, base_delay * 2 ** min(hits - free_failures, 64))


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))
