"""recycled leads nobody answered: judged at the recycle, not counted as breaches later

A lead marketing took back (recycled) with no response from sales kept its due time, so
once that passed SLA compliance counted it as a breach, though it had left before. Now
the recycle judges it: a breach if its due time had passed by then, else no due time (it
is left out). Upgrading does the same to the leads recycled before; a workspace with any
of them gets a full metrics refresh next, as their days' shares change. Down, nothing to
undo: the old code reads both as it reads its own.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-10 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None

WHEN = storage.types.UTCDateTime(timezone=True)
leads = sa.table('leads', sa.column('team_id', sa.String), sa.column('status', sa.String),
                 sa.column('routed_at', WHEN), sa.column('recycled_at', WHEN),
                 sa.column('response_minutes', sa.Float), sa.column('sla_met', sa.Boolean),
                 sa.column('sla_due_at', WHEN))
refreshes = sa.table('metric_refreshes', sa.column('team_id', sa.String))
UNANSWERED = sa.and_(leads.c.status == 'recycled', leads.c.routed_at.is_not(None),
                     leads.c.response_minutes.is_(None), leads.c.sla_met.is_(None),
                     leads.c.sla_due_at.is_not(None))


def upgrade() -> None:
    op.execute(refreshes.delete().where(refreshes.c.team_id.in_(
        sa.select(leads.c.team_id).where(UNANSWERED).distinct())))
    op.execute(leads.update().where(UNANSWERED, leads.c.sla_due_at <= leads.c.recycled_at)
               .values(sla_met=False))
    op.execute(leads.update().where(UNANSWERED).values(sla_due_at=None))


def downgrade() -> None:
    pass
