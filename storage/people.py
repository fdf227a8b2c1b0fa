"""People queries."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.db import read
from storage.models import ContentUse, Deal, Lead, OwnerLookup, Person, UnmappedEmail


def get_person(session: Session, team_id: str, slack_id: str) -> Person | None:
    return session.scalar(select(Person).where(Person.team_id == team_id,
                                               Person.slack_id == slack_id))


def list_people(session: Session, team_id: str) -> list[Person]:
    return list(session.scalars(select(Person).where(Person.team_id == team_id)
                                .order_by(Person.slack_id)))


def list_names(session: Session, team_id: str) -> dict[str, str]:
    """People's names by Slack id, those with one: columns, not mapped objects (a metric's
    answer by owner loaded forty people whole to read two fields, a third of its time)."""
    return dict(read(session, select(Person.slack_id, Person.name).where(
        Person.team_id == team_id, Person.name.is_not(None), Person.name != "")).all())


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


def list_people_by_email(session: Session, team_id: str, emails: Collection[str]) -> dict[str, Person]:
    """Each email's person, as `get_person_by_email` picks one."""
    found: dict[str, Person] = {}
    for person in session.scalars(select(Person).where(Person.team_id == team_id,
                                                       Person.email.in_(sorted(emails)))
                                  .order_by(Person.from_config.desc(), Person.id)):
        found.setdefault(person.email, person)
    return found


def list_unmapped_emails(session: Session, team_id: str,
                         emails: Collection[str]) -> dict[str, UnmappedEmail]:
    return {m.email: m for m in session.scalars(select(UnmappedEmail).where(
        UnmappedEmail.team_id == team_id, UnmappedEmail.email.in_(sorted(emails))))}


def get_owner_lookup(session: Session, team_id: str, email: str) -> OwnerLookup | None:
    return session.scalar(select(OwnerLookup).where(OwnerLookup.team_id == team_id,
                                                    OwnerLookup.email == email))


def list_owner_lookups(session: Session, team_id: str,
                       emails: Collection[str] | None = None) -> dict[str, OwnerLookup]:
    """The failed lookups waiting to be retried (of these emails, when given)."""
    query = select(OwnerLookup).where(OwnerLookup.team_id == team_id)
    if emails is not None:
        query = query.where(OwnerLookup.email.in_(sorted(emails)))
    return {lookup.email: lookup for lookup in session.scalars(query.order_by(OwnerLookup.email))}


def delete_owner_lookup(session: Session, team_id: str, email: str) -> None:
    session.execute(delete(OwnerLookup).where(OwnerLookup.team_id == team_id,
                                              OwnerLookup.email == email))


def list_leads_waiting_for(session: Session, team_id: str, email: str) -> list[Lead]:
    """New leads the CRM gave this owner that nobody has yet (oldest first), locked as their
    UPDATE would lock them: a lead someone takes meanwhile is theirs, not read as waiting."""
    return list(session.scalars(select(Lead).where(
        Lead.team_id == team_id, Lead.crm_owner_email == email, Lead.owner_id.is_(None),
        Lead.status == "new").order_by(Lead.id).with_for_update(key_share=True)))


def set_missing_owner(session: Session, team_id: str, email: str, person_id: int,
                      now: datetime) -> None:
    """Deals and content uses that name this email, and nobody yet, are theirs."""
    session.execute(update(Deal).where(Deal.team_id == team_id, Deal.owner_email == email,
                                       Deal.owner_id.is_(None))
                    .values(owner_id=person_id, updated_at=now))
    session.execute(update(ContentUse).where(ContentUse.team_id == team_id,
                                             ContentUse.user_email == email,
                                             ContentUse.person_id.is_(None))
                    .values(person_id=person_id))
