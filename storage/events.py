"""Processed Slack events: the memory that makes retries and duplicates harmless."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage.models import ProcessedEvent


def add_processed_event(session: Session, team_id: str, event_id: str, now: datetime) -> bool:
    """Record the event; False when it was already recorded (a retry or a duplicate)."""
    if session.get(ProcessedEvent, (team_id, event_id)) is not None:
        return False
    session.add(ProcessedEvent(team_id=team_id, event_id=event_id, received_at=now))
    session.flush()
    return True

