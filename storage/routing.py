"""Routing queries: pool members, today's load, and the persistent round-robin state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, bindparam, column, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from storage.db import lock_handoffs
from storage.models import Lead, Person, RoutingState


def list_people_by_slack_id(session: Session, team_id: str, slack_ids: list[str]) -> dict[str, Person]:
    rows = session.scalars(select(Person).where(Person.team_id == team_id,
                                                Person.slack_id.in_(slack_ids)))
    return {p.slack_id: p for p in rows}


def list_people_by_role(session: Session, team_id: str, role: str) -> list[Person]:
    return list(session.scalars(select(Person).where(Person.team_id == team_id, Person.role == role)
                                .order_by(Person.slack_id)))


def count_routed_since(session: Session, team_id: str, owner_ids: list[int],
                       since: datetime) -> dict[int, int]:
    rows = session.execute(
        select(Lead.owner_id, func.count())
        .where(Lead.team_id == team_id, Lead.owner_id.in_(owner_ids), Lead.assigned_at >= since)
        .group_by(Lead.owner_id))
    return dict(rows.all())


def get_routing_states(session: Session, team_id: str, pool: str) -> dict[str, RoutingState]:
    """The pool's state rows, locked until the transaction ends: two routers never interleave,
    not even before the pool has any rows (`lock_handoffs`)."""
    lock_handoffs(session, team_id)
    rows = session.scalars(select(RoutingState)
                           .where(RoutingState.team_id == team_id, RoutingState.pool == pool)
                           .with_for_update())
    return {r.slack_id: r for r in rows}


# PostgreSQL's: the rows' new values as three arrays, one parameter each (see below)
_NEW = func.unnest(bindparam("ids", type_=ARRAY(Integer)), bindparam("credits", type_=ARRAY(Float)),
                   bindparam("assigned", type_=ARRAY(Integer))).table_valued(
    column("id", Integer), column("credit", Float), column("assigned", Integer)
).render_derived(name="new")
_UPDATE_EACH = update(RoutingState).where(RoutingState.id == _NEW.c.id).values(
    credit=_NEW.c.credit, assigned=_NEW.c.assigned).execution_options(synchronize_session=False)


def update_routing_states(session: Session, changes: list[tuple[RoutingState, float, int]]) -> None:
    """Each state's new credit and assigned count, in one statement: a flush would send an
    UPDATE per run of rows whose changed columns match (20 for a pool of 40 that routed a
    few leads, each a round trip on PostgreSQL). On PostgreSQL an UPDATE from the arrays
    of the new values: an executemany is still a statement a row there, each started and
    run by the server (4 ms of a webhook's 15 in statements, for a pool of 40 whose every
    credit moves with each lead routed); SQLite's run in this process."""
    if not changes:
        return
    if any(state.id is None for state, _, _ in changes):
        session.flush()  # rows added by an earlier save of the same router
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_UPDATE_EACH, {"ids": [state.id for state, _, _ in changes],
                                       "credits": [credit for _, credit, _ in changes],
                                       "assigned": [count for _, _, count in changes]})
    else:
        session.execute(update(RoutingState), [{"id": state.id, "credit": credit, "assigned": count}
                                               for state, credit, count in changes])
    for state, credit, assigned in changes:  # what the row now holds, not a change to flush
        set_committed_value(state, "credit", credit)
        set_committed_value(state, "assigned", assigned)
