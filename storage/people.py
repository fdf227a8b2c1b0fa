"""People queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Person


def get_person(session: Session, team_id: str, slack_id: str) -> Person | None:
    return session.scalar(select(Person).where(Person.team_id == team_id,
                                               Person.slack_id == slack_id))


def list_people(session: Session, team_id: str) -> list[Person]:
    return list(session.scalars(select(Person).where(Person.team_id == team_id)
                                .order_by(Person.slack_id)))
