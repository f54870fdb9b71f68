"""The transactional outbox: events are written in the same transaction as the change they describe,
and a relay publishes the committed rows to the bus with publisher confirms, then marks them sent.

A crash between publishing and marking sends a row twice; consumers are idempotent on the event id.
"""
from __future__ import annotations

import json
import logging
import threading
import time

from kombu import Connection, Producer
from sqlalchemy import Column, Engine, Index, MetaData, String, Table, Text, select, text, update
from sqlalchemy import Connection as DbConnection
from sqlalchemy.orm import Session

from shared import bus
from shared.database import UTCDateTime, is_postgres, utcnow
from shared.events import Event

log = logging.getLogger("threshold.outbox")
NOTIFY_CHANNEL = "threshold_outbox"


def define_outbox(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("type", String(200), nullable=False),
        Column("envelope", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("sent_at", UTCDateTime, nullable=True),
        Index(
            "ix_outbox_unsent",
            "created_at",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )


def write(connection: DbConnection, table: Table, source: str, events: list[Event],
          request_id: str | None = None) -> None:
    """Add the events to the outbox in the connection's transaction (called by the unit of work).

    `request_id` becomes the CloudEvents extension attribute `requestid`, so consumers' logs can name
    the request that caused the event."""
    if not events:
        return
    connection.execute(
        table.insert(),
        [
            {
                "id": event.id,
                "type": event.type,
                "envelope": json.dumps(event.envelope(source, request_id), separators=(",", ":")),
                "created_at": event.time,
            }
            for event in events
        ],
    )
    if connection.dialect.name == "postgresql":
        # Delivered at commit: wakes the relays at once instead of at their next poll.
        connection.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


def unsent_count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(text("count(*)")).select_from(table).where(table.c.sent_at.is_(None))).scalar_one()


class Relay:
    """Publishes unsent outbox rows. Several relays may run against PostgreSQL (SKIP LOCKED)."""

    def __init__(self, engine: Engine, table: Table, connection: Connection, batch_size: int = 100,
                 poll_interval: float = 0.1, max_backoff: float = 30.0, consumers: tuple[bus.ConsumerQueues, ...] = ()):
        self.engine = engine
        self.table = table
        self.connection = connection
        self.consumers = consumers  # whose queues to declare before the first publish
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self._producer: Producer | None = None

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            self.connection.ensure_connection(max_retries=1)
            bus.declare_topology(self.connection.default_channel, self.consumers)
            self._producer = Producer(self.connection.default_channel, exchange=bus.EXCHANGE)
        return self._producer

    def _drop_connection(self) -> None:
        self._producer = None
        try:
            self.connection.close()
        except Exception:  # closing a broken connection may fail in many ways; we reconnect anyway
            pass

    def publish_batch(self) -> int:
        """Publish one batch; returns how many rows were sent. Broker errors propagate."""
        producer = self._ensure_producer()
        table = self.table
        with Session(self.engine) as session, session.begin():
            query = select(table.c.id, table.c.type, table.c.envelope).where(table.c.sent_at.is_(None))
            query = query.order_by(table.c.created_at).limit(self.batch_size)
            if is_postgres(self.engine):
                query = query.with_for_update(skip_locked=True)
            rows = session.execute(query).all()
            sent: list[str] = []
            try:
                for row in rows:
                    producer.publish(
                        json.loads(row.envelope),
                        routing_key=row.type,
                        serializer="json",
                        delivery_mode=2,
                        message_id=row.id,
                        retry=False,
                    )
                    sent.append(row.id)
            finally:
                if sent:
                    session.execute(update(table).where(table.c.id.in_(sent)).values(sent_at=utcnow()))
        return len(sent)

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set; on broker failure wait with growing backoff and try again."""
        backoff = self.poll_interval
        waiter = _Waiter(self.engine, self.poll_interval)
        while not stop.is_set():
            try:
                sent = self.publish_batch()
                backoff = self.poll_interval
            except Exception as exc:  # broker or database down: keep the rows, retry later
                log.warning("outbox relay: publish failed (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, backoff)
                self._drop_connection()
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if sent < self.batch_size:
                waiter.wait(stop)
        waiter.close()
        self._drop_connection()


class _Waiter:
    """Sleeps until the next poll, or until PostgreSQL says an outbox row was committed."""

    def __init__(self, engine: Engine, poll_interval: float):
        self.poll_interval = poll_interval
        self.listener = None
        if is_postgres(engine):
            try:
                import psycopg

                url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
                self.listener = psycopg.connect(url, autocommit=True)
                self.listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
                self.poll_interval = max(poll_interval, 1.0)
            except Exception as exc:
                log.warning("outbox relay: LISTEN unavailable (%s); polling", exc)
                self.listener = None

    def wait(self, stop: threading.Event) -> None:
        if self.listener is None:
            stop.wait(self.poll_interval)
            return
        try:
            for _ in self.listener.notifies(timeout=self.poll_interval, stop_after=1):
                pass
        except Exception as exc:
            log.warning("outbox relay: LISTEN connection lost (%s); polling", exc)
            self.listener = None
            time.sleep(self.poll_interval)

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()


class BacklogCollector:
    """`threshold_outbox_unsent{service}`: events committed but not yet published, read at scrape time."""

    def __init__(self, engine: Engine, table: Table, service: str):
        self.engine = engine
        self.table = table
        self.service = service

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily("threshold_outbox_unsent", "Outbox events not yet published", labels=["service"])
        try:
            gauge.add_metric([self.service], unsent_count(self.engine, self.table))
        except Exception as exc:  # the database is away: /readyz says so; report nothing here
            log.warning("outbox backlog unavailable: %s", exc)
        yield gauge
