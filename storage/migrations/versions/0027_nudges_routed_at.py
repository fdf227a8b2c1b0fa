"""nudges.routed_at: the routing of its lead a stage belongs to

A reassignment cancels its lead's pending stages, but not one a sweep has claimed and not
yet fired: that one went on to remind the new owner on the old clock, and wrote the old
chain's next stage beside the new chain's first. A stage now keeps the lead's routed_at
of when it was written, and one of an earlier routing is void when it fires. The stages
still to fire take their lead's routed_at now (they are of its current routing).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 05:30:00
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nudges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routed_at', storage.types.UTCDateTime(timezone=True),
                                      nullable=True))
    op.execute("UPDATE nudges SET routed_at = (SELECT leads.routed_at FROM leads "
               "WHERE leads.id = nudges.lead_id) WHERE state IN ('pending', 'sending')")


def downgrade() -> None:
    with op.batch_alter_table('nudges', schema=None) as batch_op:
        batch_op.drop_column('routed_at')
