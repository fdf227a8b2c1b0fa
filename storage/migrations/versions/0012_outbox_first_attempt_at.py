"""outbox: when a message was first attempted, where a lookup for a post of unknown outcome starts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 08:08:07.458965
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_attempt_at', storage.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('first_attempt_at')
