"""Erasure: the queries that find and clear one person's personal data (`alignbot erase`).

Rows stay, with their times, statuses, amounts and owners, so every count and metric
reads the same afterwards; only the fields that say who someone is are cleared.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Text, cast, delete, false, func, or_, select, update
from sqlalchemy.orm import Session

from storage.models import (
    ContentUse,
    Deal,
    Lead,
    LeadEvent,
    OutboxMessage,
    OwnerLookup,
    Person,
    UnmappedEmail,
)

# a lead's fields that say who they are, or that people wrote about them
LEAD_PERSONAL = ("email", "name", "company", "title", "why", "crm_url", "rejection_note")
PERSON_PERSONAL = ("email", "name")
FINISHED = ("sent", "superseded", "dead")  # never read again: their payload may be rewritten


def list_leads_with_email(session: Session, team_id: str, email: str) -> list[Lead]:
    return list(session.scalars(select(Lead).where(Lead.team_id == team_id,
                                                   func.lower(Lead.email) == email)
                                .order_by(Lead.id)))


def list_people_with_email(session: Session, team_id: str, email: str) -> list[Person]:
    return list(session.scalars(select(Person).where(Person.team_id == team_id,
                                                     func.lower(Person.email) == email)
                                .order_by(Person.id)))


def clear_owner_email(session: Session, team_id: str, email: str) -> dict[str, int]:
    """The CRM's copy of an owner's email on leads and deals (the owner link stays)."""
    return {model.__tablename__: session.execute(
        update(model).where(model.team_id == team_id, func.lower(column) == email)
        .values({column: None}).execution_options(synchronize_session=False)).rowcount
        for model, column in ((Lead, Lead.crm_owner_email), (Deal, Deal.owner_email))}


def replace_content_user(session: Session, team_id: str, email: str, stand_in: str) -> int:
    """Content uses keep counting, under a stand-in that names nobody."""
    return session.execute(
        update(ContentUse).where(ContentUse.team_id == team_id,
                                 func.lower(ContentUse.user_email) == email)
        .values(user_email=stand_in).execution_options(synchronize_session=False)).rowcount


def delete_email_bookkeeping(session: Session, team_id: str, email: str) -> int:
    """Owner lookups and unmatched-owner notices about the email."""
    return sum(session.execute(delete(model).where(model.team_id == team_id,
                                                   func.lower(model.email) == email)).rowcount
               for model in (OwnerLookup, UnmappedEmail))


def list_events_to_scrub(session: Session, team_id: str, lead_ids: Collection[int],
                         needles: Collection[str]) -> list[LeadEvent]:
    """The erased leads' events, and any event whose data mentions a needle."""
    mentions = [cast(LeadEvent.data, Text).contains(n, autoescape=True) for n in needles]
    return list(session.scalars(select(LeadEvent).where(
        LeadEvent.team_id == team_id,
        or_(LeadEvent.lead_id.in_(lead_ids), *mentions))))


def list_messages_mentioning(session: Session, team_id: str, needles: Collection[str],
                             refs: Collection[str]) -> list[OutboxMessage]:
    """Outbox rows whose payload mentions a needle, or that are about one of `refs`
    ("lead:42:" matches every message about lead 42)."""
    about = [OutboxMessage.ref.startswith(r, autoescape=True) for r in refs]
    mentions = [cast(OutboxMessage.payload, Text).contains(n, autoescape=True) for n in needles]
    return list(session.scalars(select(OutboxMessage).where(
        OutboxMessage.team_id == team_id, or_(false(), *about, *mentions)).order_by(OutboxMessage.id)))
