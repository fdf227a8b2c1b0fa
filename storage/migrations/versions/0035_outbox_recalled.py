"""outbox.recalled: a post no longer wanted that may have reached Slack already

A survey run that closed while one of its prompts or reminders had an attempt of unknown
outcome (a timeout) left that row to the sender, which looked for it and, not finding it,
posted it after the close: a prompt whose buttons answer "closed". A recalled post is
never posted again; it is looked up, and a copy that landed is edited to read as its
payload, which the recall rewrote.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-11 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recalled', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('recalled')
