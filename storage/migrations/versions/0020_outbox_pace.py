"""outbox pace: each channel's next allowed time, shared by every sender process

Senders in several processes (the web process, workers) claim a channel's next slot in
the same transaction as the outbox row, so together they keep Slack's per-channel rate,
and a 429's Retry-After holds the channel for all of them.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 01:20:00
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'outbox_pace',
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('channel', sa.String(length=64), nullable=False),
        sa.Column('next_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('held_until', storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('team_id', 'channel', name=op.f('pk_outbox_pace')),
    )


def downgrade() -> None:
    op.drop_table('outbox_pace')
