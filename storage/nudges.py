"""Nudge queries: scheduled SLA stages, claimed in batches so each is sent once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, bindparam, false, func, or_, select, update
from sqlalchemy.orm import Session

from storage import bulk
from storage.db import among
from storage.models import Lead, Nudge


def add_nudge(session: Session, lead: Lead, stage: str, due_at: datetime) -> None:
    """A stage of the lead's current owner's clock (see `Nudge.assigned_at`)."""
    bulk.add(session, Nudge, {"team_id": lead.team_id, "lead_id": lead.id, "stage": stage,
                              "due_at": due_at, "assigned_at": lead.assigned_at, "state": "pending",
                              "held": False})


_NUDGES = Nudge.__table__
# Built once: every first touch, rejection and reassignment runs this.
_CANCEL = (update(_NUDGES).where(_NUDGES.c.lead_id == bindparam("lead"),
                                 _NUDGES.c.state == "pending").values(state="cancelled"))
_CANCEL_STAGES = _CANCEL.where(_NUDGES.c.stage.in_(bindparam("stages", expanding=True)))
_CANCEL_STAGE = _CANCEL.where(_NUDGES.c.stage == bindparam("of_stage"))  # executemany: no lists


def cancel_pending(session: Session, lead_id: int, stages: tuple[str, ...] | None = None) -> None:
    """In a batch (the SLA sweep's reassignments, an intake's handoffs), with the batch's
    others at its end, before the nudges it adds."""
    rows = bulk.batch_of(session)
    if stages and rows is not None:
        for stage in stages:
            rows.change(_CANCEL_STAGE, {"lead": lead_id, "of_stage": stage})
    elif stages:
        session.execute(_CANCEL_STAGES, {"lead": lead_id, "stages": list(stages)})
    elif rows is not None:
        rows.change(_CANCEL, {"lead": lead_id})
    else:
        session.execute(_CANCEL, {"lead": lead_id})


def get_first_pending_due(session: Session) -> datetime | None:
    """When the earliest pending nudge falls due (a held one: when it did)."""
    return session.scalar(select(func.min(Nudge.due_at)).where(Nudge.state == "pending"))


def get_pending_due(session: Session, lead_id: int, stage: str) -> datetime | None:
    """When the lead's chain waits on this stage (not yet claimed once: not held), its due."""
    return session.scalar(select(func.min(Nudge.due_at)).where(
        Nudge.lead_id == lead_id, Nudge.stage == stage, Nudge.state == "pending",
        Nudge.held == false()))


def mark_team_cancelled(session: Session, team_id: str) -> int:
    """Drop the workspace's nudges still to fire (one a sweep has claimed fires)."""
    return session.execute(update(Nudge).where(Nudge.team_id == team_id, Nudge.state == "pending")
                           .values(state="cancelled")
                           .execution_options(synchronize_session=False)).rowcount


def pull_due(session: Session, team_id: str, stage: str, now: datetime) -> int:
    """Bring the team's pending nudges of this stage that are due later forward to `now`."""
    return session.execute(update(Nudge).where(
        Nudge.team_id == team_id, Nudge.stage == stage, Nudge.state == "pending",
        Nudge.due_at > now).values(due_at=now).execution_options(synchronize_session=False)
    ).rowcount


def claim_due(session: Session, by: str, now: datetime, stale_before: datetime,
              limit: int, at: datetime) -> list[Row]:
    """Claim up to `limit` due nudges in one conditional UPDATE, stamped `at` (when the claim
    is made: its lease runs from then): whichever sweep claims a nudge is its one sender. On PostgreSQL the candidates are locked with SKIP LOCKED, so
    concurrent sweeps take disjoint sets instead of waiting on each other; SQLite runs
    one writer at a time. Light rows (id, lead_id, stage, due_at, held, assigned_at), in due
    order: the sweep only reads them, and nothing else changes a claimed nudge."""
    candidates = (select(Nudge.id).where(_claimable(now, stale_before))
                  .order_by(Nudge.due_at, Nudge.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    rows = session.execute(
        update(Nudge).where(Nudge.id.in_(candidates), _claimable(now, stale_before))
        .values(state="sending", claimed_by=by, claimed_at=at)
        .returning(Nudge.id, Nudge.lead_id, Nudge.stage, Nudge.due_at, Nudge.held,
                   Nudge.assigned_at)
        .execution_options(synchronize_session=False)).all()
    return sorted(rows, key=lambda r: (r.due_at, r.id))  # RETURNING keeps no order


def mark_fired(session: Session, now: datetime, *, sent: list[int], cancelled: list[int],
               held: dict[int, datetime]) -> None:
    """What a sweep did with the nudges it claimed: sent, cancelled, or pending again later."""
    if sent:
        session.execute(update(_NUDGES).where(among(session, _NUDGES.c.id, sent))
                        .values(state="sent", sent_at=now))
    if cancelled:
        session.execute(update(_NUDGES).where(among(session, _NUDGES.c.id, cancelled))
                        .values(state="cancelled"))
    if held:
        session.execute(update(_NUDGES).where(_NUDGES.c.id == bindparam("nudge"))
                        .values(state="pending", held=True, due_at=bindparam("due")),
                        [{"nudge": i, "due": due} for i, due in held.items()])


def _claimable(now: datetime, stale_before: datetime):
    return or_((Nudge.state == "pending") & (Nudge.due_at <= now),
               (Nudge.state == "sending") & (Nudge.claimed_at < stale_before))
