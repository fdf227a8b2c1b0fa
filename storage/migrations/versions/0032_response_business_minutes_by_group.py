"""response time in business minutes per grouping: the refresh stores them

An answer by owner, source, segment, region or team shows each group's median in
business time beside its median and p90, read from the histograms the refresh stores
per day (series `response_business_minutes`), now per grouping as response time's own;
days stored before hold the whole workspace's only. Forgetting each workspace's refresh
makes the next one a first one, which stores every day again; until it has, answers are
read live, as before a first refresh.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-09 09:00:00
"""
from alembic import op


revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM metric_refreshes")


def downgrade() -> None:
    op.execute("DELETE FROM metric_snapshots "
               "WHERE metric = 'response_business_minutes' AND dimension <> ''")
