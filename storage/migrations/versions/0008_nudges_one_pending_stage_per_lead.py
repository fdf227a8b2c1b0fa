"""nudges: one pending stage per lead

Routing used to write every SLA stage of a lead up front; now each stage writes the
next when it fires. Stages written the old way would fire twice (once as written,
once as the next of the stage before), so for each lead only its earliest pending
stage is kept. Held stages (already fired once, waiting for a working day) stay.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 09:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    nudges = sa.table("nudges", sa.column("id", sa.Integer), sa.column("lead_id", sa.Integer),
                      sa.column("state", sa.String), sa.column("held", sa.Boolean),
                      sa.column("due_at", sa.DateTime))
    earlier = nudges.alias("earlier")
    waiting = sa.and_(nudges.c.state == "pending", nudges.c.held == sa.false())
    op.get_bind().execute(
        sa.update(nudges).where(waiting, sa.exists().where(
            earlier.c.lead_id == nudges.c.lead_id, earlier.c.state == "pending",
            earlier.c.held == sa.false(),
            sa.or_(earlier.c.due_at < nudges.c.due_at,
                   sa.and_(earlier.c.due_at == nudges.c.due_at, earlier.c.id < nudges.c.id))))
        .values(state="cancelled"))


def downgrade() -> None:
    pass  # each lead keeps the one stage it waits on; the older code would not write the rest
