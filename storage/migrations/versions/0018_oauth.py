"""oauth: the tables of slack_sdk's SQLAlchemy installation and state stores

OAuth mode (many workspaces) keeps each workspace's installation (its bot token) and the
install flow's states in the same database as everything else. The columns are those of
slack_sdk's builders (storage/models.py declares the tables from them), written out here so
that this migration stays as it is when slack_sdk changes.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 01:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def _token_columns() -> list:
    """What slack_bots and slack_installations share about the app, the workspace and its bot."""
    return [
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('client_id', sa.String(32), nullable=False),
        sa.Column('app_id', sa.String(32), nullable=False),
        sa.Column('enterprise_id', sa.String(32)),
        sa.Column('enterprise_name', sa.String(200)),
    ]


def _bot_columns() -> list:
    return [
        sa.Column('team_id', sa.String(32)),
        sa.Column('team_name', sa.String(200)),
        sa.Column('bot_token', sa.String(200)),
        sa.Column('bot_id', sa.String(32)),
        sa.Column('bot_user_id', sa.String(32)),
        sa.Column('bot_scopes', sa.String(1000)),
        sa.Column('bot_refresh_token', sa.String(200)),
        sa.Column('bot_token_expires_at', sa.DateTime()),
    ]


def upgrade() -> None:
    op.create_table(
        'slack_bots',
        *_token_columns(),
        *_bot_columns(),
        sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
        sa.Column('installed_at', sa.DateTime(), nullable=False),
    )
    op.create_index('slack_bots_idx', 'slack_bots',
                    ['client_id', 'enterprise_id', 'team_id', 'installed_at'])
    op.create_table(
        'slack_installations',
        *_token_columns(),
        sa.Column('enterprise_url', sa.String(200)),
        *_bot_columns(),
        sa.Column('user_id', sa.String(32), nullable=False),
        sa.Column('user_token', sa.String(200)),
        sa.Column('user_scopes', sa.String(1000)),
        sa.Column('user_refresh_token', sa.String(200)),
        sa.Column('user_token_expires_at', sa.DateTime()),
        sa.Column('incoming_webhook_url', sa.String(200)),
        sa.Column('incoming_webhook_channel', sa.String(200)),
        sa.Column('incoming_webhook_channel_id', sa.String(200)),
        sa.Column('incoming_webhook_configuration_url', sa.String(200)),
        sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
        sa.Column('token_type', sa.String(32)),
        sa.Column('installed_at', sa.DateTime(), nullable=False),
    )
    op.create_index('slack_installations_idx', 'slack_installations',
                    ['client_id', 'enterprise_id', 'team_id', 'user_id', 'installed_at'])
    op.create_table(
        'slack_oauth_states',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('state', sa.String(200), nullable=False),
        sa.Column('expire_at', sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('slack_oauth_states')
    op.drop_index('slack_installations_idx', table_name='slack_installations')
    op.drop_table('slack_installations')
    op.drop_index('slack_bots_idx', table_name='slack_bots')
    op.drop_table('slack_bots')
