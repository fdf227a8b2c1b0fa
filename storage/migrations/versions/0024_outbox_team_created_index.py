"""outbox: ix_outbox_team_created on (team_id, created_at)

Every new lead's batch counts the channels' cards of the last minute (whether a burst
starts); with only (team_id, ref) to go by, SQLite read every message of the workspace
the store still keeps, once a channel: 57 ms a channel with 50,000 delivered rows, several
channels a webhook request. Now one query a batch reads the last minute's rows.

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
    op.create_index('ix_outbox_team_created', 'outbox', ['team_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_outbox_team_created', table_name='outbox')
