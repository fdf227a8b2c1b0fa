"""APScheduler 3 wiring: stable ids, replace_existing, explicit misfire and coalescing."""

from __future__ import annotations

from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler

from bot.platform.jobs import Job, run_job
from bot.platform.services import Services


def start_scheduler(services: Services, *, paused: bool = False) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=services.config.workspace.tz)
    for j in services.features.jobs:
        scheduler.add_job(run_job, j.trigger(services.config), args=[services, j.id], id=j.id,
                          name=j.description, replace_existing=True, coalesce=True,
                          max_instances=1, misfire_grace_time=j.misfire_grace_time)
    scheduler.start(paused=paused)
    return scheduler


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
