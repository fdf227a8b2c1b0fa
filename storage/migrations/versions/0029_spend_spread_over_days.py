"""spend spread over its month's days: CAC's stored daily sums change meaning

A month's spend counted in full on the day its 1st was (at noon UTC), and on no other: a
period without that day had no spend. It is now spread evenly over the month's local
days, so every stored day of a month with spend holds its share. Forgetting each
workspace's refresh makes the next one a first one, which stores every day again; until
it has, answers are read live. Down, the same: the old code's next refresh then stores
its own meaning again.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08 09:00:00
"""
from alembic import op


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM metric_refreshes")


def downgrade() -> None:
    op.execute("DELETE FROM metric_refreshes")
