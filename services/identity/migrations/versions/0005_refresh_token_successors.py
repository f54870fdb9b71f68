"""refresh token successors

A refresh inserts the next token with `previous_hash` naming the one it replaces; the unique index
lets a token have one successor only. Tokens rotated before this revision keep their `rotated_at`,
which still counts as used.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_hash', sa.String(length=64), nullable=True))
        batch_op.create_index('uq_refresh_tokens_previous_hash', ['previous_hash'], unique=True)


def downgrade() -> None:
    # Without previous_hash a replaced token would look unused again: mark it rotated, as 0004 did.
    op.execute("UPDATE refresh_tokens SET rotated_at = (SELECT successor.created_at FROM refresh_tokens AS successor "
               "WHERE successor.previous_hash = refresh_tokens.token_hash) "
               "WHERE rotated_at IS NULL AND token_hash IN "
               "(SELECT previous_hash FROM refresh_tokens WHERE previous_hash IS NOT NULL)")
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index('uq_refresh_tokens_previous_hash')
        batch_op.drop_column('previous_hash')
