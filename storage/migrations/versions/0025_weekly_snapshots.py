"""weekly snapshots: the refresh stores each ISO week's sums of days too

"last 30 days", the default period, rarely holds a whole month: with its six-period
trend it read 178 rows a group, mostly days, each median's a JSON histogram decoded and
added in Python; with whole weeks, 58. Stores refreshed before have no week rows:
forgetting each workspace's refresh makes the next one a first one, which stores every
day and every rollup again; until it has, answers are read live, as before a first
refresh.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 10:00:00
"""
from alembic import op


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM metric_refreshes")


def downgrade() -> None:
    op.execute("DELETE FROM metric_snapshots WHERE grain = 'week'")
