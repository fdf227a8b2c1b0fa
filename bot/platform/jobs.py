"""Scheduled jobs: plain functions of (services, now), so tests and the shell call them directly.

Each job has a stable id and an APScheduler trigger built from the config; each feature
declares its own (bot/platform/feature.py). Effects that must happen once are claimed in
the database by the job itself, so running a scheduler in several processes is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.platform.config import Config

if TYPE_CHECKING:
    from bot.platform.services import Services

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


def run_job(services: Services, job_id: str) -> Any:
    """What APScheduler calls: the job with the services' current time."""
    return services.features.job(job_id).run(services, services.clock.now())
