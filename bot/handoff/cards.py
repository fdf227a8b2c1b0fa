"""A lead's card: what it shows (its view) and its in-place refreshes, in the channel and
in the owners' DMs, through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from bot.blocks import handoff as blocks
from bot.handoff.lifecycle import NOT_PEOPLE
from bot.handoff.routing import Decision
from bot.platform import outbox
from bot.platform.config import Config
from bot.platform.work import Work
from bot.sla import policies as sla
from storage import leads as queries
from storage.models import Lead, OutboxMessage, Person
from storage.outbox import list_first_posts

ACTED = ("accepted", "contacted", "rejected", "qualified", "won", "lost", "recycled")
CARD_EVENTS = (*ACTED, "unassigned", "routed")  # what a card shows, and where its DMs went


class CardBatch:
    """Card views and in-place refreshes for many leads of one team in a few queries: the
    history cards show and the cards' first posts are read once for all of them. A lead
    changed since (reassigned) is `forget`-ten and read again alone when next needed.
    In a batch, the updates go into it (the caller writes them)."""

    def __init__(self, work: Work, leads: list[Lead] = ()):
        self.session, self.team_id, self.config, self.now = \
            work.session, work.team_id, work.config, work.now
        self._history: dict[int, list] = {}
        self._posts: dict[str, OutboxMessage] = {}
        self._with_posts: set[int] = set()
        # the owners read, kept: the session's identity map holds a row only while
        # something else does, so each lead's `session.get` of its owner was a SELECT
        self._people: dict[int, Person | None] = {}
        self._read_history([lead.id for lead in leads])

    def read_owners(self, leads: list[Lead]) -> None:
        """Read these leads' owners at once (one query), for their views."""
        ids = {lead.owner_id for lead in leads if lead.owner_id is not None} - self._people.keys()
        if ids:
            self._people.update({p.id: p for p in queries.list_people_by_id(self.session, ids)})

    def view(self, lead: Lead) -> blocks.CardView:
        events = self._events(lead)
        acted = next((e for e in reversed(events) if e.kind in ACTED), None)
        owner = self._owner(lead)
        unassigned = None if owner else self.last(lead, "unassigned")
        data = (unassigned.data or {}) if unassigned else {}
        retry_at = datetime.fromisoformat(data["retry_at"]) if "retry_at" in data else None
        waiting = Decision(None, data.get("pool"), data["reason"], retry_at) \
            if "reason" in data else None
        return _view(lead, owner, self.config, self.now, acted=acted, waiting=waiting)

    def listed(self, lead: Lead) -> blocks.CardView:
        """What a message about the lead (a nudge, an escalation) shows: its own fields and
        owner, not what only its card shows from its history (who acted, why it waits),
        which is then not read."""
        return _view(lead, self._owner(lead), self.config, self.now, acted=None, waiting=None)

    def refresh(self, lead: Lead) -> dict | None:
        """Update every card of this lead in place (channel and DMs), through the outbox;
        the card, if one was posted, for the caller to reuse."""
        self._events(lead)  # its history says where its cards are
        if lead.id not in self._with_posts:
            self._read_posts(self._history.keys() - self._with_posts)
        posts = [p for ref in self._refs(lead.id) if (p := self._posts.get(ref)) is not None]
        if not posts:  # built only for a card that was posted (a lead of a burst has none)
            return None
        card = blocks.handoff_card(self.view(lead))
        for original in posts:
            outbox.update(self.session, original, card, now=self.now)
        return card

    def last(self, lead: Lead, kind: str):
        """The lead's latest event of this kind (one a card shows), if any."""
        return next((e for e in reversed(self._events(lead)) if e.kind == kind), None)

    def note(self, lead: Lead, kind: str, data: dict | None, *, actor: str = "system",
             at: datetime | None = None) -> None:
        """An event of the lead written in this transaction but not stored yet (it goes into
        the batch): the views built from now on show it."""
        self._events(lead).append(SimpleNamespace(lead_id=lead.id, kind=kind, actor=actor,
                                                  at=at or self.now, data=data))

    def _owner(self, lead: Lead) -> Person | None:
        if lead.owner_id is None:
            return None
        if lead.owner_id not in self._people:
            self._people[lead.owner_id] = queries.get_person_by_id(self.session, lead.owner_id)
        return self._people[lead.owner_id]

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


def refresh_cards(work: Work, lead: Lead) -> None:
    """Update every card of this lead in place (channel and DMs), through the outbox."""
    CardBatch(work, [lead]).refresh(lead)


@dataclass(frozen=True)
class Moved:
    """A stage a lead was moved to in this transaction by someone other than a click (a CRM
    update); its event is in the session's batch, not stored yet."""
    lead: Lead
    stage: str
    actor: str
    at: datetime
    data: dict | None = None


def refresh_moved(work: Work, moves: list[Moved]) -> None:
    """Update the posted cards of the leads `moves` moved, in place, as a click's move does:
    for a whole batch (a webhook's 1,000 records, an import's) in three queries (the cards'
    history, their first posts, the leads' owners) and one edit per card, queued with the
    batch's rows. A lead with no card posted (imported in its state, a line of a burst's
    summary) gets no edit, as a click on it edits none."""
    if not moves:
        return
    leads = list({id(m.lead): m.lead for m in moves}.values())
    batch = CardBatch(work, leads)
    batch.read_owners(leads)
    for m in moves:
        batch.note(m.lead, m.stage, m.data, actor=m.actor, at=m.at)
    for lead in leads:
        batch.refresh(lead)


def card_view(work: Work, lead: Lead, fresh: Decision | None = None) -> blocks.CardView:
    """What a lead's card shows. `fresh`: the routing of a lead just handed off, whose
    history holds nothing else yet, so it need not be read."""
    if fresh is None:
        return CardBatch(work.for_team(lead.team_id)).view(lead)
    return _view(lead, fresh.owner, work.config, work.now, acted=None,
                 waiting=fresh if fresh.owner is None else None)


def _view(lead: Lead, owner: Person | None, config: Config, now: datetime, *, acted,
          waiting: Decision | None) -> blocks.CardView:
    """`waiting`: why nobody could take the lead, and when routing tries again."""
    return blocks.CardView(
        lead_id=lead.id, external_id=lead.external_id, name=lead.name, company=lead.company,
        title=lead.title, score=lead.score, hot=(lead.score or 0) >= config.routing.hot_score,
        source=lead.source, segment=lead.segment, region=lead.region, why=lead.why,
        crm_url=lead.crm_url, owner=owner.slack_id if owner else None, status=lead.status,
        sla_policy=lead.sla_policy, sla_due_at=lead.sla_due_at, sla_state=sla.state(lead, now),
        acted_by=acted.actor if acted and acted.actor not in NOT_PEOPLE else None,
        acted_at=acted.at if acted else None,
        rejection_reason=lead.rejection_reason, rejection_note=lead.rejection_note,
        unassigned_reason=waiting.reason if waiting else None,
        retry_at=waiting.retry_at if waiting else None,
    )


def lead_name(lead: Lead) -> str:
    return blocks.lead_name(lead.name, lead.external_id, lead.company)
