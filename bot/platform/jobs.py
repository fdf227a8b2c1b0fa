"""Scheduled jobs: plain functions of (services, now), so tests and the shell call them directly.

Each job has a stable id and an APScheduler trigger built from the config; each feature
declares its own (bot/platform/descriptor.py). Effects that must happen once are claimed in
the database by the job itself, so running a scheduler in several processes is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.platform.config import Config

# Interval triggers count from a fixed instant, not from "now": runs land on the same
# marks in every process and in the shell, and APScheduler never reads the real clock.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def every(**interval: int) -> IntervalTrigger:
    return IntervalTrigger(**interval, start_date=EPOCH)


@dataclass(frozen=True)
class Job:
    id: str
    run: Callable[[Any, datetime], Any]  # (services, now); services hold the jobs: not imported
    trigger: Callable[[Config], BaseTrigger]
    misfire_grace_time: int  # seconds a late run may still start; later ones are skipped
    description: str
    # When the job next has work (None: none waits), for a job that polls for due rows: the
    # shell's `tick` skips the firings before it. Without one, every firing runs.
    next_due: Callable[[Any], datetime | None] | None = None
    # In OAuth mode the job runs once for each installed workspace, unless it works on all
    # at once (the outbox's sweep, retention).
    per_workspace: bool = True
