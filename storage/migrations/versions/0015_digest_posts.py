"""digest posts: one per digest, channel and period; leads' response times indexed

Each scheduled (or sent) digest claims its period with a unique row, in the transaction
that queues its outbox rows; periods too late to post, or empty with skip_if_empty, have
a row too. Exact medians of response times read a period's values from a covering index.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 09:21:57
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'digest_posts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('digest', sa.String(length=40), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('period_start', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('period_end', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('fired_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['outbox.id'],
                                name=op.f('fk_digest_posts_message_id_outbox')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_digest_posts')),
        sa.UniqueConstraint('team_id', 'digest', 'channel', 'period_start', 'period_end',
                            name='uq_digest_posts_period'),
    )
    op.create_index('ix_digest_posts_team_digest_fired', 'digest_posts',
                    ['team_id', 'digest', 'channel', 'fired_at'])
    op.create_index('ix_leads_team_routed_touch', 'leads',
                    ['team_id', 'routed_at', 'first_touch_at', 'response_minutes'])


def downgrade() -> None:
    op.drop_index('ix_leads_team_routed_touch', table_name='leads')
    op.drop_index('ix_digest_posts_team_digest_fired', table_name='digest_posts')
    op.drop_table('digest_posts')
