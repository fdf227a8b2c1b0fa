"""Scheduled jobs: plain functions of (services, now), so tests and the shell call them directly.

Each job has a stable id and an APScheduler trigger built from the config. Effects
that must happen once are claimed in the database by the job itself, so running a
scheduler in several processes is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import home, retention
from bot.digests import schedule as digests
from bot.intake import owners
from bot.intake.imports import import_dropped
from bot.metrics.snapshots import refresh
from bot.platform.config import Config
from bot.platform.services import Services
from bot.sla.nudges import sweep
from bot.surveys import runs as surveys
from storage.people import list_team_ids


def import_folder(services: Services, now: datetime) -> Any:
    """Import CSV files dropped into [imports] folder, each content once."""
    folder = services.config.imports.folder
    if not folder or not Path(folder).is_dir():
        return []
    return [(path.name, s.as_dict()) for path, s in import_dropped(services, Path(folder), now)]


def sla_sweep(services: Services, now: datetime) -> Any:
    """Send the SLA nudges that fell due (each once, even with several workers), and route
    the leads waiting for an owner whose next try came."""
    return sweep(services, now)


def metrics_refresh(services: Services, now: datetime) -> Any:
    """Recompute the daily metric snapshots whose inputs changed, per workspace; the
    scorecards on people's Homes are then due for a refresh."""
    with services.sessions() as session:
        teams = list_team_ids(session)
    reports = []
    for team_id in teams:
        with services.sessions.begin() as session:
            reports.append(refresh(session, services.config, team_id, now))
            home.mark_team_stale(session, team_id, now)
    return reports


def survey_sweep(services: Services, now: datetime) -> Any:
    """Open the survey runs whose schedule fired, prompt and remind people in their working
    hours, close the runs that are due (each effect once, even with several workers)."""
    return surveys.sweep(services, now)


def digests_post(services: Services, now: datetime) -> Any:
    """Post the digests whose schedule fired, each (digest, channel, period) once; catch up
    on firings missed while alignbot was down (late, with a note, up to a period)."""
    return digests.sweep(services, now)


def digests_trigger(config: Config) -> BaseTrigger:
    """At every digest's firing, and every CATCH_UP minutes for what a restart missed."""
    return OrTrigger([*(digests.crontab(config, d) for d in config.digests),
                      every(minutes=digests.CATCH_UP)])


def outbox_sweep(services: Services, now: datetime) -> Any:
    """Deliver whatever the immediate flush missed: retries, held rows, another process's crash."""
    return services.sender.flush()


# Interval triggers count from a fixed instant, not from "now": runs land on the same
# marks in every process and in the shell, and APScheduler never reads the real clock.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def every(**interval: int) -> IntervalTrigger:
    return IntervalTrigger(**interval, start_date=EPOCH)


@dataclass(frozen=True)
class Job:
    id: str
    run: Callable[[Services, datetime], Any]
    trigger: Callable[[Config], BaseTrigger]
    misfire_grace_time: int  # seconds a late run may still start; later ones are skipped
    description: str


JOBS: tuple[Job, ...] = (
    Job("outbox.sweep", outbox_sweep, lambda c: every(seconds=30), 30,
        "deliver queued Slack messages that are due (retries, held messages)"),
    Job("sla.sweep", sla_sweep, lambda c: every(minutes=1), 60,
        "send due SLA nudges, escalations and reassignments; route leads waiting for an owner"),
    Job("home.refresh", home.refresh, lambda c: every(seconds=30), 30,
        f"republish App Homes whose leads changed, at most once per {home.DEBOUNCE.seconds} s each"),
    Job("metrics.refresh", metrics_refresh, lambda c: every(minutes=15), 900,
        "recompute the daily metric snapshots of the days whose data changed"),
    Job("surveys.sweep", survey_sweep, lambda c: every(minutes=1), 60,
        "open scheduled survey runs, send prompts and reminders in people's hours, close runs"),
    Job("imports.folder", import_folder, lambda c: every(minutes=1), 60,
        "import CSV files dropped into the configured folder"),
    Job("owners.retry", owners.retry, lambda c: every(minutes=5), 300,
        "ask Slack again about CRM owner emails it could not answer for, and route their leads"),
    Job("digests.post", digests_post, digests_trigger, 3600,
        "post the channel digests whose schedule fired, each period once"),
    Job("retention.prune", retention.prune,
        lambda c: CronTrigger(hour=3, timezone=c.workspace.tz), 3600,
        "delete Slack event ids, delivered messages, lead history and closed survey runs "
        "older than [retention] says"),
)


def job(job_id: str) -> Job:
    for j in JOBS:
        if j.id == job_id:
            return j
    raise KeyError(f"no job {job_id!r}; jobs: {', '.join(j.id for j in JOBS)}")


def run_job(services: Services, job_id: str) -> Any:
    """What APScheduler calls: the job with the services' current time."""
    return job(job_id).run(services, services.clock.now())
