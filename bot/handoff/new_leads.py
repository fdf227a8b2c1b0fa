"""Handing off leads: a new lead is routed and its card posted (in the channel, and in
its owner's DM); a lead nobody may take waits in the handoff channel's queue, never unseen.
The SLA sweep tries its routing again when someone may take it (`Handoffs.retry`), and
escalates it when it has waited too long (`sla.wait_clock`). A lead alignbot holds already
that the CRM routes (an update naming its owner) is handed off the same way
(`Handoffs.route_again`).

Slack takes about one message a second per channel: when leads come faster than cards
may, a channel gets a burst, one summary message listing them, edited as it grows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property

from bot import home
from bot.blocks import handoff as blocks
from bot.handoff import lifecycle
from bot.handoff.cards import CardBatch, card_view
from bot.handoff.directory import LookupFailed
from bot.handoff.routing import Decision, Router
from bot.platform import outbox
from bot.platform.config import UNASSIGNED
from bot.platform.work import Work
from bot.sla import policies as sla
from bot.sla.calendar import Calendar
from storage import bulk, bursts
from storage.leads import mark_status
from storage.models import HandoffBurst, HandoffBurstLead, Lead, Person
from storage.nudges import add_nudge, cancel_pending, pull_due
from storage.outbox import count_posts_since
from storage.people import get_person_by_email

FROM_CRM, REASSIGNED = "owner from the CRM", "reassigned in the CRM"  # why, in its history
BURST_WINDOW = timedelta(minutes=1)
SUMMARY_GATHER = timedelta(seconds=10)  # a summary waits this long for more lines before it goes


@dataclass
class CrmRoute:
    """A lead alignbot holds already that a CRM update routes: one waiting in the queue
    given an owner, a rejected or recycled one routed again, an open one given another
    owner (see `Handoffs.route_again`)."""
    lead: Lead
    owner: Person | None  # the CRM's, found; None: decided as for a new lead, else it waits
    then: tuple[str, ...] = ()  # the stages past routed the CRM has it at (accepted)


class Handoffs:
    """Hands off many new leads in one transaction with a few queries, not a dozen per lead:
    routing state and each channel's recent cards and open burst are read once and tracked.
    The leads' history, nudges and burst lines go into the session's batch when one is open (the caller writes
    them, then calls `finish()`)."""

    def __init__(self, work: Work, owner_by_email: Callable[[str], Person | None] | None = None):
        self.work = work
        self.session, self.team_id, self.config, self.now = \
            work.session, work.team_id, work.config, work.now
        self.owner_by_email = owner_by_email
        self.router = Router(work)
        self._recent: dict[str, int] = {}  # cards posted to a channel within the burst window
        self._posted: dict[str, int] | None = None  # what the store says of those, read once
        self._bursts: dict[str, HandoffBurst | None] = {}  # a channel's open burst
        self._open: dict[str, HandoffBurst] | None = None  # all channels' open bursts, read once
        self._grown: dict[HandoffBurst, int] = {}  # bursts' new leads, counted in by finish()
        self._owners: set[int] = set()  # whose Homes show new leads
        self._decided: dict[Decision, dict] = {}  # routing decisions as their events record them
        self._listed: set[tuple[int, int]] = set()  # (burst, lead): leads a summary lists already
        # SLA due times and first nudges (see open_clock), for every lead this batch routes
        self.plans: dict[tuple, sla.Plan] = {}

    def hand_off(self, lead: Lead) -> None:
        """Route a new lead and post its card (channel, and the owner's DM).
        An owner the CRM named wins; one nobody in Slack matches leaves it in the queue."""
        decision = self._decide(lead, self.owner_by_email)
        data = self._data(decision)
        if (owner := decision.owner) is None:
            self._wait(lead, decision, data)
        else:
            assign(self.work, lead, owner, actor="system", data=data, plans=self.plans,
                   fresh=True)
            self._owners.add(owner.id)
        card = _Card(lambda: blocks.handoff_card(card_view(self.work, lead, fresh=decision)))
        if self.config.channels.handoff:
            self._post(self.config.channels.handoff, card, lead.id)
        if owner is not None and self.config.handoff.dm_owner:
            self._post(data["owner"], card, lead.id, dm=True)  # to the owner's Slack id

    def retry(self, lead: Lead, batch: CardBatch) -> bool:
        """Route a lead waiting for an owner again (the SLA sweep, when someone may take it
        by now; a CRM owner is looked up in the store only). Routed, its SLA clock starts
        now, its cards are updated in place and the owner gets theirs, as for a new lead;
        else it waits for the next chance, and its card says why. True when routed."""
        decision = self._decide(lead, self.owner_by_email or self._stored_owner)
        data = self._data(decision)
        if (owner := decision.owner) is None:
            last = batch.last(lead, "unassigned")
            news = last is None or last.data != data  # a new reason or a new time to try
            self._wait(lead, decision, data, record=news)
            if news:
                batch.note(lead, "unassigned", data)
                batch.refresh(lead)
            return False
        if not mark_status(self.session, lead.id, lead.status, lead.owner_id, "routed", self.now):
            return False  # taken from its card in the meantime
        assign(self.work, lead, owner, actor="system", data=data, plans=self.plans)
        self._owners.add(owner.id)
        self.dm_card(owner, lead, batch, batch.refresh(lead))
        return True

    def route_again(self, routes: list[CrmRoute], *, actor: str) -> None:
        """Hand off the leads the CRM routes that alignbot holds already, as new leads are:
        each to its owner, with a new SLA clock and its first nudge (replacing the queue's
        stages, or the old owner's: a reassignment keeps its handoff's start and a missed
        SLA), its cards updated in place (posted, or a line in a burst, where it has none)
        and the owner's in their DM; then on to what the CRM says it is at (`then`). One
        nobody may take waits in the queue, saying why, as a new lead does: a rejected or
        recycled lead goes back to it, never routed to nobody. Many leads (a webhook's
        1,000) share their card history, burst and plan reads."""
        if not routes:
            return
        leads = [route.lead for route in routes]
        batch = CardBatch(self.work, leads)
        self._listed |= bursts.list_listed(self.session, [lead.id for lead in leads])
        for route in routes:
            self._route_again(route, batch, actor)

    def _route_again(self, route: CrmRoute, batch: CardBatch, actor: str) -> None:
        lead = route.lead
        if route.owner is not None:
            reason = REASSIGNED if lead.status in lifecycle.REASSIGNED_FROM else FROM_CRM
            decision = Decision(route.owner, None, reason)
        else:
            decision = self._decide(lead, self.owner_by_email or self._stored_owner)
        data = self._data(decision)
        if (owner := decision.owner) is None:
            if lead.status == sla.WAITING:  # waits on, for the owner the CRM names now
                last = batch.last(lead, "unassigned")
                if last is not None and last.data == data:
                    return  # nothing new to say
                cancel_pending(self.session, lead.id, stages=(sla.ROUTE,))  # `_wait`'s is next
                self._wait(lead, decision, data)
            else:  # rejected, recycled: back to the queue
                lifecycle.requeue(self.session, lead, actor="system", at=self.now, data=data)
                cancel_pending(self.session, lead.id)
                self._wait(lead, decision, data, record=False)
            batch.note(lead, "unassigned", data)
        else:
            assign(self.work, lead, owner, actor="system", data=data, plans=self.plans)
            self._owners.add(owner.id)
            for stage in route.then:  # the clock runs on: only a first touch or a rejection stops it
                lifecycle.transition(self.session, lead, stage, actor=actor, at=self.now)
                batch.note(lead, stage, None)
        posted = batch.refresh(lead)  # the cards it has (channel, and its owners' DMs)
        card = _Card(lambda: posted or blocks.handoff_card(batch.view(lead)))
        if posted is None and self.config.channels.handoff:  # it has none there (imported in
            self._post(self.config.channels.handoff, card, lead.id)  # its state, a burst's line)
        if owner is not None and self.config.handoff.dm_owner:
            self._post(owner.slack_id, card, lead.id, dm=True)

    def dm_card(self, owner: Person, lead: Lead, batch: CardBatch, posted: dict | None) -> None:
        """The lead's card in its owner's DM (if the config sends one), or in a burst a line
        in the DM's summary: many leads given to a rep at once (an SLA sweep's
        reassignments, the queue's retries, a CRM owner found at last) are one message, as
        new leads are. `posted`: the card its refresh built, if any; else it is built from
        `batch`, only if it is posted."""
        if self.config.handoff.dm_owner:
            card = _Card(lambda: posted or blocks.handoff_card(batch.view(lead)))
            self._post(owner.slack_id, card, lead.id, dm=True)

    def _decide(self, lead: Lead, owner_by_email: Callable[[str], Person | None] | None
                ) -> Decision:
        decision = _explicit(lead, owner_by_email) \
            if lead.crm_owner_email and owner_by_email else self.router.route(lead)
        if decision.owner is None and decision.retry_at is None:
            decision = replace(decision, retry_at=self._next_morning)  # no known moment
        return decision

    def _data(self, decision: Decision) -> dict:
        """What the lead's event records of the decision: one dict per decision, shared by
        its leads' events (written, never changed)."""
        data = self._decided.get(decision)
        if data is None:
            data = self._decided[decision] = {"pool": decision.pool, "reason": decision.reason}
            if decision.owner is not None:
                data["owner"] = decision.owner.slack_id
            if decision.retry_at is not None:
                data["retry_at"] = decision.retry_at.astimezone(UTC).isoformat()
        return data

    def _wait(self, lead: Lead, decision: Decision, data: dict, *, record: bool = True) -> None:
        """Nobody may take the lead now: it waits in the queue until `decision.retry_at`,
        when routing tries again, on a clock of its own from when it first waited."""
        if record:
            lifecycle.record(self.session, lead, "unassigned", actor="system", at=self.now,
                             data=data)
        add_nudge(self.session, lead, sla.ROUTE, decision.retry_at)
        if lead.sla_policy != UNASSIGNED:  # first time (or a lead queued before retries)
            sla.wait_clock(self.work, lead)

    @cached_property
    def _next_morning(self) -> datetime:
        """When nobody is known to become free (deactivated, a CRM owner nobody matches),
        the queue is tried again when the next working day starts."""
        return Calendar.of(self.config).next_day_start(self.now)

    def _stored_owner(self, email: str) -> Person | None:
        return get_person_by_email(self.session, self.team_id, email.strip().lower())

    def finish(self, *, show: bool = True) -> set[int]:
        """Count each burst's new leads in and show it as it is now (the leads' rows must
        be written by then), write back the routing state, and mark the owners' Homes
        stale, once for all their new leads. The ids of the bursts that grew are returned:
        an import shows them once at its end (`show=False`), not after every batch, but a
        new burst's summary is queued at once all the same."""
        for burst, added in self._grown.items():
            burst.leads += added
            burst.window_leads += added
            burst.last_at = self.now
        _show(self.work, [b for b in self._grown if show or b.message_id is None])
        grown = {burst.id for burst in self._grown}
        self._grown.clear()
        self.router.save()
        home.mark_stale(self.work, self._owners)
        self._owners.clear()
        return grown

    def _post(self, channel: str, card: _Card, lead_id: int, *, dm: bool = False) -> None:
        """The card itself or, in a burst, a line in the channel's summary. Slack takes about
        one message a second per channel: an import of any size must stay one message."""
        if channel not in self._recent:
            self._bursts[channel] = self._open_burst(channel)
            if self._bursts[channel] is None and self._posted is None:  # every channel's at once
                self._posted = count_posts_since(self.session, self.team_id, "lead:",
                                                 self.now - BURST_WINDOW)
            self._recent[channel] = 0 if self._bursts[channel] else self._posted.get(channel, 0)
        burst = self._bursts[channel]
        if burst is None and self._recent[channel] < self.config.handoff.burst_limit:
            self._recent[channel] += 1
            outbox.post(self.session, self.team_id, channel, card.blocks, now=self.now,
                        ref=f"lead:{lead_id}:dm:{channel}" if dm else f"lead:{lead_id}:channel")
            return
        if burst is None:
            burst = self._bursts[channel] = HandoffBurst(
                team_id=self.team_id, channel=channel, leads=0, last_at=self.now,
                window_at=self.now, window_leads=0)
            self.session.add(burst)
            self.session.flush()  # its lines point at its id
        if (burst.id, lead_id) in self._listed:  # routed again while its line is new: the
            self._grown.setdefault(burst, 0)  # summary, shown again, shows it as it is now
            return
        bulk.add(self.session, HandoffBurstLead,
                 {"burst_id": burst.id, "lead_id": lead_id, "team_id": self.team_id})
        self._listed.add((burst.id, lead_id))
        self._grown[burst] = self._grown.get(burst, 0) + 1

    def _open_burst(self, channel: str) -> HandoffBurst | None:
        """The channel's burst, while leads still come faster than cards may: one whose
        last minute brought no more than the limit is over, and cards flow again."""
        if self._open is None:
            self._open = bursts.list_open_bursts(self.session, self.team_id,
                                                 self.now - BURST_WINDOW)
        burst = self._open.get(channel)
        if burst is not None and burst.window_at <= self.now - BURST_WINDOW:
            if burst.window_leads <= self.config.handoff.burst_limit:
                return None
            burst.window_at, burst.window_leads = self.now, 0
        return burst


def hand_off(work: Work, lead: Lead,
             owner_by_email: Callable[[str], Person | None] | None = None) -> None:
    """Hand off one new lead (see Handoffs for many)."""
    handoffs = Handoffs(work, owner_by_email)
    handoffs.hand_off(lead)
    handoffs.finish()


def _explicit(lead: Lead, owner_by_email: Callable[[str], Person | None]) -> Decision:
    try:
        owner = owner_by_email(lead.crm_owner_email)
    except LookupFailed as exc:  # it waits, saying so, until bot.intake.owners finds the owner
        return Decision(None, None, f"the CRM owner {lead.crm_owner_email} {exc}")
    if owner is None or owner.deactivated:
        why = "is deactivated in Slack" if owner else "matches nobody in Slack"
        return Decision(None, None, f"the CRM owner {lead.crm_owner_email} {why}")
    return Decision(owner, None, FROM_CRM)


def assign(work: Work, lead: Lead, owner: Person, *, actor: str, data: dict,
           plans: dict[tuple, sla.Plan] | None = None, fresh: bool = False) -> None:
    """Give the lead to `owner`, with a new SLA clock. `fresh`: a lead just arriving, with
    no nudges yet to replace (a queued lead has its retry and escalation)."""
    lead.owner_id = owner.id
    lifecycle.transition(work.session, lead, "routed", actor=actor, at=work.now, data=data)
    sla.open_clock(work, lead, owner, rerouted=not fresh, plans=plans)


def absences_changed(work: Work) -> None:
    """Someone is back, or says when they will be: the leads waiting for an owner are tried
    again at the next sweep, which works out the next try from everyone's absences as they
    are now. Else a lead queued while its only taker was away until Thursday waited for
    Thursday though they came back, or said Wednesday."""
    pull_due(work.session, work.team_id, sla.ROUTE, work.now)


def show_bursts(work: Work, burst_ids: set[int]) -> None:
    _show(work, [burst for burst_id in sorted(burst_ids)
                 if (burst := bursts.get_burst(work.session, work.team_id, burst_id)) is not None])


def _show(work: Work, shown: list[HandoffBurst]) -> None:
    """Post each burst's summary, gathering lines for a few seconds first; once it is out,
    edit it in place (one queued edit at a time, so an import is not a flood of edits). The
    summaries out already are read and edited together: a webhook grows a burst a rep."""
    session, now = work.session, work.now
    out = [burst for burst in shown if burst.message_id is not None]
    pages = bursts.list_first_pages(session, [burst.id for burst in out], blocks.SUMMARY_MAX)
    outbox.revise_each(session, [
        (burst.message_id, burst.channel,
         blocks.burst_summary(_summary(work, burst, 1, pages[burst.id]))) for burst in out],
        now=now)
    for burst in shown:
        if burst.message_id is None:
            message = blocks.burst_summary(summary_page(work, burst, 1))
            posted = outbox.post(session, work.team_id, burst.channel, message, now=now,
                                 ref=f"burst:{burst.channel}", not_before=now + SUMMARY_GATHER)
            session.flush()
            burst.message_id = posted.id


class _Card:
    """A lead's card: built only when it is posted rather than listed in a burst, and
    then once for both the channel and the DM."""

    def __init__(self, build: Callable[[], dict]):
        self._build = build

    @cached_property
    def blocks(self) -> dict:
        return self._build()


def summary_page(work: Work, burst: HandoffBurst, page: int) -> blocks.SummaryPage:
    """A page of a burst's summary, read as the leads are now (a page past the end: the last)."""
    page = min(max(page, 1), blocks.page_count(burst.leads))
    listed = bursts.list_burst_leads(work.session, burst.id, offset=(page - 1) * blocks.SUMMARY_MAX,
                                     limit=blocks.SUMMARY_MAX)
    return _summary(work, burst, page, listed)


def _summary(work: Work, burst: HandoffBurst, page: int, listed) -> blocks.SummaryPage:
    hot = work.config.routing.hot_score
    lines = [blocks.summary_line(blocks.SummaryLine(
        lead_id=r.id, external_id=r.external_id, name=r.name, company=r.company, score=r.score,
        hot=(r.score or 0) >= hot, source=r.source, owner=r.owner,
        status=r.status)) for r in listed]
    return blocks.SummaryPage(burst.id, burst.leads, page, lines,
                             for_owner=burst.channel != work.config.channels.handoff)
