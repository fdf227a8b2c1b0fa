"""Slack event bookkeeping: each event id is processed once, however often it arrives."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from bot.platform.services import Services
from storage.events import add_processed_event, delete_processed_events_before

# Slack retries for minutes, not days; keep ids well past that, then forget them.
KEEP_EVENT_IDS = timedelta(days=2)


def first_delivery(services: Services, team_id: str, event_id: str) -> bool:
    try:
        with services.sessions.begin() as session:
            return add_processed_event(session, team_id, event_id, services.clock.now())
    except IntegrityError:  # another process recorded it between our read and our insert
        return False


def prune_events(services: Services, now: datetime) -> int:
    with services.sessions.begin() as session:
        return delete_processed_events_before(session, now - KEEP_EVENT_IDS)
