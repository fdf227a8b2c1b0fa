"""store performance: snapshot rows by day, for a refresh replacing a day's rows

A metrics refresh replaces a day's (month's, year's) rows of every metric in its short
transactions; the unique key starts with the metric, so each replacement scanned the
workspace's snapshots.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 01:30:00
"""
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_metric_snapshots_day', 'metric_snapshots', ['team_id', 'grain', 'day'])


def downgrade() -> None:
    op.drop_index('ix_metric_snapshots_day', table_name='metric_snapshots')
