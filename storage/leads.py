"""Lead queries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from storage import bulk
from storage.db import among
from storage.models import Lead, LeadEvent, Person


def get_lead(session: Session, team_id: str, lead_id: int) -> Lead | None:
    return session.scalar(select(Lead).where(Lead.team_id == team_id, Lead.id == lead_id))


def get_lead_by_external_id(session: Session, team_id: str, external_id: str) -> Lead | None:
    return session.scalar(select(Lead).where(Lead.team_id == team_id,
                                             Lead.external_id == external_id))


def list_leads_by_id(session: Session, lead_ids: list[int]) -> list[Lead]:
    return list(session.scalars(select(Lead).where(among(session, Lead.id, lead_ids))))


def get_person_by_id(session: Session, person_id: int | None) -> Person | None:
    return session.get(Person, person_id) if person_id is not None else None


def list_people_by_id(session: Session, person_ids: Iterable[int]) -> list[Person]:
    """Each person once, however often `person_ids` names them (a batch's leads, by owner)."""
    return list(session.scalars(select(Person).where(among(session, Person.id, set(person_ids)))))


_LEADS = Lead.__table__
_MARK_STATUS = (update(_LEADS)
                .where(_LEADS.c.id == bindparam("lead"), _LEADS.c.status == bindparam("was"),
                       _LEADS.c.owner_id.is_not_distinct_from(bindparam("owner")))
                .values(status=bindparam("to"), updated_at=bindparam("at")))


def mark_status(session: Session, lead_id: int, status: str, owner_id: int | None, to: str,
                at: datetime, *, batched: bool = False) -> bool:
    """Compare-and-set on (status, owner): only one of several simultaneous clicks can win.
    `batched`: only the compare, with the session's batch's others at its end, where one
    lost fails the batch (True until then); the caller makes the move in the ORM."""
    if batched and (rows := bulk.batch_of(session)) is not None:
        rows.expect(Lead, lead_id, {"status": status, "owner_id": owner_id})
        return True
    params = {"lead": lead_id, "was": status, "owner": owner_id, "to": to, "at": at}
    return session.execute(_MARK_STATUS, params).rowcount == 1


def lost_leads(conflict: bulk.Conflict) -> set[int]:
    """The leads whose batched `mark_status` found them changed by someone else."""
    return set(conflict.keys) if conflict.model is Lead else set()


def list_events(session: Session, lead_id: int) -> list[LeadEvent]:
    return list(session.scalars(select(LeadEvent).where(LeadEvent.lead_id == lead_id)
                                .order_by(LeadEvent.at, LeadEvent.id)))


def list_events_of_kinds(session: Session, lead_ids: list[int], kinds: tuple[str, ...]):
    """The light rows (lead_id, kind, actor, at, data) of these kinds, oldest first."""
    return session.execute(
        select(LeadEvent.lead_id, LeadEvent.kind, LeadEvent.actor, LeadEvent.at, LeadEvent.data)
        .where(among(session, LeadEvent.lead_id, lead_ids), LeadEvent.kind.in_(kinds))
        .order_by(LeadEvent.id)).all()


def last_event(session: Session, lead_id: int, kinds: tuple[str, ...]) -> LeadEvent | None:
    return session.scalars(select(LeadEvent)
                           .where(LeadEvent.lead_id == lead_id, LeadEvent.kind.in_(kinds))
                           .order_by(LeadEvent.id.desc()).limit(1)).first()


def list_leads(session: Session, team_id: str, statuses: tuple[str, ...], *,
               owner_id: int | None = None, due_before: datetime | None = None,
               offset: int = 0, limit: int = 20, newest_first: bool = False,
               by_due: bool = False) -> tuple[list[Lead], int]:
    """One page of leads and how many there are in all, by MQL time or by due time (overdue
    ones, and with `by_due`: then leads without an SLA come last, on every backend)."""
    where = [Lead.team_id == team_id, Lead.status.in_(statuses)]
    if owner_id is not None:
        where.append(Lead.owner_id == owner_id)
    if due_before is not None:
        where += [Lead.sla_due_at < due_before, Lead.response_minutes.is_(None)]
    order = Lead.sla_due_at if due_before is not None or by_due else Lead.mql_at
    order = order.desc() if newest_first else order
    order = order.nulls_last() if by_due else order
    rows = list(session.scalars(select(Lead).where(*where).order_by(order, Lead.id)
                                .offset(offset).limit(limit)))
    total = session.scalar(select(func.count()).select_from(Lead).where(*where))
    return rows, total or 0


# PostgreSQL's next n lead ids: the sequence is looked up once, not once an id (5 ms a thousand)
_NEXT_IDS = text("WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('leads', 'id')::regclass "
                 "AS seq) SELECT nextval(seq) FROM s, generate_series(1, :n)")


def allocate_lead_ids(session: Session, n: int) -> list[int]:
    """Ids for n new leads before they are inserted, so they can be routed and carded first
    and written once. SQLite: this transaction holds the write lock, so max + 1 is ours."""
    if n == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(_NEXT_IDS, {"n": n}))
    with session.no_autoflush:
        start = (session.scalar(select(func.max(Lead.id))) or 0) + 1
    return list(range(start, start + n))
