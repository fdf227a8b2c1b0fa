"""Work: one unit of work in one workspace, the first argument of every domain function
that reads or writes the store (docs/architecture.md, "Signatures")."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from bot.platform.config import Config


@dataclass(frozen=True)
class Work:
    """The transaction's session, the workspace acted for, the config and the time it acts
    at. A bulk path's batch lives on the session (storage.bulk.batch), not here."""

    session: Session
    team_id: str
    config: Config
    now: datetime

    def for_team(self, team_id: str) -> Work:
        """The same work acting for another workspace (a lead of another team)."""
        return self if team_id == self.team_id else replace(self, team_id=team_id)

    def at(self, now: datetime) -> Work:
        """The same work at another time (a schedule's firing, the demo's past)."""
        return replace(self, now=now)
