"""sales cycle leaves out deals won before they were created

Versions before intake refused a deal's created_at after its closed_at stored some;
sales cycle counted their negative days. Now its queries leave them out, and a workspace
holding any won one gets a full metrics refresh next: its stored days still count them
(answers are read live until then, as before a first refresh). Down, nothing to undo:
the stored days leave them out until a full refresh (`--full`) counts them again.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-11 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None

WHEN = storage.types.UTCDateTime(timezone=True)
deals = sa.table('deals', sa.column('team_id', sa.String), sa.column('outcome', sa.String),
                 sa.column('created_at', WHEN), sa.column('closed_at', WHEN))
refreshes = sa.table('metric_refreshes', sa.column('team_id', sa.String))


def upgrade() -> None:
    op.execute(refreshes.delete().where(refreshes.c.team_id.in_(
        sa.select(deals.c.team_id).where(deals.c.outcome == 'won',
                                         deals.c.created_at > deals.c.closed_at).distinct())))


def downgrade() -> None:
    pass
