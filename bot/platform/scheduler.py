"""APScheduler 3 wiring: stable ids, replace_existing, explicit misfire and coalescing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session

from bot.platform import failures, logs, telemetry
from bot.platform.jobs import Job
from bot.platform.services import Services

log = logging.getLogger(__name__)


def run_job(services: Services, job_id: str) -> Any:
    """What APScheduler calls: the job with the services' current time, its log lines carrying
    its id, counted and timed; in OAuth mode, once for each installed workspace (what each
    answered, by workspace). While the database is away or busy, or Slack refuses the token,
    one line per firing (not APScheduler's traceback); the next firing tries again."""
    job = services.features.job(job_id)
    started = services.clock.now()
    outcome = "failed"  # a bug: APScheduler logs its traceback
    with logs.context(team_id=services.team_id or None, job_id=job_id):
        try:
            if services.installations is None or not job.per_workspace:
                result = job.run(services, started)
            else:
                result = {team.team_id: apart(team, f"job {job.id}",
                                              lambda team=team: job.run(team, started))
                          for team in services.workspaces()}
            outcome = "ok"
            return result
        except Exception as exc:
            if (line := failures.one_line(exc, services.team_id)) is None:
                raise
            outcome = "waiting"
            log.warning("job %s: %s; it runs again at its next firing", job_id, line)
            log.debug("the error", exc_info=True)
            return None
        finally:
            telemetry.count_job(job_id, outcome, (services.clock.now() - started).total_seconds())


def apart(team: Services, what: str, run: Callable[[], Any]) -> Any:
    """One workspace's part of a job: its failure is logged (in one line when it is one of
    those) and the other workspaces' parts go on (None)."""
    with logs.context(team_id=team.team_id):
        try:
            return run()
        except Exception as exc:
            if (line := failures.one_line(exc, team.team_id)) is None:
                log.exception("%s failed for workspace %s", what, team.team_id)
            else:
                log.warning("%s: %s; it runs again at its next firing", what, line)
            return None


def first_due(query: Callable[[Session], datetime | None]) -> Callable[[Services], datetime | None]:
    """A job's `next_due`: the query's answer, read in a session of its own."""
    def next_due(services: Services) -> datetime | None:
        with services.sessions() as session:
            return query(session)
    return next_due


def start_scheduler(services: Services, *, paused: bool = False) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=services.config.workspace.tz)
    for j in services.features.jobs:
        scheduler.add_job(run_job, j.trigger(services.config), args=[services, j.id], id=j.id,
                          name=j.description, replace_existing=True, coalesce=True,
                          max_instances=1, misfire_grace_time=j.misfire_grace_time)
    scheduler.start(paused=paused)
    return scheduler


def next_fire(j: Job, services: Services, at: datetime) -> datetime | None:
    """The job's first firing at or after `at`."""
    return j.trigger(services.config).get_next_fire_time(None, at)


def fire_times(j: Job, services: Services, after: datetime, until: datetime) -> list[datetime]:
    """When the job's trigger fires in (after, until]: the shell's `tick` replays these."""
    trigger = j.trigger(services.config)
    times, previous = [], None
    cursor = after
    while True:
        nxt = trigger.get_next_fire_time(previous, cursor)
        if nxt is None or nxt > until:
            return times
        if nxt > after:
            times.append(nxt)
        previous, cursor = nxt, nxt
