"""Retention: the `retention.prune` job deletes what is older than [retention] says.

Processed Slack event ids, delivered outbox messages, lead history and closed survey runs
each have a window; the leads themselves, deals, people and the metric snapshots are the
facts the numbers are made of, and are not pruned (`alignbot erase` removes a person's
personal data instead).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.platform.services import Services
from storage import retention as queries

log = logging.getLogger(__name__)

BATCH = 5_000  # rows a transaction deletes: other writers wait at most this long for the lock

# what each [retention] key prunes, in words, and how
WHAT = {"slack_events": "processed Slack event id(s)",
        "outbox": "delivered outbox message(s)",
        "lead_events": "lead history event(s)",
        "survey_runs": "closed survey run(s)"}


@dataclass
class PruneReport:
    deleted: dict[str, int] = field(default_factory=dict)  # [retention] key -> rows
    windows: dict[str, timedelta | None] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [f"{self.deleted[k]:,} {WHAT[k]} older than {_span(w)}" if w is not None
                 else f"{WHAT[k]} kept for good (retention {k} = forever)"
                 for k, w in self.windows.items()]
        return "deleted " + "; ".join(parts)


def prune(services: Services, now: datetime) -> PruneReport:
    """Delete, in batches, each kind of record older than its window (all workspaces)."""
    report = PruneReport()
    for key, delete in PRUNERS.items():
        window = getattr(services.config.retention, key)
        report.windows[key] = window
        if window is not None:
            report.deleted[key] = _in_batches(services, delete, now - window)
    log.info("retention: %s", report)
    return report


def _in_batches(services: Services, delete_batch: Callable[[Session, datetime], int],
                before: datetime) -> int:
    total = 0
    while True:
        with services.sessions.begin() as session:
            n = delete_batch(session, before)
        total += n
        if n == 0:
            return total


def _outbox(session: Session, before: datetime) -> int:
    # bursts long closed first: they hold their summary message, and are bookkeeping only
    queries.delete_closed_bursts(session, before)
    return queries.delete_finished_outbox(session, before, BATCH)


PRUNERS: dict[str, Callable[[Session, datetime], int]] = {
    "slack_events": lambda s, before: queries.delete_processed_events(s, before, BATCH),
    "outbox": _outbox,
    "lead_events": lambda s, before: queries.delete_lead_events(s, before, BATCH),
    "survey_runs": queries.delete_closed_survey_runs,
}


def _span(window: timedelta) -> str:
    if window.days and not window.seconds:
        return f"{window.days} day(s)"
    return f"{window.total_seconds() / 3600:g} hour(s)"
