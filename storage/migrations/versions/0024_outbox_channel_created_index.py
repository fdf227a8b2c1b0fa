"""outbox: ix_outbox_team_channel_created on (team_id, channel, created_at)

Every new lead's batch counts each channel's cards of the last minute (whether a burst
starts); with only (team_id, ref) to go by, that read every message of the workspace the
store still keeps: 57 ms a channel on SQLite with 50,000 delivered rows, several channels
a webhook request.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 18:25:00
"""
from alembic import op


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_team_channel_created', 'outbox',
                    ['team_id', 'channel', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_outbox_team_channel_created', table_name='outbox')
