"""Slack event bookkeeping: each event id is processed once, however often it arrives."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from bot.platform.services import Services
from storage.events import add_processed_event


def first_delivery(services: Services, team_id: str, event_id: str) -> bool:
    try:
        with services.sessions.begin() as session:
            return add_processed_event(session, team_id, event_id, services.clock.now())
    except IntegrityError:  # another process recorded it between our read and our insert
        return False
