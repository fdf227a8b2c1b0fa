"""Lead handoff: route a new lead, post its card, and carry out the clicks on it.

Every click is decided by a compare-and-set on the lead's status, so the first
click wins and later ones (double clicks, a colleague, a stale card) change
nothing and get a short answer. Card updates and the marketing feedback go
through the outbox in the same transaction as the change.

A lead nobody may take waits in the handoff channel's queue, never unseen: the SLA
sweep tries its routing again when someone may take it (`Handoffs.retry`), and
escalates it when it has waited too long (`sla.wait_clock`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from types import SimpleNamespace

from sqlalchemy.orm import Session

from bot import home
from bot.blocks import handoff as cards
from bot.handoff import lifecycle
from bot.handoff.directory import LookupFailed
from bot.handoff.routing import Decision, Router
from bot.platform import outbox
from bot.platform.config import UNASSIGNED, Config
from bot.sla import policies as sla
from bot.sla.calendar import Calendar
from storage import bulk, bursts
from storage import leads as queries
from storage.bulk import Rows
from storage.models import HandoffBurst, HandoffBurstLead, Lead, OutboxMessage, Person
from storage.nudges import add_nudge, pull_due
from storage.outbox import count_posts_since, get_first_post, list_first_posts
from storage.people import get_person, get_person_by_email

BURST_WINDOW = timedelta(minutes=1)
SUMMARY_GATHER = timedelta(seconds=10)  # a summary waits this long for more lines before it goes
DECISIONS = ("routed", "accepted", "contacted", "rejected", "unassigned")


@dataclass(frozen=True)
class ClickResult:
    ok: bool
    message: str  # shown only to the person who clicked


class ClickRefused(Exception):
    """A click that changes nothing; the message says why."""


# ------------------------------------------------------------------ new leads


class Handoffs:
    """Hands off many new leads in one transaction with a few queries, not a dozen per lead:
    routing state and each channel's recent cards and open burst are read once and tracked.
    The leads' history, nudges and burst lines go into `rows` when given (the caller writes
    them, then calls `finish()`)."""

    def __init__(self, session: Session, team_id: str, config: Config, now: datetime,
                 owner_by_email: Callable[[str], Person | None] | None = None,
                 rows: Rows | None = None):
        self.session, self.team_id, self.config, self.now = session, team_id, config, now
        self.owner_by_email, self.rows = owner_by_email, rows
        self.router = Router(session, team_id, config, now)
        self._recent: dict[str, int] = {}  # cards posted to a channel within the burst window
        self._bursts: dict[str, HandoffBurst | None] = {}  # a channel's open burst
        self._open: dict[str, HandoffBurst] | None = None  # all channels' open bursts, read once
        self._grown: dict[HandoffBurst, int] = {}  # bursts' new leads, counted in by finish()
        self._owners: set[int] = set()  # whose Homes show new leads
        self._decided: dict[Decision, dict] = {}  # routing decisions as their events record them
        self._plans: dict[tuple, sla.Plan] = {}  # SLA due times and first nudges (see open_clock)

    def hand_off(self, lead: Lead) -> None:
        """Route a new lead and post its card (channel, and the owner's DM).
        An owner the CRM named wins; one nobody in Slack matches leaves it in the queue."""
        decision = self._decide(lead, self.owner_by_email)
        data = self._data(decision)
        if (owner := decision.owner) is None:
            self._wait(lead, decision, data)
        else:
            _assign(self.session, lead, owner, self.config, self.now, actor="system",
                    data=data, rows=self.rows, plans=self._plans, fresh=True)
            self._owners.add(owner.id)
        card = _Card(lambda: card_view(self.session, lead, self.config, self.now, fresh=decision))
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
        if not queries.mark_status(self.session, lead.id, lead.status, lead.owner_id, "routed",
                                   self.now):
            return False  # taken from its card in the meantime
        _assign(self.session, lead, owner, self.config, self.now, actor="system", data=data,
                rows=self.rows)
        self._owners.add(owner.id)
        batch.refresh(lead)
        if self.config.handoff.dm_owner:
            self._post(owner.slack_id, _Card(lambda: batch.view(lead)), lead.id, dm=True)
        return True

    def _decide(self, lead: Lead, owner_by_email: Callable[[str], Person | None] | None
                ) -> Decision:
        decision = _explicit(lead, owner_by_email) \
            if lead.owner_email and owner_by_email else self.router.route(lead)
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
                             data=data, rows=self.rows)
        add_nudge(self.session, self.rows, team_id=lead.team_id, lead_id=lead.id,
                  stage=sla.ROUTE, due_at=decision.retry_at)
        if lead.sla_policy != UNASSIGNED:  # first time (or a lead queued before retries)
            sla.wait_clock(self.session, lead, self.config, self.now, self.rows)

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
        grown = set()
        for burst, added in self._grown.items():
            burst.leads += added
            burst.window_leads += added
            burst.last_at = self.now
            if show or burst.message_id is None:
                show_burst(self.session, self.team_id, burst, self.config, self.now)
            grown.add(burst.id)
        self._grown.clear()
        self.router.save()
        home.mark_stale(self.session, self._owners, self.now)
        self._owners.clear()
        return grown

    def _post(self, channel: str, card: _Card, lead_id: int, *, dm: bool = False) -> None:
        """The card itself or, in a burst, a line in the channel's summary. Slack takes about
        one message a second per channel: an import of any size must stay one message."""
        if channel not in self._recent:
            self._bursts[channel] = self._open_burst(channel)
            self._recent[channel] = 0 if self._bursts[channel] else count_posts_since(
                self.session, self.team_id, channel, "lead:", self.now - BURST_WINDOW)
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
        bulk.add(self.session, self.rows, HandoffBurstLead,
                 {"burst_id": burst.id, "lead_id": lead_id, "team_id": self.team_id})
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



def show_bursts(session: Session, team_id: str, burst_ids: set[int], config: Config,
                now: datetime) -> None:
    for burst_id in sorted(burst_ids):
        if (burst := bursts.get_burst(session, team_id, burst_id)) is not None:
            show_burst(session, team_id, burst, config, now)


def show_burst(session: Session, team_id: str, burst: HandoffBurst, config: Config,
               now: datetime) -> None:
    """Post a burst's summary, gathering lines for a few seconds first; once it is out,
    edit it in place (one queued edit at a time, so an import is not a flood of edits)."""
    message = cards.burst_summary(summary_page(session, burst, 1, config))
    if burst.message_id is not None:
        outbox.revise(session, burst.message_id, burst.channel, message, now=now)
        return
    posted = outbox.post(session, team_id, burst.channel, message, now=now,
                         ref=f"burst:{burst.channel}", not_before=now + SUMMARY_GATHER)
    session.flush()
    burst.message_id = posted.id


class _Card:
    """A new lead's card: built only when it is posted rather than listed in a burst, and
    then once for both the channel and the DM."""

    def __init__(self, view: Callable[[], cards.CardView]):
        self._view = view

    @cached_property
    def blocks(self) -> dict:
        return cards.handoff_card(self._view())


def summary_page(session: Session, burst: HandoffBurst, page: int,
                 config: Config) -> cards.SummaryPage:
    """A page of a burst's summary, read as the leads are now (a page past the end: the last)."""
    page = min(max(page, 1), cards.page_count(burst.leads))
    listed = bursts.list_burst_leads(session, burst.id, offset=(page - 1) * cards.SUMMARY_MAX,
                                     limit=cards.SUMMARY_MAX)
    lines = [cards.summary_line(cards.SummaryLine(
        lead_id=r.id, external_id=r.external_id, name=r.name, company=r.company, score=r.score,
        hot=(r.score or 0) >= config.routing.hot_score, source=r.source, owner=r.owner,
        status=r.status)) for r in listed]
    return cards.SummaryPage(burst.id, burst.leads, page, lines,
                             for_owner=burst.channel != config.channels.handoff)


def burst_page(session: Session, team_id: str, token: str, config: Config) -> dict:
    """The summary page a Previous / Next button asks for (`<burst id>|<page>`)."""
    try:
        burst_id, page = (int(part) for part in token.split("|"))
    except ValueError:
        raise ClickRefused("That button is broken; list the leads with `/align leads open`.") \
            from None
    burst = bursts.get_burst(session, team_id, burst_id)
    if burst is None:
        raise ClickRefused("That summary no longer exists; list the leads with `/align leads open`.")
    return cards.burst_summary(summary_page(session, burst, page, config))


def hand_off(session: Session, team_id: str, lead: Lead, config: Config, now: datetime,
             owner_by_email: Callable[[str], Person | None] | None = None) -> None:
    """Hand off one new lead (see Handoffs for many)."""
    handoffs = Handoffs(session, team_id, config, now, owner_by_email)
    handoffs.hand_off(lead)
    handoffs.finish()


def _explicit(lead: Lead, owner_by_email: Callable[[str], Person | None]) -> Decision:
    try:
        owner = owner_by_email(lead.owner_email)
    except LookupFailed as exc:  # it waits, saying so, until bot.intake.owners finds the owner
        return Decision(None, None, f"the CRM owner {lead.owner_email} {exc}")
    if owner is None or owner.deactivated:
        why = "is deactivated in Slack" if owner else "matches nobody in Slack"
        return Decision(None, None, f"the CRM owner {lead.owner_email} {why}")
    return Decision(owner, None, "owner from the CRM")


def _assign(session: Session, lead: Lead, owner: Person, config: Config, now: datetime, *,
            actor: str, data: dict, rows: Rows | None = None,
            plans: dict[tuple, sla.Plan] | None = None, fresh: bool = False) -> None:
    """Give the lead to `owner`, with a new SLA clock. `fresh`: a lead just arriving, with
    no nudges yet to replace (a queued lead has its retry and escalation)."""
    lead.owner_id = owner.id
    lifecycle.transition(session, lead, "routed", actor=actor, at=now, data=data, rows=rows)
    sla.open_clock(session, lead, config, owner, now, rerouted=not fresh, rows=rows, plans=plans)


def someone_is_back(session: Session, team_id: str, now: datetime) -> None:
    """Someone may take leads again sooner than their absence said: the leads waiting for
    an owner are tried again at the next sweep rather than when it would have ended."""
    pull_due(session, team_id, sla.ROUTE, now)


def open_card(session: Session, team_id: str, token: str, user: str, config: Config,
              now: datetime) -> dict:
    """The full card of a lead listed in a summary, for the person who asked."""
    return cards.handoff_card(view_for_token(session, team_id, token, config, now))


ACTED = ("accepted", "contacted", "rejected", "qualified", "won", "lost", "recycled")
CARD_EVENTS = (*ACTED, "unassigned", "routed")  # what a card shows, and where its DMs went


class CardBatch:
    """Card views and in-place refreshes for many leads of one team in a few queries: the
    history cards show and the cards' first posts are read once for all of them. A lead
    changed since (reassigned) is `forget`-ten and read again alone when next needed.
    The updates go into `rows` when given (the caller writes them)."""

    def __init__(self, session: Session, team_id: str, config: Config, now: datetime,
                 leads: list[Lead] = (), rows: Rows | None = None):
        self.session, self.team_id, self.config, self.now = session, team_id, config, now
        self.rows = rows
        self._history: dict[int, list] = {}
        self._posts: dict[str, OutboxMessage] = {}
        self._with_posts: set[int] = set()
        self._read_history([lead.id for lead in leads])

    def view(self, lead: Lead) -> cards.CardView:
        events = self._events(lead)
        acted = next((e for e in reversed(events) if e.kind in ACTED), None)
        owner = queries.get_person_by_id(self.session, lead.owner_id)
        unassigned = None if owner else self.last(lead, "unassigned")
        data = (unassigned.data or {}) if unassigned else {}
        retry_at = datetime.fromisoformat(data["retry_at"]) if "retry_at" in data else None
        waiting = Decision(None, data.get("pool"), data["reason"], retry_at) \
            if "reason" in data else None
        return _view(lead, owner, self.config, self.now, acted=acted, waiting=waiting)

    def refresh(self, lead: Lead) -> None:
        """Update every card of this lead in place (channel and DMs), through the outbox."""
        card = cards.handoff_card(self.view(lead))
        if lead.id not in self._with_posts:
            self._read_posts(self._history.keys() - self._with_posts)
        for ref in self._refs(lead.id):
            if (original := self._posts.get(ref)) is not None:
                outbox.update(self.session, original, card, now=self.now, rows=self.rows)

    def last(self, lead: Lead, kind: str):
        """The lead's latest event of this kind (one a card shows), if any."""
        return next((e for e in reversed(self._events(lead)) if e.kind == kind), None)

    def note(self, lead: Lead, kind: str, data: dict) -> None:
        """An event of the lead written in this transaction but not stored yet (it goes into
        `rows`): the views built from now on show it."""
        self._events(lead).append(SimpleNamespace(lead_id=lead.id, kind=kind, actor="system",
                                                  at=self.now, data=data))

    def forget(self, lead: Lead) -> None:
        self._history.pop(lead.id, None)
        self._with_posts.discard(lead.id)

    def _events(self, lead: Lead) -> list:
        if lead.id not in self._history:
            self._read_history([lead.id])
        return self._history[lead.id]

    def _read_history(self, lead_ids: list[int]) -> None:
        self._history.update({lead_id: [] for lead_id in lead_ids})
        for event in queries.list_events_of_kinds(self.session, lead_ids, CARD_EVENTS):
            self._history[event.lead_id].append(event)

    def _read_posts(self, lead_ids: set[int]) -> None:
        refs = [ref for lead_id in lead_ids for ref in self._refs(lead_id)]
        self._posts.update(list_first_posts(self.session, self.team_id, refs))
        self._with_posts |= lead_ids

    def _refs(self, lead_id: int) -> list[str]:
        owners = {(e.data or {}).get("owner") for e in self._history[lead_id] if e.kind == "routed"}
        return [f"lead:{lead_id}:channel",
                *(f"lead:{lead_id}:dm:{sid}" for sid in sorted(o for o in owners if o))]


def refresh_cards(session: Session, team_id: str, lead: Lead, config: Config, now: datetime) -> None:
    """Update every card of this lead in place (channel and DMs), through the outbox."""
    CardBatch(session, team_id, config, now, [lead]).refresh(lead)


def card_view(session: Session, lead: Lead, config: Config, now: datetime,
              fresh: Decision | None = None) -> cards.CardView:
    """What a lead's card shows. `fresh`: the routing of a lead just handed off, whose
    history holds nothing else yet, so it need not be read."""
    if fresh is None:
        return CardBatch(session, lead.team_id, config, now).view(lead)
    return _view(lead, fresh.owner, config, now, acted=None,
                 waiting=fresh if fresh.owner is None else None)


def _view(lead: Lead, owner: Person | None, config: Config, now: datetime, *, acted,
          waiting: Decision | None) -> cards.CardView:
    """`waiting`: why nobody could take the lead, and when routing tries again."""
    return cards.CardView(
        lead_id=lead.id, external_id=lead.external_id, name=lead.name, company=lead.company,
        title=lead.title, score=lead.score, hot=(lead.score or 0) >= config.routing.hot_score,
        source=lead.source, segment=lead.segment, region=lead.region, why=lead.why,
        crm_url=lead.crm_url, owner=owner.slack_id if owner else None, status=lead.status,
        sla_policy=lead.sla_policy, sla_due_at=lead.sla_due_at, sla_state=sla.state(lead, now),
        acted_by=acted.actor if acted else None, acted_at=acted.at if acted else None,
        rejection_reason=lead.rejection_reason, rejection_note=lead.rejection_note,
        unassigned_reason=waiting.reason if waiting else None,
        retry_at=waiting.retry_at if waiting else None,
    )


# ------------------------------------------------------------------ clicks


def accept(session: Session, team_id: str, token: str, user: str, config: Config,
           now: datetime) -> ClickResult:
    lead = _clicked(session, team_id, token, user, config, "accepted", now)
    _decide(session, lead, "accepted", user, now)
    refresh_cards(session, team_id, lead, config, now)
    return ClickResult(True, f"You accepted {_name(lead)}. Log the first touch when you reach out.")


def first_touch(session: Session, team_id: str, token: str, user: str, config: Config,
                now: datetime) -> ClickResult:
    lead = _clicked(session, team_id, token, user, config, "contacted", now)
    _decide(session, lead, "contacted", user, now)
    sla.close_clock(session, lead, config, queries.get_person_by_id(session, lead.owner_id), now)
    refresh_cards(session, team_id, lead, config, now)
    met = {True: " within the SLA", False: " after the SLA was due"}.get(lead.sla_met, "")
    return ClickResult(True, f"First touch on {_name(lead)} logged{met}.")


def reject(session: Session, team_id: str, token: str, user: str, config: Config, now: datetime,
           *, reason: str, note: str | None) -> ClickResult:
    lead = _clicked(session, team_id, token, user, config, "rejected", now)
    lead.rejection_reason, lead.rejection_note = reason, (note or "").strip() or None
    _decide(session, lead, "rejected", user, now, data={"reason": reason, "note": lead.rejection_note})
    sla.close_clock(session, lead, config, queries.get_person_by_id(session, lead.owner_id), now)
    refresh_cards(session, team_id, lead, config, now)
    _tell_marketing(session, team_id, lead, config, now)
    return ClickResult(True, f"You rejected {_name(lead)}; marketing sees your reason.")


def take(session: Session, team_id: str, token: str, user: str, config: Config,
         now: datetime) -> ClickResult:
    """Take an unassigned lead: reassign it to yourself."""
    return reassign(session, team_id, token, user, config, now, to=user)


def reassign(session: Session, team_id: str, token: str, user: str, config: Config,
             now: datetime, *, to: str) -> ClickResult:
    """Give the lead to `to`; its SLA clock restarts for the new owner."""
    lead = _lead_of(session, team_id, token)
    new_owner = get_person(session, team_id, to)
    if new_owner is None or new_owner.deactivated:
        raise ClickRefused(f"<@{to}> is not someone alignbot can route leads to. "
                           "Add them under [[people]] in the config.")
    if lead.owner_id == new_owner.id:
        raise ClickRefused(f"{_name(lead)} is already with <@{to}>.")
    _check(session, lead, token, user, config, "routed",
           allow_self=lead.owner_id is None and to == user)
    old_owner = lead.owner_id
    reassign_to(session, lead, new_owner, config, now, actor=user,
                reason="taken" if to == user else "reassigned")
    home.mark_stale(session, [old_owner, new_owner.id], now)
    who = "yours" if to == user else f"with <@{to}>"
    return ClickResult(True, f"{_name(lead)} is now {who}.")


def reassign_to(session: Session, lead: Lead, new_owner: Person, config: Config, now: datetime,
                *, actor: str, reason: str, batch: CardBatch | None = None,
                rows: Rows | None = None) -> None:
    """Move the lead to a new owner (a click, or the SLA's automatic reassignment): its
    cards are updated, and the new owner gets one of their own. Many leads at once (the
    SLA sweep) share a card `batch` and write their new `rows` together. The caller marks
    the old and the new owner's Homes (the sweep, once for its whole batch)."""
    _claim(session, lead, "routed", now)
    _assign(session, lead, new_owner, config, now, actor=actor,
            data={"reason": reason, "owner": new_owner.slack_id}, rows=rows)
    batch = batch or CardBatch(session, lead.team_id, config, now, [lead])
    batch.refresh(lead)
    if config.handoff.dm_owner:
        outbox.post(session, lead.team_id, new_owner.slack_id,
                    cards.handoff_card(batch.view(lead)), now=now,
                    ref=f"lead:{lead.id}:dm:{new_owner.slack_id}", rows=rows)


def view_for_token(session: Session, team_id: str, token: str, config: Config,
                   now: datetime) -> cards.CardView:
    return card_view(session, _lead_of(session, team_id, token), config, now)


def reject_form(session: Session, team_id: str, token: str, user: str, config: Config,
                now: datetime) -> cards.CardView:
    """What the reject modal shows, once we know this person may reject this lead now."""
    return card_view(session, _clicked(session, team_id, token, user, config, "rejected", now),
                     config, now)


def _clicked(session: Session, team_id: str, token: str, user: str, config: Config, to: str,
             now: datetime) -> Lead:
    lead = _lead_of(session, team_id, token)
    _check(session, lead, token, user, config, to)
    return lead


def _decide(session: Session, lead: Lead, to: str, user: str, now: datetime,
            data: dict | None = None) -> None:
    _claim(session, lead, to, now, user)
    lifecycle.transition(session, lead, to, actor=user, at=now, data=data)
    home.mark_stale(session, [lead.owner_id], now)


def _claim(session: Session, lead: Lead, to: str, now: datetime, user: str | None = None) -> None:
    """Compare-and-set on (status, owner) first: of simultaneous clicks exactly one goes on.
    The loaded `lead` keeps its old values; the lifecycle then applies the move to it."""
    if not queries.mark_status(session, lead.id, lead.status, lead.owner_id, to, now):
        session.refresh(lead)
        raise ClickRefused(_already(session, lead, user))


def _lead_of(session: Session, team_id: str, token: str) -> Lead:
    try:
        lead_id = int(token.split("|")[0])
    except ValueError:
        raise ClickRefused("That button is broken; open the lead with `/align lead &lt;id&gt;`.") from None
    lead = queries.get_lead(session, team_id, lead_id)
    if lead is None:
        raise ClickRefused("That lead no longer exists.")
    return lead


def _check(session: Session, lead: Lead, token: str, user: str, config: Config, to: str, *,
           allow_self: bool = False) -> None:
    """Stale card, illegal move, or someone who may not act on this lead: refuse, change nothing."""
    _, status, owner = (token.split("|") + ["", ""])[:3]
    current_owner = queries.get_person_by_id(session, lead.owner_id)
    if status != lead.status or owner != (current_owner.slack_id if current_owner else "-"):
        raise ClickRefused(_already(session, lead, user))
    if not lifecycle.can(lead, to):
        raise ClickRefused(str(lifecycle.IllegalTransition(lead, to)))
    if allow_self or may_act(session, lead, current_owner, user, config):
        return
    raise ClickRefused(f"Only {_owner_text(current_owner)} or a sales manager can do that "
                       f"for {_name(lead)}.")


def may_act(session: Session, lead: Lead, owner: Person | None, user: str, config: Config) -> bool:
    rule = config.handoff.who_can_act
    if rule == "anyone" or config.is_admin(user) or (owner is not None and owner.slack_id == user):
        return True
    if owner is None:  # an unassigned lead: any sales person may take it
        me = get_person(session, lead.team_id, user)
        return me is not None and me.role in ("sales", "sales_manager")
    if rule == "owner":
        return False
    me = get_person(session, lead.team_id, user)
    return owner.manager_slack_id == user or (me is not None and me.role == "sales_manager")


def _already(session: Session, lead: Lead, user: str | None = None) -> str:
    """'Already accepted by @x at 10:42' — what a late or stale click is told ('You already
    accepted this lead' when `user` is who did it)."""
    event = queries.last_event(session, lead.id, DECISIONS + ("qualified", "won", "lost"))
    owner = queries.get_person_by_id(session, lead.owner_id)
    if lead.status == "routed" and owner is not None:
        by = f" by <@{event.actor}> {cards.when(event.at, '{time}')}" \
            if event is not None and event.actor != "system" else ""
        return (f"This card is out of date: {_name(lead)} was assigned to <@{owner.slack_id}>"
                f"{by}. Nothing was changed.")
    what = {"contacted": "touched"}.get(lead.status, lead.status)
    if event is None or event.actor == "system":
        return f"This card is out of date: {_name(lead)} is {what}. Nothing was changed."
    if event.actor == user:
        return f"You already {what} this lead {cards.when(event.at, '{time}')}."
    return (f"Already {what} by <@{event.actor}> {cards.when(event.at, '{time}')}. "
            "Nothing was changed.")


def _tell_marketing(session: Session, team_id: str, lead: Lead, config: Config, now: datetime) -> None:
    channel = config.channels.marketing
    if not channel:
        return
    key = f"rejections:{lead.source}"
    parent = get_first_post(session, team_id, key)
    if parent is None:
        parent = outbox.post(session, team_id, channel, cards.rejection_thread_parent(lead.source),
                             now=now, ref=key, dedupe_key=key)
    view = card_view(session, lead, config, now)
    outbox.post(session, team_id, channel, cards.rejection_notice(view), now=now,
                ref=f"lead:{lead.id}:rejection", thread_of=parent)


def _name(lead: Lead) -> str:
    return cards.lead_name(lead.name, lead.external_id, lead.company)


def _owner_text(owner: Person | None) -> str:
    return f"<@{owner.slack_id}>" if owner else "its owner"
