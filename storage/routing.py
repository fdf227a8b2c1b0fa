"""Routing queries: pool members, today's load, and the persistent round-robin state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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
        .where(Lead.team_id == team_id, Lead.owner_id.in_(owner_ids), Lead.routed_at >= since)
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
