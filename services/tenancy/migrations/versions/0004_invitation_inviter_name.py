"""invitations.inviter_name: the invitation page names the inviter

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 00:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invitations') as batch:
        batch.add_column(sa.Column('inviter_name', sa.String(length=320), nullable=True))


def downgrade() -> None:
    op.drop_column('invitations', 'inviter_name')  # plain ALTER (SQLite 3.35+), as identity 0007 explains
