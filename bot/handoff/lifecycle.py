"""The lead lifecycle: which status may follow which, and what each transition records.

`new → routed → accepted → contacted → qualified → won | lost`, with `rejected`
(reason required) and `recycled` as side exits. Every change goes through
`transition()`, from a click, a webhook or an import alike, so the rules and the
history (one lead event per transition) are the same whatever the source.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy.orm import Session

from bot.intake.records import REJECTION_REASONS, STATUSES
from bot.platform.config import UNASSIGNED
from storage import bulk
from storage.models import Lead, LeadEvent

ALLOWED: dict[str, frozenset[str]] = {
    "new": frozenset({"routed", "rejected", "recycled"}),
    "routed": frozenset({"routed", "accepted", "contacted", "rejected", "recycled"}),
    "accepted": frozenset({"routed", "contacted", "qualified", "rejected", "recycled"}),
    "contacted": frozenset({"qualified", "lost", "recycled"}),
    "qualified": frozenset({"won", "lost", "recycled"}),
    "won": frozenset(),
    "lost": frozenset({"recycled"}),
    "rejected": frozenset({"routed", "recycled"}),
    "recycled": frozenset({"routed"}),
}
# Routed again from these, a lead is reassigned: the same handoff, another owner.
REASSIGNED_FROM = ("routed", "accepted")
# Routed again from these side exits, a lead starts a new handoff.
SIDE_EXITS = ("rejected", "recycled")
# The timestamp column each status stamps on the lead.
STAMP = {"routed": "routed_at", "accepted": "accepted_at", "contacted": "first_touch_at",
         "qualified": "qualified_at", "won": "closed_at", "lost": "closed_at",
         "rejected": "rejected_at", "recycled": "recycled_at"}
# The actors of lead events that are no person (alignbot itself, and the intakes): a card
# names who acted only when it was someone.
NOT_PEOPLE = ("system", "webhook", "import", "shell")


class IllegalTransition(ValueError):
    """A status change the lifecycle does not allow; the message says what is allowed."""

    def __init__(self, lead: Lead, to: str):
        allowed = sorted(ALLOWED.get(lead.status, ()))
        options = ", ".join(allowed) if allowed else "nothing (it is final)"
        super().__init__(f"Lead {lead.external_id} is {lead.status}; it cannot become {to}. "
                         f"From {lead.status} it can become: {options}.")
        self.allowed = allowed


def can(lead: Lead, to: str) -> bool:
    return can_pass(lead.status, [to])


def can_pass(status: str, steps: list[str]) -> bool:
    """Whether a lead at `status` may move through `steps`, one after the other."""
    return all(to in ALLOWED.get(at, frozenset()) for at, to in pairwise([status, *steps]))


def transition(session: Session, lead: Lead, to: str, *, actor: str, at: datetime,
               data: dict[str, Any] | None = None) -> None:
    """Move the lead to `to`, stamp the stage time, and write its lead event
    (into the session's batch when the lead is one of a batch written together)."""
    if to not in STATUSES:
        raise ValueError(f"unknown status {to!r}; statuses: {', '.join(STATUSES)}")
    if not can(lead, to):
        raise IllegalTransition(lead, to)
    if to == "rejected" and (data or {}).get("reason") not in REJECTION_REASONS:
        raise ValueError("a rejection needs a reason: " + ", ".join(REJECTION_REASONS))
    before = lead.status
    if to == "contacted" and lead.accepted_at is None:
        lead.accepted_at = at  # a first touch without an explicit accept is an acceptance
    if to == "routed" and before in SIDE_EXITS:
        lead.rejected_at = lead.rejection_reason = lead.rejection_note = None
    if before == "new" and lead.sla_policy == UNASSIGNED:  # its wait for an owner is over
        lead.sla_policy = lead.sla_clock = lead.sla_due_at = None
    if to == "routed":  # the owner's clock starts; a reassignment keeps the handoff's start
        lead.assigned_at = at
    if to in STAMP and not (to == "routed" and before in REASSIGNED_FROM):
        setattr(lead, STAMP[to], at)
    lead.status = to
    lead.updated_at = at
    record(session, lead, to, actor=actor, at=at, from_status=before, data=data)


def requeue(session: Session, lead: Lead, *, actor: str, at: datetime,
            data: dict[str, Any] | None = None) -> None:
    """Put a rejected or recycled lead back in the queue, waiting for an owner (`new`, owned
    by nobody): the CRM routed it again to an owner nobody here can be. Not a move a click or
    a record asks for (it is not in ALLOWED): alignbot's own, so that the lead waits where
    people see it instead of being routed to nobody. Its `unassigned` event says why."""
    if lead.status not in SIDE_EXITS:
        raise IllegalTransition(lead, "new")
    before = lead.status
    lead.rejected_at = lead.rejection_reason = lead.rejection_note = None
    lead.owner_id = lead.assigned_at = None
    lead.status = "new"
    lead.updated_at = at
    record(session, lead, "unassigned", actor=actor, at=at, from_status=before, data=data)


def record(session: Session, lead: Lead, kind: str, *, actor: str, at: datetime,
           from_status: str | None = None, data: dict[str, Any] | None = None) -> None:
    """Append one event to the lead's history (transitions and other changes alike)."""
    bulk.add(session, LeadEvent, {
        "team_id": lead.team_id, "lead_id": lead.id, "kind": kind, "from_status": from_status,
        "to_status": lead.status, "actor": actor, "at": at, "data": data})
