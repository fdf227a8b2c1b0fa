"""derived metrics: churn, CLTV and revenue growth read sums the refresh stores

The snapshots gain rows of new sums (won amounts, customers started and churned, their
MRR) for every day; days stored before hold none. Forgetting each workspace's refresh
makes the next one a first one, which stores every day again; until it has, answers are
read live, as before a first refresh.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 04:10:00
"""
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM metric_refreshes")


def downgrade() -> None:
    op.execute("DELETE FROM metric_snapshots WHERE metric IN "
                "('won_amount', 'customers', 'mrr')")
