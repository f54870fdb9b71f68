"""OpenID Provider: registered clients, authorization requests and codes, grants, refresh tokens

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 23:30:00
"""
from alembic import op
import sqlalchemy as sa
import shared.database


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_clients',
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('metadata_json', sa.Text(), nullable=False),
    sa.Column('created_at', shared.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id')
    )
    op.create_table('authorization_requests',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('parameters', sa.Text(), nullable=False),
    sa.Column('created_at', shared.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', shared.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', shared.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('account_id', sa.String(length=36), nullable=True),
    sa.Column('session_id', sa.String(length=36), nullable=True),
    sa.Column('auth_time', shared.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('amr', sa.String(length=40), nullable=True),
    sa.Column('scope', sa.String(length=500), nullable=True),
    sa.Column('workspace', sa.Text(), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=True),
    sa.Column('code_expires_at', shared.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('code_used_at', shared.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('grant_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    op.create_table('oauth_grants',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('session_id', sa.String(length=36), nullable=False),
    sa.Column('scope', sa.String(length=500), nullable=False),
    sa.Column('auth_time', shared.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('amr', sa.String(length=40), nullable=False),
    sa.Column('workspace', sa.Text(), nullable=True),
    sa.Column('created_at', shared.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', shared.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_oauth_grants_account_id', 'oauth_grants', ['account_id'], unique=False)
    op.create_index('ix_oauth_grants_session_id', 'oauth_grants', ['session_id'], unique=False)
    op.create_table('oauth_refresh_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('grant_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', shared.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', shared.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('previous_hash', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['oauth_grants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash'),
    sa.UniqueConstraint('previous_hash')
    )
    op.create_index('ix_oauth_refresh_tokens_grant_id', 'oauth_refresh_tokens', ['grant_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_oauth_refresh_tokens_grant_id', table_name='oauth_refresh_tokens')
    op.drop_table('oauth_refresh_tokens')
    op.drop_index('ix_oauth_grants_session_id', table_name='oauth_grants')
    op.drop_index('ix_oauth_grants_account_id', table_name='oauth_grants')
    op.drop_table('oauth_grants')
    op.drop_table('authorization_requests')
    op.drop_table('oauth_clients')
