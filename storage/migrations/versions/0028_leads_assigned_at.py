"""leads.assigned_at: a reassignment starts the owner's clock, not a new handoff

A reassignment moved `routed_at`, so a lead's response time ran from its last owner's
routing and its day moved with it, and one reassigned after its SLA was missed could still
count as met. Now `routed_at` is when the handoff began (a reassignment keeps it) and
`assigned_at` when its owner got it (the SLA clock, its nudges, a person's daily load).

Upgrading: `assigned_at` takes each lead's `routed_at`; a lead reassigned before takes its
handoff's first routing from its history (the first `routed` event since it was last
rejected or recycled; history that retention removed is not looked for), and its response
time grows by the difference (its business minutes and met or missed stay as they were).
The nudges' `routed_at` is renamed; where a lead moved, each workspace's next metrics
refresh is a full one, as its day moved.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 21:10:00
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

WHEN = storage.types.UTCDateTime(timezone=True)
leads = sa.table('leads', sa.column('id', sa.Integer), sa.column('routed_at', WHEN),
                 sa.column('assigned_at', WHEN), sa.column('response_minutes', sa.Float))
events = sa.table('lead_events', sa.column('lead_id', sa.Integer), sa.column('kind', sa.String),
                  sa.column('at', WHEN))


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assigned_at', WHEN, nullable=True))
        batch_op.drop_index('ix_leads_team_owner_routed')
        batch_op.create_index('ix_leads_team_owner_assigned',
                              ['team_id', 'owner_id', 'assigned_at'], unique=False)
    op.execute(leads.update().values(assigned_at=leads.c.routed_at))
    with op.batch_alter_table('nudges', schema=None) as batch_op:
        batch_op.alter_column('routed_at', new_column_name='assigned_at')
    bind = op.get_bind()
    moved = bind.execute(_reassigned()).all()
    _move(bind, [(lead_id, began, None if minutes is None else
                  round(minutes + (routed_at - began).total_seconds() / 60, 2))
                 for lead_id, routed_at, began, minutes in moved])
    if moved:  # their days moved
        op.execute("DELETE FROM metric_refreshes")


def _move(bind, rows: list[tuple]) -> None:
    """Each (lead id, routed_at, response minutes), in one executemany."""
    if rows:
        bind.execute(leads.update().where(leads.c.id == sa.bindparam('lead'))
                     .values(routed_at=sa.bindparam('at'), response_minutes=sa.bindparam('took')),
                     [{'lead': lead, 'at': at, 'took': took} for lead, at, took in rows])


def _reassigned() -> sa.Select:
    """(id, routed_at, the handoff's first routing, response minutes) of each lead routed
    earlier in the same handoff: routed since its last rejection or recycling."""
    routed, ended = events.alias('routed'), events.alias('ended')
    first = (sa.select(sa.func.min(routed.c.at))
             .where(routed.c.lead_id == leads.c.id, routed.c.kind == 'routed',
                    routed.c.at < leads.c.routed_at,
                    ~sa.exists().where(ended.c.lead_id == leads.c.id,
                                       ended.c.kind.in_(('rejected', 'recycled')),
                                       ended.c.at > routed.c.at,
                                       ended.c.at <= leads.c.routed_at)
                    .correlate(leads, routed))
             .scalar_subquery())
    found = (sa.select(leads.c.id, leads.c.routed_at, first.label('began'),
                       leads.c.response_minutes)
             .where(leads.c.routed_at.is_not(None)).subquery())
    return sa.select(found).where(found.c.began.is_not(None))


def downgrade() -> None:
    bind = op.get_bind()
    moved = bind.execute(sa.select(leads.c.id, leads.c.routed_at, leads.c.assigned_at,
                                   leads.c.response_minutes)
                         .where(leads.c.assigned_at > leads.c.routed_at)).all()
    _move(bind, [(lead_id, assigned_at, None if minutes is None else
                  round(minutes - (assigned_at - routed_at).total_seconds() / 60, 2))
                 for lead_id, routed_at, assigned_at, minutes in moved])
    with op.batch_alter_table('nudges', schema=None) as batch_op:
        batch_op.alter_column('assigned_at', new_column_name='routed_at')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_team_owner_assigned')
        batch_op.create_index('ix_leads_team_owner_routed', ['team_id', 'owner_id', 'routed_at'],
                              unique=False)
        batch_op.drop_column('assigned_at')
    if moved:  # their days moved back
        op.execute("DELETE FROM metric_refreshes")
