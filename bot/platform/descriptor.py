"""What a feature declares, in one place: its listeners, `/align` commands, jobs, App Home
sections, and the Slack scopes and events it needs.

Each feature package holds one `FEATURE = Feature(...)`, in its `feature.py`; `bot/features.py`
lists them, and the app factory, the command table, the scheduler, the Home and
`alignbot manifest` are all built from that list. A new feature is one package and one
line there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.platform.command_table import HELP, Command, CommandTable
from bot.platform.jobs import Job

if TYPE_CHECKING:
    from bot.blocks.kit import Block
    from storage.models import Person

Section = Callable[[Any, "Person | None"], "list[Block]"]  # (home.Context, person) -> blocks


@dataclass(frozen=True)
class HomeSection:
    slot: int  # where on the Home: sections are shown by slot, whichever feature they are of
    build: Section


@dataclass(frozen=True)
class Feature:
    name: str
    # Modules of handlers/ whose `register(app, services)` the app factory calls, in order:
    # named, not imported, so that bot/ never imports handlers/ (they import bot/).
    listeners: tuple[str, ...] = ()
    commands: tuple[Command, ...] = ()
    jobs: tuple[Job, ...] = ()
    home: tuple[HomeSection, ...] = ()
    # Bot token scopes, each with what needs it: events, Web API methods, the slash command.
    scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Bot events (Slack's names: a DM is "message.im"), each with what it is for.
    events: Mapping[str, str] = field(default_factory=dict)


class Features:
    """The features of the app, in order: their parts gathered for each consumer."""

    def __init__(self, features: Iterable[Feature]):
        self.all = tuple(features)
        commands = [c for f in self.all for c in f.commands]
        # help first, admin-only commands last: `/align help` lists what most people may run
        self.commands = CommandTable([HELP, *(c for c in commands if not c.admin),
                                      *(c for c in commands if c.admin)])
        self.jobs = tuple(j for f in self.all for j in f.jobs)
        self.home = tuple(s.build for s in sorted((s for f in self.all for s in f.home),
                                                  key=lambda s: s.slot))
        self.listeners = tuple(m for f in self.all for m in f.listeners)
        self.events = tuple(e for f in self.all for e in f.events)
        scopes: dict[str, tuple[str, ...]] = {}
        for f in self.all:
            for scope, uses in f.scopes.items():
                scopes[scope] = tuple(dict.fromkeys((*scopes.get(scope, ()), *uses)))
        self.scopes = scopes

    def job(self, job_id: str) -> Job:
        for j in self.jobs:
            if j.id == job_id:
                return j
        raise KeyError(f"no job {job_id!r}; jobs: {', '.join(j.id for j in self.jobs)}")
