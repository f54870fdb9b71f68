"""consumer heartbeats, read by the notifier's readiness check

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 23:00:00
"""
import sqlalchemy as sa
from alembic import op

import shared.database

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consumer_heartbeats',
    sa.Column('consumer_id', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('beat_at', shared.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer_id')
    )


def downgrade() -> None:
    op.drop_table('consumer_heartbeats')
