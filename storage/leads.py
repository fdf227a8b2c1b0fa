"""Lead queries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from storage.models import Lead, LeadEvent, Person


def get_lead(session: Session, team_id: str, lead_id: int) -> Lead | None:
    return session.scalar(select(Lead).where(Lead.team_id == team_id, Lead.id == lead_id))


def get_lead_by_external_id(session: Session, team_id: str, external_id: str) -> Lead | None:
    return session.scalar(select(Lead).where(Lead.team_id == team_id,
                                             Lead.external_id == external_id))


def get_person_by_id(session: Session, person_id: int | None) -> Person | None:
    return session.get(Person, person_id) if person_id is not None else None


def mark_status(session: Session, lead_id: int, status: str, owner_id: int | None, to: str,
                at: datetime) -> bool:
    """Compare-and-set on (status, owner): only one of several simultaneous clicks can win."""
    owner = Lead.owner_id.is_(None) if owner_id is None else Lead.owner_id == owner_id
    result = session.execute(
        update(Lead).where(Lead.id == lead_id, Lead.status == status, owner)
        .values(status=to, updated_at=at).execution_options(synchronize_session=False))
    return result.rowcount == 1


def list_events(session: Session, lead_id: int) -> list[LeadEvent]:
    return list(session.scalars(select(LeadEvent).where(LeadEvent.lead_id == lead_id)
                                .order_by(LeadEvent.at, LeadEvent.id)))


def last_event(session: Session, lead_id: int, kinds: tuple[str, ...]) -> LeadEvent | None:
    return session.scalars(select(LeadEvent)
                           .where(LeadEvent.lead_id == lead_id, LeadEvent.kind.in_(kinds))
                           .order_by(LeadEvent.id.desc()).limit(1)).first()


def list_leads(session: Session, team_id: str, statuses: tuple[str, ...], *,
               owner_id: int | None = None, due_before: datetime | None = None,
               offset: int = 0, limit: int = 20, newest_first: bool = False) -> tuple[list[Lead], int]:
    """One page of leads and how many there are in all."""
    where = [Lead.team_id == team_id, Lead.status.in_(statuses)]
    if owner_id is not None:
        where.append(Lead.owner_id == owner_id)
    if due_before is not None:
        where += [Lead.sla_due_at < due_before, Lead.sla_met.is_(None)]
    order = Lead.sla_due_at if due_before is not None else Lead.mql_at
    order = order.desc() if newest_first else order
    rows = list(session.scalars(select(Lead).where(*where).order_by(order, Lead.id)
                                .offset(offset).limit(limit)))
    total = session.scalar(select(func.count()).select_from(Lead).where(*where))
    return rows, total or 0


def allocate_lead_ids(session: Session, n: int) -> list[int]:
    """Ids for n new leads before they are inserted, so they can be routed and carded first
    and written once. SQLite: this transaction holds the write lock, so max + 1 is ours."""
    if n == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(text(
            "SELECT nextval(pg_get_serial_sequence('leads', 'id')) FROM generate_series(1, :n)"),
            {"n": n}))
    with session.no_autoflush:
        start = (session.scalar(select(func.max(Lead.id))) or 0) + 1
    return list(range(start, start + n))
