"""The response SLA of a lead: which policy, when it is due, and how it ended.

The clock starts at routing and stops at the first touch or a rejection (a
decision is a response); the lead is met when that happened by the due time.
A reassignment starts the new owner's clock (their nudges, their due time), but the
handoff's response time still runs from its first routing, and one reassigned after
its due time passed unanswered stays missed.
A lead nobody could take has a clock of its own (`wait_clock`), so it is never left
unseen: it is escalated when it has waited `[routing] unassigned_within`; routing it
replaces that clock with its policy's, started then.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from bot.handoff.routing import person_calendar
from bot.platform.config import UNASSIGNED, Config, SlaPolicy
from bot.platform.work import Work
from bot.sla.calendar import Calendar
from storage.models import Lead, Person
from storage.nudges import add_nudge, cancel_pending

DUE_SOON_SHARE = 0.5  # the last half of the window (wall time) shows "due soon"
OPEN = ("routed", "accepted")  # still waiting for the first touch
WAITING = "new"  # the status of a lead waiting for an owner
ROUTE = "route"  # the nudge that tries a waiting lead's routing again
ESCALATE_UNASSIGNED = "unassigned"  # the nudge that escalates a lead still waiting


def policy_for(config: Config, lead: Lead) -> SlaPolicy | None:
    """The first policy whose matchers all fit the lead (top to bottom, as in the config)."""
    for p in config.sla:
        if ((p.min_score is None or (lead.score or 0) >= p.min_score)
                and (p.source is None or p.source == lead.source)
                and (p.segment is None or p.segment == lead.segment)
                and (p.region is None or p.region == lead.region)):
            return p
    return None


def calendar_for(config: Config, owner: Person | None) -> Calendar:
    return person_calendar(config, owner) if owner is not None else Calendar.of(config)


def start(lead: Lead, config: Config, owner: Person | None, at: datetime) -> None:
    policy = policy_for(config, lead)
    if policy is None:
        due = None
    elif policy.clock == "wall":
        due = at + policy.respond_within
    else:
        minutes = policy.respond_within.total_seconds() / 60
        due = calendar_for(config, owner).add_business_minutes(at, minutes)
    _clock(lead, policy, due)


def _clock(lead: Lead, policy: SlaPolicy | None, due: datetime | None) -> None:
    """The lead's clock under `policy`, due then, with no response recorded yet."""
    lead.sla_met = lead.response_minutes = lead.business_minutes = None
    lead.sla_policy = policy.name if policy else None
    lead.sla_clock = policy.clock if policy else None
    lead.sla_due_at = due


def stop(lead: Lead, config: Config, owner: Person | None, at: datetime) -> None:
    """Record the response: wall-clock and business minutes since the handoff began (its
    first routing), and whether met (by the owner's due time, unless missed before)."""
    if lead.routed_at is None or lead.response_minutes is not None:
        return
    lead.response_minutes = round((at - lead.routed_at).total_seconds() / 60, 2)
    lead.business_minutes = round(calendar_for(config, owner)
                                  .business_minutes_between(lead.routed_at, at), 2)
    if lead.sla_due_at is not None and lead.sla_met is None:
        lead.sla_met = at <= lead.sla_due_at


def leave(lead: Lead, at: datetime) -> None:
    """Taken back unanswered (recycled, now): a breach if its due time had passed by then,
    as it would have counted while open; else out of SLA compliance, never judged."""
    if lead.routed_at is None or lead.response_minutes is not None or lead.sla_met is not None:
        return
    if lead.sla_due_at is not None and lead.sla_due_at <= at:
        lead.sla_met = False
    else:
        lead.sla_due_at = None


def _missed(lead: Lead, at: datetime) -> bool:
    """Whether a lead routed at `at` is reassigned (its handoff began before) after its SLA
    was missed: its due time passed with no response, or it was missed at an earlier one."""
    if lead.routed_at is None or lead.routed_at >= at or lead.response_minutes is not None:
        return False
    return lead.sla_met is False or (lead.sla_due_at is not None and lead.sla_due_at <= at)


Plan = tuple[datetime | None, tuple[str, datetime] | None]  # the due time, the first nudge


def open_clock(work: Work, lead: Lead, owner: Person | None, *, rerouted: bool,
               plans: dict[tuple, Plan] | None = None) -> None:
    """At routing (now): the due time, and the first nudge of the chain that follows it
    (replacing the old owner's when the lead is routed again). `plans` keeps them for a
    batch by policy, the owner's hours and time: the same for every lead those are."""
    session, config, at = work.session, work.config, work.now
    if rerouted:
        cancel_pending(session, lead.id)
    hours = (owner.timezone, owner.working_hours) if owner else None  # the calendar's own
    key = (policy := policy_for(config, lead), hours, at)
    missed = _missed(lead, at)
    if plans is None or (plan := plans.get(key)) is None:
        start(lead, config, owner, at)
        upcoming = stages(lead, config, owner)
        plan = (lead.sla_due_at, upcoming[0] if upcoming else None)
        if plans is not None:
            plans[key] = plan
    else:
        _clock(lead, policy, plan[0])
    if missed:
        lead.sla_met = False
    if (first := plan[1]) is not None:
        add_nudge(session, lead, *first)


def stages(lead: Lead, config: Config, owner: Person | None) -> list[tuple[str, datetime]]:
    """The lead's nudges in due order: reminder, breach, escalation, reassignment, and the
    moments its card changes state ("card": due soon, and due when no breach notice is sent
    — the breach notice refreshes the card itself)."""
    policy = policy_for(config, lead)
    if policy is None or lead.sla_due_at is None or lead.assigned_at is None:
        return []
    business_remind = policy.remind_at > 0 and policy.clock != "wall"
    return list(_stages(policy, calendar_for(config, owner) if business_remind else None,
                        lead.assigned_at, lead.sla_due_at))


@lru_cache(maxsize=1024)  # a batch routed at one instant has a handful of distinct plans
def _stages(policy: SlaPolicy, calendar: Calendar | None, assigned_at: datetime,
            due: datetime) -> tuple[tuple[str, datetime], ...]:
    found = [("card", due - (due - assigned_at) * DUE_SOON_SHARE)]
    if policy.remind_at > 0:
        share = policy.respond_within * policy.remind_at
        found.append(("remind", assigned_at + share if calendar is None else
                      calendar.add_business_minutes(assigned_at, share.total_seconds() / 60)))
    found.append(("breach" if policy.breach_notice else "card", due))
    if policy.escalate_after:
        found.append(("escalate", due + policy.escalate_after))
    if policy.reassign_after:
        found.append(("reassign", due + policy.reassign_after))
    return tuple(sorted(found, key=lambda stage: stage[1]))  # stable: ties keep the order above


def schedule(work: Work, lead: Lead, owner: Person | None,
             after: tuple[str, datetime] | None = None) -> None:
    """Write the lead's next nudge: its first stage, or the one after `after` (a stage that
    fired). A lead has one pending stage at a time, and each writes the next as it fires:
    a row per stage up front made the nudges most of what routing a lead writes."""
    upcoming = stages(lead, work.config, owner)
    if after is not None:
        upcoming = upcoming[_position(upcoming, after) + 1:]
    if upcoming:
        stage, at = upcoming[0]
        add_nudge(work.session, lead, stage, at)


def _position(upcoming: list[tuple[str, datetime]], fired: tuple[str, datetime]) -> int:
    """Where the fired stage is; when the policy changed since, the last stage due by then."""
    if fired in upcoming:
        return upcoming.index(fired)
    return sum(at <= fired[1] for _, at in upcoming) - 1


def close_clock(work: Work, lead: Lead, owner: Person | None) -> None:
    """At the first touch or a rejection (now): record the response; the nudges are off."""
    stop(lead, work.config, owner, work.now)
    cancel_pending(work.session, lead.id)


def recycle_clock(work: Work, lead: Lead) -> None:
    """Taken back by marketing (now): judged as `leave` says; the nudges are off."""
    leave(lead, work.now)
    cancel_pending(work.session, lead.id)


def wait_clock(work: Work, lead: Lead) -> None:
    """A lead nobody could take: it is due an owner `unassigned_within` after now (in
    business time on the workspace calendar, unless that clock is "wall"), and escalated then."""
    config, at = work.config, work.now
    within, clock = config.routing.unassigned_within, config.routing.unassigned_clock
    due = at + within if clock == "wall" else \
        Calendar.of(config).add_business_minutes(at, within.total_seconds() / 60)
    lead.sla_met = lead.response_minutes = lead.business_minutes = None
    lead.sla_policy, lead.sla_clock, lead.sla_due_at = UNASSIGNED, clock, due
    add_nudge(work.session, lead, ESCALATE_UNASSIGNED, due)


def state(lead: Lead, now: datetime) -> str | None:
    """on_track | due_soon | breached | met, or None when the lead has no SLA. A lead
    waiting for an owner is on track until it is due one, then breached."""
    if lead.sla_due_at is None:
        return None
    if lead.assigned_at is None:
        if lead.status != WAITING or lead.sla_policy != UNASSIGNED:
            return None
        return "breached" if now >= lead.sla_due_at else "on_track"
    if lead.sla_met is not None:
        return "met" if lead.sla_met else "breached"
    if now >= lead.sla_due_at:  # the breach notice goes out at the due time itself
        return "breached"
    window = (lead.sla_due_at - lead.assigned_at).total_seconds()
    left = (lead.sla_due_at - now).total_seconds()
    return "due_soon" if left <= window * DUE_SOON_SHARE else "on_track"
