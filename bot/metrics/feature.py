"""Shared metrics: questions by @mention, DM or `/align metric`, the daily snapshots, and
the scorecard on every Home."""

from __future__ import annotations

from datetime import datetime

from bot import home
from bot.metrics import commands
from bot.metrics.home import team_scorecard
from bot.metrics.snapshots import RefreshReport, refresh
from bot.platform.descriptor import Feature, HomeSection
from bot.platform.jobs import Job, every
from bot.platform.services import Services


def metrics_refresh(services: Services, now: datetime) -> RefreshReport:
    """Recompute the workspace's daily metric snapshots whose inputs changed (in OAuth mode
    the job runs once for each installed workspace); the scorecards on its people's Homes
    are then due for a refresh."""
    report = refresh(services.sessions, services.config, services.team_id, now)
    with services.work(now=now) as work:
        home.mark_team_stale(work)
    return report


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
