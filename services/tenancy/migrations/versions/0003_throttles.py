"""throttles: the rate limits on invitations

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 23:00:00
"""
import sqlalchemy as sa
from alembic import op

import shared.database

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('throttles',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('window_start', shared.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('blocked_until', shared.database.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('throttles')
