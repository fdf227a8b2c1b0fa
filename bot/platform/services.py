"""The services container: what listeners, jobs, the CLI and the shell share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.platform.clock import Clock
from bot.platform.command_table import CommandTable
from bot.platform.config import Config, Secrets
from bot.platform.descriptor import Features
from bot.platform.sender import OutboxSender


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
    team_id: str  # the workspace this process serves (from auth.test, or the shell's)
    wake_sender: Callable[[], None] = field(default=lambda: None)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work; after it commits, the outbox sender is woken to deliver."""
        with self.sessions.begin() as session:
            yield session
        self.wake_sender()
