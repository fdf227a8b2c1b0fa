"""response time in business minutes: stored histograms, and in the covering index

Answers about response time show its median in business time beside the value, read
from a histogram the refresh stores per day like response time's own (series
`response_business_minutes`); days stored before hold none. Forgetting each workspace's
refresh makes the next one a first one, which stores every day again; until it has,
answers are read live, as before a first refresh. ix_leads_team_routed_touch gains
business_minutes, so that the exact one (`alignbot query`) and the live histograms read
the index alone, as for wall minutes.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-08 09:00:00
"""
from alembic import op


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM metric_refreshes")
    op.drop_index('ix_leads_team_routed_touch', table_name='leads')
    op.create_index('ix_leads_team_routed_touch', 'leads',
                    ['team_id', 'routed_at', 'first_touch_at', 'response_minutes',
                     'business_minutes'])


def downgrade() -> None:
    op.drop_index('ix_leads_team_routed_touch', table_name='leads')
    op.create_index('ix_leads_team_routed_touch', 'leads',
                    ['team_id', 'routed_at', 'first_touch_at', 'response_minutes'])
    op.execute("DELETE FROM metric_snapshots WHERE metric = 'response_business_minutes'")
