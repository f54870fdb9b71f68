"""Web's one table: the server side of each browser session."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.database import UTCDateTime


class Model(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class BrowserSession(Model):
    """Keyed by the SHA-256 of the cookie's value (a leaked table row cannot be replayed as a cookie);
    `data` is encrypted because it holds the account's refresh token."""

    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
