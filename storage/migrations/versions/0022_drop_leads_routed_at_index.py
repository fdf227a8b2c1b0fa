"""leads: drop ix_leads_team_routed_at, the first two columns of ix_leads_team_routed_touch

Every query by routing time uses the covering index's prefix just as well; the narrower
copy only cost every new lead one more index entry.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 04:10:00
"""
from alembic import op


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_leads_team_routed_at', table_name='leads')


def downgrade() -> None:
    op.create_index('ix_leads_team_routed_at', 'leads', ['team_id', 'routed_at'])
