"""Nudge queries: scheduled SLA stages, claimed one by one so each is sent once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from storage import bulk
from storage.models import Nudge


def add_nudge(session: Session, rows: bulk.Rows | None = None, **fields) -> None:
    bulk.add(session, rows, Nudge, {"state": "pending", "held": False, **fields})


def cancel_pending(session: Session, lead_id: int, stages: tuple[str, ...] | None = None) -> int:
    where = [Nudge.lead_id == lead_id, Nudge.state == "pending"]
    if stages:
        where.append(Nudge.stage.in_(stages))
    return session.execute(update(Nudge).where(*where).values(state="cancelled")
                           .execution_options(synchronize_session=False)).rowcount


def list_due(session: Session, now: datetime, stale_before: datetime, limit: int) -> list[int]:
    return list(session.scalars(select(Nudge.id).where(_claimable(now, stale_before))
                                .order_by(Nudge.due_at, Nudge.id).limit(limit)))


def mark_claimed(session: Session, nudge_id: int, by: str, now: datetime,
                 stale_before: datetime) -> bool:
    """The conditional UPDATE that makes one sweep, of any number, the sender."""
    return session.execute(
        update(Nudge).where(Nudge.id == nudge_id, _claimable(now, stale_before))
        .values(state="sending", claimed_by=by, claimed_at=now)
        .execution_options(synchronize_session=False)).rowcount == 1


def _claimable(now: datetime, stale_before: datetime):
    return or_((Nudge.state == "pending") & (Nudge.due_at <= now),
               (Nudge.state == "sending") & (Nudge.claimed_at < stale_before))
