"""Routing: who gets a lead.

1. An explicit owner wins. 2. Otherwise the first matching rule picks a pool (no
match: "default"). 3. In the pool, a weighted round-robin over the people who are
eligible now: not away, not deactivated, under their daily cap, and — for hot
leads — inside their working hours. 4. Nobody eligible: the lead stays unassigned,
and the decision says when someone first may take it (its retry: see `next_chance`).

The round-robin is deficit-based: each eligible person accrues weight/total per
lead, the one owed most gets it and pays one lead back. People who are away
accrue nothing and keep what they were owed. The deficits live in the database,
so the order is fair across restarts and processes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from bot.platform.config import Config, WorkingHours, Workspace
from bot.platform.work import Work
from bot.sla.calendar import Calendar, workspace_calendar
from storage import routing as queries
from storage.models import Lead, Person, RoutingState

DEFAULT_POOL = "default"


@dataclass(frozen=True)
class Decision:
    owner: Person | None
    pool: str | None
    reason: str  # shown on the card and in the lead's history
    retry_at: datetime | None = None  # nobody now: when someone may first take it, if known


def pool_for(config: Config, lead: Lead) -> str:
    for rule in config.routing.rules:
        if ((rule.segment is None or rule.segment == lead.segment)
                and (rule.region is None or rule.region == lead.region)
                and (rule.source is None or rule.source == lead.source)
                and (rule.min_score is None or (lead.score or 0) >= rule.min_score)):
            return rule.pool
    return DEFAULT_POOL


def shares(weights: dict[str, int], eligible: Sequence[str]) -> list[tuple[str, float]]:
    """What each eligible person (in pool order) accrues per lead: their weight's share.
    Empty when nobody has any weight."""
    total = sum(weights[e] for e in eligible)
    return [(e, weights[e] / total) for e in eligible] if total > 0 else []


def pick(deficits: dict[str, float], shares: list[tuple[str, float]]) -> str | None:
    """Deficit round-robin: everyone accrues their share, the one owed most (the first of
    equals, in pool order) gets the lead and pays one back. Updates `deficits` in place.
    One pass: it runs for every lead, over pools of dozens."""
    best, most = None, -math.inf
    for person, share in shares:
        owed = deficits[person] = deficits.get(person, 0.0) + share
        if owed > most:
            best, most = person, owed
    if best is not None:
        deficits[best] -= 1
    return best


def person_calendar(config: Config, person: Person) -> Calendar:
    return _person_calendar(config.workspace, person.timezone, person.working_hours)


@lru_cache(maxsize=256)  # asked for every lead routed, by people's settings as they are now
def _person_calendar(workspace: Workspace, timezone: str | None, hours: str | None) -> Calendar:
    own = None
    if hours:  # "09:00-17:00"
        own = WorkingHours(*(datetime.strptime(t, "%H:%M").time()  # noqa: DTZ007
                             for t in hours.split("-")))
    return workspace_calendar(workspace, timezone, own)


@dataclass(frozen=True)
class _Member:
    """A pool member as plain values for one routing batch (ORM attributes cost per read)."""
    person: Person
    id: int
    slack_id: str
    weight: int
    cap: int | None
    active: bool  # not deactivated, weight above 0
    back_at: datetime | None  # the end of their absence, if they are away
    calendar: Calendar  # their working hours
    working: bool  # inside their working hours now: may take a hot lead

    @property
    def available(self) -> bool:
        return self.active and self.back_at is None


@dataclass
class _Pool:
    members: list[_Member]
    load: dict[int, int]  # leads routed today, of the members with a daily cap
    states: dict[str, RoutingState]
    deficits: dict[str, float]
    assigned: Counter[str] = field(default_factory=Counter)  # since the last save
    decisions: dict[str, Decision] = field(default_factory=dict)  # by Slack id: one per person
    eligible_now: dict[bool, _Eligible] = field(default_factory=dict)  # by hotness
    chances: dict[bool, datetime | None] = field(default_factory=dict)  # by hotness

    def eligible(self, hot: bool, exclude: set[int] | frozenset[int]) -> _Eligible:
        """Who may take a lead now: the same for every lead of a batch until someone
        reaches their cap."""
        if not exclude and hot in self.eligible_now:
            return self.eligible_now[hot]
        members = {m.slack_id: m for m in self.members
                   if m.available and (m.working or not hot) and m.id not in exclude
                   and self.has_room(m)}
        eligible = _Eligible(members, shares({sid: m.weight for sid, m in members.items()},
                                             list(members)))
        if not exclude:
            self.eligible_now[hot] = eligible
        return eligible

    def has_room(self, member: _Member) -> bool:
        """Below their daily cap, if they have one."""
        return member.cap is None or self.load.get(member.id, 0) < member.cap

    def why_nobody(self, name: str, exclude: set[int] | frozenset[int], hot_score: int) -> str:
        """Why nobody may take a lead now, for its unassigned card: the first rule that
        leaves nobody (away, daily cap; else it is hot, and nobody is in working hours)."""
        left = [m for m in self.members if m.id not in exclude and m.available]
        if not left:
            return f"everyone in pool {name} is away or out of the rotation"
        if not any(self.has_room(m) for m in left):
            return f"everyone in pool {name} has had their daily cap of leads"
        return (f"it is hot (score {hot_score} or more), which goes only to someone in their "
                f"working hours, and nobody in pool {name} is now")

    def next_chance(self, hot: bool, now: datetime, midnight: datetime) -> datetime | None:
        """When someone may first take a lead nobody may take now: as their absence ends,
        at `midnight` when daily caps start again, and for a hot lead when their working
        hours start. None when nobody will unless something changes (deactivated, weight 0,
        a cap of 0, nobody in the pool)."""
        if hot not in self.chances:
            self.chances[hot] = min((at for m in self.members
                                     if (at := self._chance(m, hot, now, midnight))), default=None)
        return self.chances[hot]

    def _chance(self, m: _Member, hot: bool, now: datetime, midnight: datetime) -> datetime | None:
        if not m.active or m.cap == 0:
            return None
        at = m.back_at or now
        if at < midnight and not self.has_room(m):
            at = midnight
        return m.calendar.next_working_start(at) if hot else at


@dataclass(frozen=True)
class _Eligible:
    members: dict[str, _Member]  # by Slack id, in pool order
    shares: list[tuple[str, float]]  # see `shares`


class Router:
    """Routes many leads in one transaction: each pool's members, today's load and its
    (locked) round-robin state are read once, then kept up to date in memory and written
    back by `save()`, before the transaction ends."""

    def __init__(self, work: Work):
        self.work = work
        self.session, self.team_id, self.config, self.now = \
            work.session, work.team_id, work.config, work.now
        config, now = self.config, self.now
        self._pools: dict[str, _Pool] = {}
        today = now.astimezone(config.workspace.tz).date()
        self.today, self.midnight = (datetime.combine(day, datetime.min.time(), config.workspace.tz)
                                     for day in (today, today + timedelta(days=1)))

    def route(self, lead: Lead, exclude: set[int] | frozenset[int] = frozenset()) -> Decision:
        name = pool_for(self.config, lead)
        pool = self._pool(name)
        if exclude and all(m.id in exclude for m in pool.members):
            return Decision(None, name, f"pool {name} has nobody in it")
        hot = (lead.score or 0) >= self.config.routing.hot_score
        eligible = pool.eligible(hot, exclude)
        if not eligible.members:
            return Decision(None, name, pool.why_nobody(name, exclude,
                                                        self.config.routing.hot_score),
                            None if exclude else pool.next_chance(hot, self.now, self.midnight))
        chosen = pick(pool.deficits, eligible.shares)
        pool.assigned[chosen] += 1
        owner = eligible.members[chosen]
        pool.load[owner.id] = pool.load.get(owner.id, 0) + 1
        if not pool.has_room(owner):
            pool.eligible_now.clear()  # they are out until tomorrow
            pool.chances.clear()
        if (decision := pool.decisions.get(chosen)) is None:
            decision = pool.decisions[chosen] = Decision(owner.person, name,
                                                         f"round-robin in pool {name}")
        return decision

    def save(self) -> None:
        """Write each pool's deficits and counts to its state rows (new rows for newcomers)."""
        changes = []
        for name, pool in self._pools.items():
            for slack_id, credit in pool.deficits.items():
                state, count = pool.states.get(slack_id), pool.assigned.pop(slack_id, 0)
                if state is None:
                    state = pool.states[slack_id] = RoutingState(
                        team_id=self.team_id, pool=name, slack_id=slack_id, credit=credit,
                        assigned=count)
                    self.session.add(state)
                elif state.credit != credit or count:
                    changes.append((state, credit, state.assigned + count))
        queries.update_routing_states(self.session, changes)

    def _pool(self, name: str) -> _Pool:
        if name not in self._pools:
            members = [self._member(p) for p in
                       pool_members(self.work, name)]
            capped = [m.id for m in members if m.cap is not None]  # the only loads that matter
            load = queries.count_routed_since(self.session, self.team_id, capped, self.today) \
                if capped else {}
            states = queries.get_routing_states(self.session, self.team_id, name)
            self._pools[name] = _Pool(members, load, states,
                                      {sid: s.credit for sid, s in states.items()})
        return self._pools[name]

    def _member(self, p: Person) -> _Member:
        calendar = person_calendar(self.config, p)
        away = p.away_until is not None and p.away_until > self.now
        return _Member(p, p.id, p.slack_id, p.weight, p.daily_cap,
                       active=not p.deactivated and p.weight > 0,
                       back_at=p.away_until if away else None, calendar=calendar,
                       working=calendar.is_working_time(self.now))


def pool_members(work: Work, pool: str) -> list[Person]:
    """The pool's people in configured order; without any pools, every sales rep."""
    ids = work.config.routing.pools.get(pool)
    if ids is None and not work.config.routing.pools:
        return queries.list_people_by_role(work.session, work.team_id, "sales")
    found = queries.list_people_by_slack_id(work.session, work.team_id, list(ids or ()))
    return [found[i] for i in ids or () if i in found]

