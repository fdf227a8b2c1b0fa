"""a group's won deals without an amount are stored

Marketing-sourced revenue lists a group whose deals won in a period have no amount (or
0), without a value, as its live answer always did; a refresh stored no row for such a
group, so answers read from the snapshots left it out. Now it stores one, and a
workspace holding any such won deal gets a full metrics refresh next (answers are read
live until then, as before a first refresh). Down, nothing to undo: the old code reads
the extra rows as the live answer does.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-14 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None

deals = sa.table('deals', sa.column('team_id', sa.String), sa.column('outcome', sa.String),
                 sa.column('amount', sa.Numeric))
refreshes = sa.table('metric_refreshes', sa.column('team_id', sa.String))


def upgrade() -> None:
    op.execute(refreshes.delete().where(refreshes.c.team_id.in_(
        sa.select(deals.c.team_id).where(deals.c.outcome == 'won',
                                         sa.or_(deals.c.amount.is_(None), deals.c.amount == 0))
        .distinct())))


def downgrade() -> None:
    pass
