"""The services container: what listeners, jobs, the CLI and the shell share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.platform.clock import Clock
from bot.platform.command_table import CommandTable
from bot.platform.config import Config, Secrets
from bot.platform.descriptor import Features
from bot.platform.installations import Installations
from bot.platform.sender import OutboxSender
from bot.platform.work import Work


@dataclass
class Services:
    config: Config
    secrets: Secrets
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    slack: WebClient
    sender: OutboxSender
    features: Features  # what the app does: its listeners, jobs, Home sections
    commands: CommandTable  # the features' commands (a test may swap in its own)
    team_id: str  # the workspace acted for (auth.test's, the shell's; in OAuth mode: for_team's)
    wake_sender: Callable[[], None] = field(default=lambda: None)
    installations: Installations | None = None  # OAuth mode: the workspaces that installed it

    def for_team(self, team_id: str) -> Services:
        """These services acting for one workspace, with its bot token (OAuth mode); in
        single-workspace mode, these very services."""
        if self.installations is None:
            return self
        return replace(self, team_id=team_id, slack=self.installations.client(team_id, self.slack))

    def workspaces(self) -> list[Services]:
        """The services of each workspace a job acts for: every installed one in OAuth mode."""
        if self.installations is None:
            return [self]
        return [self.for_team(team_id) for team_id in self.installations.teams()]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work; after it commits, the outbox sender is woken to deliver."""
        with self.sessions.begin() as session:
            yield session
        self.wake_sender()

    @contextmanager
    def work(self, team_id: str | None = None, now: datetime | None = None) -> Iterator[Work]:
        """`transaction`, as a Work for a workspace (the one a request came from, else this
        one) at `now` (a job's time, else the clock's)."""
        with self.transaction() as session:
            yield self.work_in(session, team_id, now)

    def work_in(self, session: Session, team_id: str | None = None,
                now: datetime | None = None) -> Work:
        """A Work on a session the caller opened (a read, a dry run it rolls back)."""
        return Work(session, team_id or self.team_id, self.config, now or self.clock.now())
