"""metric stale instants: the days rows left, for the next metric refresh

A metric refresh redid the days of the rows changed since the last one from their values
now, so the day a row left (a deal's close moved, a rejection undone, a customer's start
moved, the lead a deal left, a person's role) kept counting it: answers read from the
snapshots differed from live ones. Writes now record those instants here. Snapshots
already stored may hold such days, so every workspace's next refresh is a first one
(answers are read live until it has run). Down: the table goes; the next refreshes are
incremental as before.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-15 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None

refreshes = sa.table('metric_refreshes', sa.column('team_id', sa.String))


def upgrade() -> None:
    op.create_table(
        'metric_stale_instants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('recorded_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_stale_instants')),
    )
    op.create_index('ix_metric_stale_instants_team_recorded', 'metric_stale_instants',
                    ['team_id', 'recorded_at'])
    op.execute(refreshes.delete())


def downgrade() -> None:
    op.drop_index('ix_metric_stale_instants_team_recorded', 'metric_stale_instants')
    op.drop_table('metric_stale_instants')
