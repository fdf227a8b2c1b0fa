"""People queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Person, UnmappedEmail


def get_person(session: Session, team_id: str, slack_id: str) -> Person | None:
    return session.scalar(select(Person).where(Person.team_id == team_id,
                                               Person.slack_id == slack_id))


def list_people(session: Session, team_id: str) -> list[Person]:
    return list(session.scalars(select(Person).where(Person.team_id == team_id)
                                .order_by(Person.slack_id)))


def set_away_until(session: Session, team_id: str, slack_id: str, until) -> Person | None:
    person = get_person(session, team_id, slack_id)
    if person is not None:
        person.away_until = until
    return person


def list_team_ids(session: Session) -> list[str]:
    """The workspaces this store holds people of (config people are synced at start-up)."""
    return list(session.scalars(select(Person.team_id).distinct().order_by(Person.team_id)))


def get_person_by_email(session: Session, team_id: str, email: str) -> Person | None:
    return session.scalars(select(Person).where(Person.team_id == team_id, Person.email == email)
                           .order_by(Person.from_config.desc(), Person.id).limit(1)).first()


def get_unmapped_email(session: Session, team_id: str, email: str) -> UnmappedEmail | None:
    return session.scalar(select(UnmappedEmail).where(UnmappedEmail.team_id == team_id,
                                                      UnmappedEmail.email == email))
