"""nudges: leads waiting for an owner are tried again

A lead nobody could take used to wait in the handoff channel's queue with nothing
scheduled: it was never routed again nor escalated. Now each waiting lead has a
retry; the leads already waiting get one due at once, and the first SLA sweep
routes them or, if nobody may take them yet, starts their clock and schedules the
next retry (see bot.handoff.new_leads.Handoffs.retry).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    leads = sa.table("leads", sa.column("id", sa.Integer), sa.column("team_id", sa.String),
                     sa.column("status", sa.String), sa.column("updated_at", sa.DateTime))
    nudges = sa.table("nudges", sa.column("team_id", sa.String), sa.column("lead_id", sa.Integer),
                      sa.column("stage", sa.String), sa.column("due_at", sa.DateTime),
                      sa.column("state", sa.String), sa.column("held", sa.Boolean))
    waiting = sa.select(leads.c.team_id, leads.c.id, sa.literal("route"), leads.c.updated_at,
                        sa.literal("pending"), sa.false()).where(leads.c.status == "new")
    op.get_bind().execute(nudges.insert().from_select(
        ["team_id", "lead_id", "stage", "due_at", "state", "held"], waiting))


def downgrade() -> None:
    op.get_bind().execute(sa.text("DELETE FROM nudges WHERE stage IN ('route', 'unassigned')"))
