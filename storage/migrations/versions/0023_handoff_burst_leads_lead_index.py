"""handoff_burst_leads: ix_handoff_burst_leads_lead on lead_id

A lead's delete (retention, erasure) cascades to its burst entries; the key starts with
burst_id, so on PostgreSQL each deleted lead scanned the whole table for its entries.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 18:20:00
"""
from alembic import op


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_handoff_burst_leads_lead', 'handoff_burst_leads', ['lead_id'])


def downgrade() -> None:
    op.drop_index('ix_handoff_burst_leads_lead', table_name='handoff_burst_leads')
