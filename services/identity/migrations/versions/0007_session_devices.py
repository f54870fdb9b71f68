"""sessions.user_agent and ip_address: the sessions list shows where each sign-in came from

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 00:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sessions') as batch:
        batch.add_column(sa.Column('user_agent', sa.String(length=300), nullable=True))
        batch.add_column(sa.Column('ip_address', sa.String(length=45), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not batch mode: batch mode copies `sessions` and drops
    # the original, and with foreign keys on that DROP cascades to every refresh token of every session.
    op.drop_column('sessions', 'ip_address')
    op.drop_column('sessions', 'user_agent')
