"""Tenancy's tables. Organizations, workspaces, memberships and invitations arrive with their issue."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import DeclarativeBase

from shared.database import UTCDateTime
from shared.outbox import define_outbox


class Model(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


outbox = define_outbox(Model.metadata)
