"""The deliveries ledger."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.notifier.models import Delivery


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
