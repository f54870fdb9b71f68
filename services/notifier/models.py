"""Notifier's tables: which events were delivered (for idempotency)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.database import UTCDateTime, utcnow


class Model(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class Delivery(Model):
    """One mail accepted by the SMTP server (or written to disk), keyed by the event that asked for it."""

    __tablename__ = "deliveries"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(40))
    delivered_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsumerHeartbeat(Model):
    """What one consumer process last said about itself: consuming, or backing off and why.

    The consumer refreshes its row while it consumes; the notifier's /readyz (another process, often
    another container) reads the rows to tell whether any consumer is at work."""

    __tablename__ = "consumer_heartbeats"

    consumer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(500), default="")
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)
