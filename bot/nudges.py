"""The SLA sweep: sends each due nudge once, holding nudges until the working day starts.

Stages: a reminder to the owner, a breach notice to the owner and their manager,
an escalation in the handoff channel, and a reassignment to the next eligible
person in the pool. Several sweeps (processes) may run: each nudge is claimed
with a conditional UPDATE before anything is sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot import handoff, lifecycle, outbox, sla
from bot.blocks import sla as views
from bot.config import Config
from bot.routing import Router
from bot.services import Services
from storage import nudges as queries
from storage.leads import get_lead, get_person_by_id
from storage.models import Lead, Nudge, Person

LEASE = timedelta(minutes=5)  # a claim older than this was lost with its process
SNOOZE = timedelta(minutes=30)
BATCH = 500
OPEN = ("routed", "accepted")  # still waiting for the first touch


@dataclass
class SweepReport:
    sent: int = 0
    held: int = 0
    dropped: int = 0  # the lead was answered in the meantime


def sweep(services: Services, now: datetime, name: str | None = None) -> SweepReport:
    name = name or f"sweep-{uuid.uuid4().hex[:8]}"
    report = SweepReport()
    with services.sessions.begin() as session:
        due = queries.list_due(session, now, now - LEASE, BATCH)
    for nudge_id in due:
        with services.sessions.begin() as session:
            if not queries.mark_claimed(session, nudge_id, name, now, now - LEASE):
                continue  # another sweep has it
        with services.transaction() as session:
            outcome = fire(session, services.config, session.get(Nudge, nudge_id), now)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def fire(session: Session, config: Config, nudge: Nudge, now: datetime) -> str:
    lead = get_lead(session, nudge.team_id, nudge.lead_id)
    if lead is None or lead.status not in OPEN or lead.sla_met is not None:
        nudge.state = "cancelled"
        return "dropped"
    if nudge.stage == "remind" and lead.sla_due_at is not None and lead.sla_due_at <= now:
        nudge.state = "cancelled"  # held past the due time: the breach notice says it all
        return "dropped"
    owner = get_person_by_id(session, lead.owner_id)
    if (lead.score or 0) < config.routing.hot_score:  # hot leads do not wait for the morning
        person = owner if nudge.stage in ("remind", "breach") else None
        calendar = sla.calendar_for(config, person)
        if not calendar.is_working_time(now):
            nudge.due_at, nudge.held, nudge.state = calendar.next_working_start(now), True, "pending"
            return "held"
    STAGES[nudge.stage](session, config, lead, owner, now)
    lifecycle.record(session, lead, f"sla_{nudge.stage}", actor="system", at=now)
    nudge.state, nudge.sent_at = "sent", now
    return "sent"


def _remind(session: Session, config: Config, lead: Lead, owner: Person | None,
            now: datetime) -> None:
    if owner is not None:
        view = handoff.card_view(session, lead, config, now)
        outbox.post(session, lead.team_id, owner.slack_id, views.reminder(view), now=now,
                    ref=f"lead:{lead.id}:nudge")
    handoff.refresh_cards(session, lead.team_id, lead, config, now)  # the card says "due soon"


def _breach(session: Session, config: Config, lead: Lead, owner: Person | None,
            now: datetime) -> None:
    view = handoff.card_view(session, lead, config, now)
    if owner is not None:
        outbox.post(session, lead.team_id, owner.slack_id, views.breach(view, to_owner=True),
                    now=now, ref=f"lead:{lead.id}:nudge")
        if owner.manager_slack_id:
            outbox.post(session, lead.team_id, owner.manager_slack_id,
                        views.breach(view, to_owner=False), now=now, ref=f"lead:{lead.id}:nudge")
    handoff.refresh_cards(session, lead.team_id, lead, config, now)


def _escalate(session: Session, config: Config, lead: Lead, owner: Person | None,
              now: datetime) -> None:
    if config.channels.handoff:
        view = handoff.card_view(session, lead, config, now)
        outbox.post(session, lead.team_id, config.channels.handoff, views.escalation(view, now),
                    now=now, ref=f"lead:{lead.id}:escalation")


def _reassign(session: Session, config: Config, lead: Lead, owner: Person | None,
              now: datetime) -> None:
    decision = Router(session, lead.team_id, config, now).route(
        lead, exclude={owner.id} if owner else set())
    if decision.owner is None:
        _escalate(session, config, lead, owner, now)
        return
    handoff.reassign_to(session, lead, decision.owner, config, now, actor="system",
                        reason=f"SLA breached: reassigned from {owner.slack_id if owner else '-'}")


STAGES = {"remind": _remind, "breach": _breach, "escalate": _escalate, "reassign": _reassign}


# ------------------------------------------------------------------ buttons on a nudge


def snooze(session: Session, team_id: str, token: str, user: str, config: Config,
           now: datetime) -> handoff.ClickResult:
    lead = _open_lead(session, team_id, token, user)
    queries.add_nudge(session, team_id=team_id, lead_id=lead.id, stage="remind",
                      due_at=now + SNOOZE)
    lifecycle.record(session, lead, "snoozed", actor=user, at=now)
    return handoff.ClickResult(True, "Snoozed: I will remind you again in 30 minutes.")


def working_on_it(session: Session, team_id: str, token: str, user: str, config: Config,
                  now: datetime) -> handoff.ClickResult:
    lead = _open_lead(session, team_id, token, user)
    queries.cancel_pending(session, lead.id, stages=("remind",))
    lifecycle.record(session, lead, "working_on_it", actor=user, at=now)
    return handoff.ClickResult(True, "Noted — no more reminders. Log the first touch on the card "
                                     "when you reach them; the due time still stands.")


def _open_lead(session: Session, team_id: str, token: str, user: str) -> Lead:
    lead = get_lead(session, team_id, int(token.split("|")[0]))
    if lead is None or lead.status not in OPEN:
        raise handoff.ClickRefused("This lead has been answered already; nothing to do.")
    owner = get_person_by_id(session, lead.owner_id)
    if owner is None or owner.slack_id != user:
        raise handoff.ClickRefused("Only the lead's owner can answer its reminders.")
    return lead
