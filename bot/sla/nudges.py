"""The SLA sweep: sends each due nudge once, holding nudges until the working day starts.

Stages: a reminder to the owner, a breach notice to the owner and their manager,
an escalation in the handoff channel, a reassignment to the next eligible person
in the pool, and the card refreshes when its SLA state changes. A lead waiting for
an owner has two of its own: its routing is tried again when someone may take it,
and if it still has no owner when due one, the handoff channel, the sales managers
and the admins are told (one message for all that fell due together). Several sweeps
(processes) may run: nudges are claimed with a conditional UPDATE before anything
is sent, a batch at a time, and a batch is fired in one transaction.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from bot import home
from bot.blocks import sla as views
from bot.handoff import lifecycle
from bot.handoff.cards import CardBatch
from bot.handoff.clicks import ClickRefused, reassign_to
from bot.handoff.new_leads import Handoffs
from bot.handoff.routing import Router
from bot.platform import outbox
from bot.platform.services import Services
from bot.platform.work import Work
from bot.sla import policies as sla
from storage import bulk
from storage import nudges as queries
from storage.leads import (
    get_lead,
    get_person_by_id,
    list_leads_by_id,
    list_people_by_id,
    lost_leads,
)
from storage.models import Lead, Person
from storage.routing import list_people_by_role

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a claim older than this was lost with its process
SNOOZE = timedelta(minutes=30)
BATCH = 1000
ROUTING_BATCH = 100  # nudges of leads a stage routes: at most this many a transaction (`_parts`)


@dataclass
class SweepReport:
    sent: int = 0
    held: int = 0
    dropped: int = 0  # the lead was answered in the meantime

    def __add__(self, other: SweepReport) -> SweepReport:
        return SweepReport(self.sent + other.sent, self.held + other.held,
                           self.dropped + other.dropped)


class Batch:
    """Fires many claimed nudges in one transaction with a few queries: their leads, owners,
    card history and card posts are read once; the history and messages they write, and
    the nudges' own new states, are written together by `finish()`."""

    def __init__(self, work: Work, nudges: list):
        self.work = work  # the leads' teams vary: `cards` and `handoffs` act for each one's
        session = self.session = work.session
        self.config, self.now = work.config, work.now
        self.rows = bulk.batch(session)
        self.leads = {lead.id: lead for lead in list_leads_by_id(session, [n.lead_id for n in nudges])}
        # Held here: the session keeps only weak references to what it loaded.
        self.people = {p.id: p for p in list_people_by_id(
            session, [lead.owner_id for lead in self.leads.values() if lead.owner_id])}
        self.sent: list[int] = []
        self.dropped: list[int] = []
        self.held: dict[int, tuple[int, datetime]] = {}  # nudge id -> (lead id, new due time)
        self.homes: set[int | None] = set()  # owners whose leads changed SLA state
        self.follow: dict[int, tuple[str, datetime]] = {}  # lead id -> the stage its next follows
        self.rerouted_ids: set[int] = set()  # their other nudges in this batch are void
        self.unowned: dict[str, list[Lead]] = {}  # by team: leads due an owner, still without
        # (builder, team, person): one DM for all their reminders, or breach notices
        self.digests: dict[tuple[str, str, str], list[Lead]] = {}
        self.escalated: dict[str, list[Lead]] = {}  # by team: in a few handoff channel messages
        # the leads whose card is refreshed or posted (a nudge shows only the lead's fields)
        self.carded = {n.lead_id for n in nudges if n.stage not in LISTED}
        self._cards: dict[str, CardBatch] = {}
        self._handoffs: dict[str, Handoffs] = {}

    def person(self, person_id: int | None) -> Person | None:
        if person_id is not None and person_id not in self.people:
            self.people[person_id] = get_person_by_id(self.session, person_id)
        return self.people.get(person_id)

    def cards(self, team_id: str) -> CardBatch:
        if team_id not in self._cards:
            self._cards[team_id] = CardBatch(
                self.work.for_team(team_id),
                [lead for lead in self.leads.values()
                 if lead.team_id == team_id and lead.id in self.carded])
        return self._cards[team_id]

    def handoffs(self, team_id: str) -> Handoffs:
        if team_id not in self._handoffs:
            self._handoffs[team_id] = Handoffs(self.work.for_team(team_id))
        return self._handoffs[team_id]

    def router(self, team_id: str) -> Router:
        return self.handoffs(team_id).router  # one per team: it holds the pools' state

    def rerouted(self, lead: Lead) -> None:
        """The lead has a new owner and new nudges: what was held for the old one is void,
        and its old chain of stages ends here."""
        for nudge_id, (lead_id, _) in list(self.held.items()):
            if lead_id == lead.id:
                del self.held[nudge_id]
                self.dropped.append(nudge_id)
        self.follow.pop(lead.id, None)
        self.rerouted_ids.add(lead.id)
        self.cards(lead.team_id).forget(lead)

    def digest(self, kind: str, team_id: str, person: str, lead: Lead) -> None:
        """A nudge for `person` sent by `finish`, in one DM with their others of this kind."""
        self.digests.setdefault((kind, team_id, person), []).append(lead)

    def finish(self) -> SweepReport:
        # A flush before the batch's writes runs its compares (reassignments) first (see
        # `bulk.Rows.expect`): they compare the leads as they were read.
        with self.session.no_autoflush:
            for lead_id, fired in self.follow.items():  # each fired stage writes the next
                lead = self.leads[lead_id]
                sla.schedule(self.work, lead, self.person(lead.owner_id), after=fired)
            for team_id, leads in self.unowned.items():
                _tell_unowned(self, team_id, leads)
            for (kind, team_id, person), leads in self.digests.items():
                _send_digest(self, kind, team_id, person, leads)
            for team_id, leads in self.escalated.items():
                _send_escalations(self, team_id, leads)
        self.rows.write(self.session)
        for handoffs in self._handoffs.values():  # routing state, DM bursts, owners' Homes
            handoffs.finish()
        home.mark_stale(self.work, self.homes)
        queries.mark_fired(self.session, self.now, sent=self.sent, cancelled=self.dropped,
                           held={nudge_id: due for nudge_id, (_, due) in self.held.items()})
        return SweepReport(len(self.sent), len(self.held), len(self.dropped))


def sweep(services: Services, now: datetime, name: str | None = None) -> SweepReport:
    """Claim what is due, in batches, and fire each batch in one transaction (or a few:
    see `_parts`)."""
    name = name or f"sweep-{uuid.uuid4().hex[:8]}"
    report = SweepReport()
    while True:  # until nothing is due: a fired stage may write a next one due already
        # stamped with the time of each claim, not the sweep's start: a catch-up's later
        # batches would otherwise look stale at once to the next minute's sweep, fired twice
        at = max(now, services.clock.now())
        with services.sessions.begin() as session:
            claimed = queries.claim_due(session, name, now, now - LEASE, BATCH, at)
        if not claimed:
            return report
        for part in _parts(claimed):
            report += _fire_claimed(services, part, now)


def _parts(claimed: list) -> list[list]:
    """The claimed nudges as transactions: those of leads no stage of the batch routes, in
    one (a person's reminders due together still come in one message), then the leads a
    stage routes (a reassignment, a retry), at most `ROUTING_BATCH` a transaction, each
    with its other nudges of the batch (what a reassignment voids). A transaction that
    routes holds the workspace's routing lock (`storage.db.lock_handoffs`) to its end, and
    new leads' webhooks wait for it: a catch-up's batch of 800 reassignments in one held it
    1-2 s on PostgreSQL."""
    routed = {n.lead_id for n in claimed if n.stage in ROUTING}
    rest = [n for n in claimed if n.lead_id not in routed]
    parts: list[list] = []
    part_of: dict[int, list] = {}  # lead id -> its part
    for nudge in claimed:  # in due order: the round-robin takes the leads as it did
        if nudge.lead_id not in routed:
            continue
        if nudge.lead_id not in part_of:
            if not parts or len(parts[-1]) >= ROUTING_BATCH:
                parts.append([])
            part_of[nudge.lead_id] = parts[-1]
        part_of[nudge.lead_id].append(nudge)
    return ([rest] if rest else []) + parts


def _fire_claimed(services: Services, nudges: list, now: datetime) -> SweepReport:
    """One transaction for the batch; if it fails, one per nudge, so a nudge that cannot be
    sent holds back only itself (it stays claimed and is retried after the lease). A lead
    someone else changed while the batch reassigned it (`bulk.Conflict`) is left to them:
    its nudges are dropped, and the rest of the batch fires again together."""
    try:
        with services.work(now=now) as work:
            return fire_all(work, nudges)
    except Exception as exc:
        leads = lost_leads(exc) if isinstance(exc, bulk.Conflict) else set()
        if lost := [n.id for n in nudges if n.lead_id in leads]:
            return _drop_lost(services, nudges, lost, leads, now)
        ids = [n.id for n in nudges]
        log.exception("SLA sweep: firing nudges %s failed", ids if len(ids) == 1 else
                      f"{ids[0]}..{ids[-1]} ({len(ids)}); firing them one by one")
        if len(ids) == 1:
            return SweepReport()
    return sum((_fire_claimed(services, [n], now) for n in nudges), SweepReport())


def _drop_lost(services: Services, nudges: list, lost: list[int], leads: set[int],
               now: datetime) -> SweepReport:
    """Leads changed by someone else (a click, another process) after this sweep read them:
    whatever they did to a lead is newer than its nudges, which were claimed before it and
    so escaped its own cancelling (a new owner has a new clock; an answer ends the SLA)."""
    shown = sorted(leads)
    log.warning("SLA sweep: %d leads changed while being reassigned (%s%s); their %d nudges "
                "are dropped, the other %d of the batch fire again", len(shown),
                ", ".join(map(str, shown[:20])), ", ..." if len(shown) > 20 else "", len(lost),
                len(nudges) - len(lost))
    with services.sessions.begin() as session:
        queries.mark_fired(session, now, sent=[], cancelled=lost, held={})
    rest = [n for n in nudges if n.lead_id not in leads]
    return SweepReport(dropped=len(lost)) + (_fire_claimed(services, rest, now) if rest
                                             else SweepReport())


def fire_all(work: Work, nudges: list) -> SweepReport:
    batch = Batch(work, nudges)
    with work.session.no_autoflush:  # one flush at the end: no query in here needs what is pending
        for nudge in nudges:
            fire(batch, nudge, batch.leads.get(nudge.lead_id))
    return batch.finish()


def fire(batch: Batch, nudge, lead: Lead | None) -> None:
    config, now = batch.config, batch.now
    if not _applies(batch, nudge, lead):
        batch.dropped.append(nudge.id)
        return
    if nudge.stage == sla.ROUTE:
        if batch.handoffs(lead.team_id).retry(lead, batch.cards(lead.team_id)):
            batch.rerouted(lead)
        batch.sent.append(nudge.id)
        return
    if nudge.stage not in OUTSIDE_CHAIN and not nudge.held:  # first claimed: the chain goes on
        batch.follow[lead.id] = (nudge.stage, nudge.due_at)
    if nudge.stage in ("remind", SNOOZED) and lead.sla_due_at is not None \
            and lead.sla_due_at <= now:
        batch.dropped.append(nudge.id)  # held past the due time: the breach notice says it all
        return
    owner = batch.person(lead.owner_id)
    # A card changes whenever; people are not disturbed after hours unless the lead is hot.
    if nudge.stage != "card" and (lead.score or 0) < config.routing.hot_score:
        person = owner if nudge.stage in ("remind", SNOOZED, "breach") else None
        calendar = sla.calendar_for(config, person)
        if not calendar.is_working_time(now):
            batch.held[nudge.id] = (lead.id, calendar.next_working_start(now))
            return
    STAGES[nudge.stage](batch, lead, owner)
    if nudge.stage != "card":
        kind = "remind" if nudge.stage == SNOOZED else nudge.stage
        lifecycle.record(batch.session, lead, f"sla_{kind}", actor="system", at=now)
    batch.sent.append(nudge.id)


def _applies(batch: Batch, nudge, lead: Lead | None) -> bool:
    """The stage still has something to do: its lead waits for an owner (the queue's
    stages) or for a first touch (the others), and nobody has routed it since the stage was
    written (this sweep, or someone after the sweep claimed it)."""
    if lead is None or lead.id in batch.rerouted_ids or nudge.assigned_at != lead.assigned_at:
        return False
    if nudge.stage in (sla.ROUTE, sla.ESCALATE_UNASSIGNED):
        return lead.status == sla.WAITING
    return lead.status in sla.OPEN and lead.response_minutes is None


def _card(batch: Batch, lead: Lead, owner: Person | None) -> None:
    batch.cards(lead.team_id).refresh(lead)
    batch.homes.add(lead.owner_id)


def _remind(batch: Batch, lead: Lead, owner: Person | None) -> None:
    if owner is not None:
        batch.digest("reminders", lead.team_id, owner.slack_id, lead)


def _breach(batch: Batch, lead: Lead, owner: Person | None) -> None:
    if owner is not None:
        batch.digest("breaches", lead.team_id, owner.slack_id, lead)
        if owner.manager_slack_id:
            batch.digest("team_breaches", lead.team_id, owner.manager_slack_id, lead)
    _card(batch, lead, owner)


# What one DM of a person's nudges that fell due together says (see `_send_digest`).
DIGESTS = {"breaches": partial(views.breaches, to_owner=True),
           "team_breaches": partial(views.breaches, to_owner=False),
           "reminders": views.reminders}


def _send_digest(batch: Batch, kind: str, team_id: str, person: str, leads: list[Lead]) -> None:
    """One DM per person for the reminders (or breach notices) that fell due together: 300
    leads are one message to read (the soonest shown, with their buttons), not 300, which
    would also take Slack's one message a second per channel five minutes to deliver."""
    leads = _most_overdue(batch, leads)
    shown = [batch.cards(team_id).listed(lead) for lead in leads[:views.REMINDER_LEADS]]
    ref = f"lead:{leads[0].id}:nudge" if len(leads) == 1 else f"{kind}:{person}"
    outbox.post(batch.session, team_id, person, DIGESTS[kind](shown, len(leads)), now=batch.now,
                ref=ref)


def _most_overdue(batch: Batch, leads: list[Lead]) -> list[Lead]:
    return sorted(leads, key=lambda lead: (lead.sla_due_at or batch.now, lead.id))


def _escalate(batch: Batch, lead: Lead, owner: Person | None) -> None:
    if batch.config.channels.handoff:
        batch.escalated.setdefault(lead.team_id, []).append(lead)


def _send_escalations(batch: Batch, team_id: str, leads: list[Lead]) -> None:
    """The escalations that fell due together, in the handoff channel: each message names
    up to `ESCALATION_LEADS` of them, each one click from its card. One message per lead
    made a sweep's 250 escalations four minutes of the channel's one message a second."""
    leads = _most_overdue(batch, leads)
    cards, per = batch.cards(team_id), views.ESCALATION_LEADS
    for start in range(0, len(leads), per):
        part = leads[start:start + per]
        ref = f"lead:{leads[0].id}:escalation" if len(leads) == 1 else \
            f"escalations:{part[0].id}"
        outbox.post(batch.session, team_id, batch.config.channels.handoff,
                    views.escalations([cards.listed(lead) for lead in part], batch.now,
                                      first=start + 1, total=len(leads)),
                    now=batch.now, ref=ref)


def _unowned(batch: Batch, lead: Lead, owner: Person | None) -> None:
    batch.unowned.setdefault(lead.team_id, []).append(lead)
    _card(batch, lead, owner)


def _tell_unowned(batch: Batch, team_id: str, leads: list[Lead]) -> None:
    """Leads still without an owner when due one: the handoff channel, the sales managers
    and the admins are told, in one message for all of the batch (a burst of leads that
    nobody could take is one message each, not one per lead)."""
    cards = batch.cards(team_id)
    message = views.unassigned([cards.view(lead) for lead in leads])
    ref = f"lead:{leads[0].id}:escalation" if len(leads) == 1 else "escalation:unassigned"
    people = [p for role in ("sales_manager", "admin")
              for p in list_people_by_role(batch.session, team_id, role) if not p.deactivated]
    to = [batch.config.channels.handoff, *(p.slack_id for p in people),
          *batch.config.workspace.admins]
    for where in dict.fromkeys(w for w in to if w):  # each once, in that order
        outbox.post(batch.session, team_id, where, message, now=batch.now, ref=ref)


def _reassign(batch: Batch, lead: Lead, owner: Person | None) -> None:
    decision = batch.router(lead.team_id).route(lead, exclude={owner.id} if owner else set())
    if decision.owner is None:
        _escalate(batch, lead, owner)
        return
    reassign_to(batch.work, lead, decision.owner, actor="system",
                reason=f"SLA breached: reassigned from {owner.slack_id if owner else '-'}",
                batch=batch.cards(lead.team_id), handoffs=batch.handoffs(lead.team_id))
    batch.homes |= {owner.id if owner else None, decision.owner.id}
    batch.rerouted(lead)


SNOOZED = "snooze"  # a reminder the owner asked for again: outside the chain of stages
LISTED = ("remind", SNOOZED, "escalate")  # stages whose message lists the lead, not its card
OUTSIDE_CHAIN = (SNOOZED, sla.ESCALATE_UNASSIGNED)  # stages no next stage follows
ROUTING = (sla.ROUTE, "reassign")  # stages that may route their lead (see `_parts`)
STAGES = {"card": _card, "remind": _remind, SNOOZED: _remind, "breach": _breach,
          "escalate": _escalate, "reassign": _reassign, sla.ESCALATE_UNASSIGNED: _unowned}


# ------------------------------------------------------------------ buttons on a nudge


def snooze(work: Work, token: str, user: str) -> str:
    lead = _open_lead(work, token, user)
    queries.add_nudge(work.session, lead, SNOOZED, work.now + SNOOZE)
    lifecycle.record(work.session, lead, "snoozed", actor=user, at=work.now)
    return "Snoozed: I will remind you again in 30 minutes."


def working_on_it(work: Work, token: str, user: str) -> str:
    session = work.session
    lead = _open_lead(work, token, user)
    due = queries.get_pending_due(session, lead.id, "remind")  # the chain waits on it
    queries.cancel_pending(session, lead.id, stages=("remind", SNOOZED))
    if due is not None:  # the chain skips it (a held one wrote its next stage already)
        sla.schedule(work, lead, get_person_by_id(session, lead.owner_id), after=("remind", due))
    lifecycle.record(session, lead, "working_on_it", actor=user, at=work.now)
    return ("Noted — no more reminders. Log the first touch on the card when you reach them; "
            "the due time still stands.")


def _open_lead(work: Work, token: str, user: str) -> Lead:
    session = work.session
    lead = get_lead(session, work.team_id, int(token.split("|")[0]))
    if lead is None or lead.status not in sla.OPEN:
        raise ClickRefused("This lead has been answered already; nothing to do.")
    owner = get_person_by_id(session, lead.owner_id)
    if owner is None or owner.slack_id != user:
        raise ClickRefused("Only the lead's owner can answer its reminders.")
    return lead
