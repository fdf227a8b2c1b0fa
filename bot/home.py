"""The App Home: each person's own page, built from sections, and kept up to date.

A Home is the blocks of the features' sections in order (bot/platform/descriptor.py), each
a function of (context, person): a feature's section is one more entry in its FEATURE. Opening the tab publishes the Home at once: it answers the
person's own action. From then on, a change to what it shows (a lead's owner, status or
SLA state) marks it stale in the transaction of the change, due DEBOUNCE after the first
change; the refresh job publishes it through the outbox when that time comes. However
many changes a window holds, they are one publish, and one person's Home is published
at most once per window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from bot.blocks import home as views
from bot.blocks.kit import Block
from bot.platform import outbox
from bot.platform.descriptor import Feature, HomeSection, Section
from bot.platform.jobs import Job, every
from bot.platform.scheduler import first_due
from bot.platform.work import Work
from storage import home as queries
from storage.db import read_only
from storage.leads import list_people_by_id
from storage.models import Person
from storage.people import get_person

if TYPE_CHECKING:
    from bot.platform.services import Services

DEBOUNCE = timedelta(seconds=30)
BATCH = 200  # Homes refreshed per transaction


@dataclass(frozen=True)
class Context(Work):
    """What sections read: the work of one workspace as of `now`, and the sections. The
    parts that are the same for everyone are computed once, however many Homes a refresh
    builds (kept in `shared`, which outlives the batch's transaction)."""

    sections: tuple[Section, ...]  # the features' Home sections, in order
    shared: dict[str, Any] = field(default_factory=dict)

    def tz(self, person: Person | None) -> tzinfo:
        """The person's own timezone, else the workspace's."""
        return self.config.workspace.zone_of(person.timezone if person else None)


def footer(ctx: Context, person: Person | None) -> list[Block]:
    return views.footer(ctx.now, ctx.tz(person))


def build(ctx: Context, person: Person | None) -> dict[str, Any]:
    """The Home view of a person (None: someone alignbot has no row for)."""
    return views.home_view([section(ctx, person) for section in ctx.sections])


def open_home(services: Services, team_id: str, user_id: str) -> dict[str, Any]:
    """The Home of someone who just opened the tab; from now on it is kept up to date.
    The tab is recorded first, in a short transaction of its own: a change committed while
    the Home is being read then marks it, and no write lock waits for the reading."""
    with services.sessions.begin() as session:
        person = get_person(session, team_id, user_id)
        if person is not None:  # nothing alignbot knows changes for anyone else
            queries.add_home_tab(session, team_id, person.id)
    with read_only(services.sessions) as session:  # never waits for a writer
        return build(Context(session, team_id, services.config, services.clock.now(),
                             services.features.home), person)


def mark_stale(work: Work, person_ids: Iterable[int | None]) -> None:
    """What these people's Homes show changed: publish them again once the window that
    starts with the first such change is over (people without a Home are skipped)."""
    queries.mark_homes_stale(work.session, {i for i in person_ids if i is not None},
                             work.now + DEBOUNCE)


def mark_team_stale(work: Work) -> None:
    """The scorecard every Home shows has new numbers (a metric refresh, a survey's close)."""
    queries.mark_team_homes_stale(work.session, work.team_id, work.now + DEBOUNCE)


def refresh(services: Services, now: datetime) -> int:
    """Queue every Home whose window is over, each claimed once (even with several workers),
    a batch a transaction; how many."""
    done, shared = 0, {}
    while True:
        with services.transaction() as session:
            people = list_people_by_id(session, queries.claim_due_homes(session, now, BATCH))
            contexts: dict[str, Context] = {}
            for person in (p for p in people if not p.deactivated):  # Slack would refuse
                ctx = contexts.setdefault(person.team_id, Context(
                    session, person.team_id, services.config, now, services.features.home,
                    shared.setdefault(person.team_id, {})))
                outbox.publish(session, person.team_id, person.slack_id, build(ctx, person),
                               now=now)
        done += len(people)
        if len(people) < BATCH:
            return done


FEATURE = Feature(
    "home",
    listeners=("handlers.home",),
    jobs=(Job("home.refresh", refresh, lambda c: every(seconds=30), 30,
              f"republish App Homes whose leads changed, at most once per {DEBOUNCE.seconds} s "
              "each", first_due(queries.get_first_due_home),
              per_workspace=False),),  # each Home in its own workspace
    home=(HomeSection(90, footer),),
    events={"app_home_opened": "rendering the App Home tab"},
)
