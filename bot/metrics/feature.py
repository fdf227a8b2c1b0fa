"""Shared metrics: questions by @mention, DM or `/align metric`, the daily snapshots, and
the scorecard on every Home."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import home
from bot.metrics import commands
from bot.metrics.home import team_scorecard
from bot.metrics.snapshots import refresh
from bot.platform.descriptor import Feature, HomeSection
from bot.platform.jobs import Job, every
from bot.platform.services import Services
from storage.db import read_only
from storage.people import list_team_ids


def metrics_refresh(services: Services, now: datetime) -> Any:
    """Recompute the daily metric snapshots whose inputs changed, per workspace; the
    scorecards on people's Homes are then due for a refresh."""
    with read_only(services.sessions) as session:
        teams = list_team_ids(session)
    reports = []
    for team_id in teams:
        reports.append(refresh(services.sessions, services.config, team_id, now))
        with services.work(team_id, now) as work:
            home.mark_team_stale(work)
    return reports


FEATURE = Feature(
    "metrics",
    listeners=("handlers.mentions",),
    commands=tuple(commands.COMMANDS),
    jobs=(Job("metrics.refresh", metrics_refresh, lambda c: every(minutes=15), 900,
              "recompute the daily metric snapshots of the days whose data changed"),),
    home=(HomeSection(30, team_scorecard),),
    scopes={"app_mentions:read": ("app_mention",), "im:history": ("message.im",)},
    events={"app_mention": "@mention metric questions", "message.im": "questions sent by DM"},
)
