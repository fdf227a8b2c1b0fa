"""retention: indexes for pruning finished outbox rows and old lead history

Finished outbox rows are found by state and age, and kept while an edit or a reply
(parent_id) still refers to them; a lead's history is pruned by time.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 13:30:00
"""
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_state_created', 'outbox', ['state', 'created_at'])
    op.create_index('ix_outbox_parent', 'outbox', ['parent_id'])
    op.create_index('ix_lead_events_at', 'lead_events', ['at'])


def downgrade() -> None:
    op.drop_index('ix_lead_events_at', table_name='lead_events')
    op.drop_index('ix_outbox_parent', table_name='outbox')
    op.drop_index('ix_outbox_state_created', table_name='outbox')
