"""The deliveries ledger, and the consumers' heartbeats."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.notifier.models import ConsumerHeartbeat, Delivery

CONSUMING = "consuming"
BACKING_OFF = "backing_off"
FORGOTTEN_AFTER = timedelta(days=1)


class Deliveries:
    def __init__(self, engine: Engine):
        self.engine = engine

    def delivered(self, event_id: str) -> bool:
        with Session(self.engine) as session:
            return session.scalar(select(Delivery.event_id).where(Delivery.event_id == event_id)) is not None

    def record(self, event_id: str, event_type: str, template: str, now: datetime) -> None:
        """Record a delivery; recording one twice (a redelivered message) is fine."""
        with Session(self.engine) as session:
            session.add(Delivery(event_id=event_id, event_type=event_type, template=template, delivered_at=now))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()


class ConsumerNotReady(Exception):
    message = "No notifier consumer is consuming."

    def __str__(self) -> str:
        return self.message


class ConsumerSilent(ConsumerNotReady):
    message = "No notifier consumer has reported within the staleness bound: none is running, or all are stuck."


class ConsumerBackingOff(ConsumerNotReady):
    message = "Every notifier consumer that reported lately is backing off after a database or broker error."


class Heartbeats:
    """One row per consumer process: its state and when it last said so."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def beat(self, consumer_id: str, state: str, detail: str, now: datetime) -> None:
        """Write this consumer's row, and drop those of consumers silent for a day (a killed consumer
        never removes its own)."""
        with Session(self.engine) as session, session.begin():
            session.merge(ConsumerHeartbeat(consumer_id=consumer_id, state=state, detail=detail[:500], beat_at=now))
            session.execute(delete(ConsumerHeartbeat).where(ConsumerHeartbeat.beat_at < now - FORGOTTEN_AFTER))

    def forget(self, consumer_id: str) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(delete(ConsumerHeartbeat).where(ConsumerHeartbeat.consumer_id == consumer_id))

    def check(self, now: datetime, stale_after: float) -> None:
        """Raise unless some consumer said it was consuming within the last `stale_after` seconds."""
        with Session(self.engine) as session:
            states = session.scalars(select(ConsumerHeartbeat.state).where(
                ConsumerHeartbeat.beat_at >= now - timedelta(seconds=stale_after))).all()
        if CONSUMING in states:
            return
        raise ConsumerBackingOff() if states else ConsumerSilent()
