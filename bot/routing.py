"""Routing: who gets a lead.

1. An explicit owner wins. 2. Otherwise the first matching rule picks a pool (no
match: "default"). 3. In the pool, a weighted round-robin over the people who are
eligible now: not away, not deactivated, under their daily cap, and — for hot
leads — inside their working hours. 4. Nobody eligible: the lead stays unassigned.

The round-robin is deficit-based: each eligible person accrues weight/total per
lead, the one owed most gets it and pays one lead back. People who are away
accrue nothing and keep what they were owed. The deficits live in the database,
so the order is fair across restarts and processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy.orm import Session

from bot.calendar import Calendar
from bot.config import Config, WorkingHours
from storage import routing as queries
from storage.models import Lead, Person, RoutingState

DEFAULT_POOL = "default"


@dataclass(frozen=True)
class Decision:
    owner: Person | None
    pool: str | None
    reason: str  # shown on the card and in the lead's history


def pool_for(config: Config, lead: Lead) -> str:
    for rule in config.routing.rules:
        if ((rule.segment is None or rule.segment == lead.segment)
                and (rule.region is None or rule.region == lead.region)
                and (rule.source is None or rule.source == lead.source)
                and (rule.min_score is None or (lead.score or 0) >= rule.min_score)):
            return rule.pool
    return DEFAULT_POOL


def pick(deficits: dict[str, float], weights: dict[str, int], eligible: Sequence[str]) -> str | None:
    """Deficit round-robin over `eligible` (in pool order); updates `deficits` in place."""
    total = sum(weights[e] for e in eligible)
    if total <= 0:
        return None
    for e in eligible:
        deficits[e] = deficits.get(e, 0.0) + weights[e] / total
    best = max(eligible, key=lambda e: (deficits[e], -eligible.index(e)))
    deficits[best] -= 1
    return best


def why_not(person: Person, lead: Lead, config: Config, now: datetime, routed_today: int) -> str | None:
    """Why this person cannot take this lead now, or None when they can."""
    if person.deactivated:
        return "deactivated in Slack"
    if person.away_until is not None and person.away_until > now:
        return "away"
    if person.daily_cap is not None and routed_today >= person.daily_cap:
        return "at daily cap"
    if (lead.score or 0) >= config.routing.hot_score and not person_calendar(config, person) \
            .is_working_time(now):
        return "outside working hours (hot lead)"
    if person.weight <= 0:
        return "weight 0"
    return None


def person_calendar(config: Config, person: Person) -> Calendar:
    return Calendar.of(config, person.timezone, _hours(person.working_hours))


@lru_cache(maxsize=64)
def _hours(text: str | None) -> WorkingHours | None:
    if not text:
        return None
    start, end = text.split("-")
    return WorkingHours(*(datetime.strptime(t, "%H:%M").time() for t in (start, end)))  # noqa: DTZ007


class Router:
    """Routes many leads in one transaction: each pool's members, today's load and its
    (locked) round-robin state are read once, then kept up to date in memory."""

    def __init__(self, session: Session, team_id: str, config: Config, now: datetime):
        self.session, self.team_id, self.config, self.now = session, team_id, config, now
        self._pools: dict[str, tuple[list[Person], dict[int, int], dict[str, RoutingState]]] = {}

    def route(self, lead: Lead, exclude: set[int] | frozenset[int] = frozenset()) -> Decision:
        pool = pool_for(self.config, lead)
        members, load, states = self._pool(pool)
        members = [p for p in members if p.id not in exclude]
        if not members:
            return Decision(None, pool, f"pool {pool} has nobody in it")
        eligible = [p for p in members
                    if why_not(p, lead, self.config, self.now, load.get(p.id, 0)) is None]
        if not eligible:
            return Decision(None, pool, f"nobody in pool {pool} can take it now")
        deficits = {sid: s.credit for sid, s in states.items()}
        chosen = pick(deficits, {p.slack_id: p.weight for p in members},
                      [p.slack_id for p in eligible])
        for p in eligible:
            state = states.get(p.slack_id)
            if state is None:
                state = states[p.slack_id] = RoutingState(
                    team_id=self.team_id, pool=pool, slack_id=p.slack_id, credit=0.0, assigned=0)
                self.session.add(state)
            state.credit = deficits[p.slack_id]
            state.assigned += p.slack_id == chosen
        owner = next(p for p in eligible if p.slack_id == chosen)
        load[owner.id] = load.get(owner.id, 0) + 1
        return Decision(owner, pool, f"round-robin in pool {pool}")

    def _pool(self, pool: str):
        if pool not in self._pools:
            members = pool_members(self.session, self.team_id, self.config, pool)
            tz = self.config.workspace.tz
            today = datetime.combine(self.now.astimezone(tz).date(), datetime.min.time(), tz)
            load = queries.count_routed_since(self.session, self.team_id,
                                              [p.id for p in members], today)
            states = queries.get_routing_states(self.session, self.team_id, pool)
            self._pools[pool] = (members, load, states)
        return self._pools[pool]


def route(session: Session, team_id: str, lead: Lead, config: Config, now: datetime) -> Decision:
    return Router(session, team_id, config, now).route(lead)


def pool_members(session: Session, team_id: str, config: Config, pool: str) -> list[Person]:
    """The pool's people in configured order; without any pools, every sales rep."""
    ids = config.routing.pools.get(pool)
    if ids is None and not config.routing.pools:
        return queries.list_people_by_role(session, team_id, "sales")
    found = queries.list_people_by_slack_id(session, team_id, list(ids or ()))
    return [found[i] for i in ids or () if i in found]

