"""leads.owner_email is leads.crm_owner_email: the owner the CRM names, not the lead's

The column held the CRM's last `owner_email`, under the name of the lead's owner's email,
and the two differ after a reassignment in Slack (a click, the SLA's) or a CRM owner
nobody here has (the lead keeps its owner): a report or export reading it showed a stale
owner. The lead's owner's email is their person's (`owner_id`), read from there; the
column keeps the CRM's word, which an update is compared with (a new one is a
reassignment in the CRM), under a name that says so.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-10 09:00:00
"""
from alembic import op


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE leads RENAME COLUMN owner_email TO crm_owner_email")


def downgrade() -> None:
    op.execute("ALTER TABLE leads RENAME COLUMN crm_owner_email TO owner_email")
