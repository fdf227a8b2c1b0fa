"""Digest claims: which (digest, channel, period) has been posted, or decided not to be."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import DigestPost


def claim_period(session: Session, team_id: str, digest: str, channel: str, start: datetime,
                 end: datetime, *, fired_at: datetime, kind: str, now: datetime) -> int | None:
    """The period's claim, or None when it has one already (another worker's, an earlier
    firing's, an admin's send). One INSERT … ON CONFLICT DO NOTHING: of two transactions at
    once, the second waits for the first and then finds its row."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return session.scalar(
        insert(DigestPost).values(team_id=team_id, digest=digest, channel=channel,
                                  period_start=start, period_end=end, fired_at=fired_at,
                                  kind=kind, created_at=now)
        .on_conflict_do_nothing().returning(DigestPost.id))


def set_message(session: Session, post_id: int, message_id: int) -> None:
    session.execute(update(DigestPost).where(DigestPost.id == post_id)
                    .values(message_id=message_id).execution_options(synchronize_session=False))


def get_post(session: Session, team_id: str, digest: str, channel: str, start: datetime,
             end: datetime) -> DigestPost | None:
    return session.scalar(select(DigestPost).where(
        DigestPost.team_id == team_id, DigestPost.digest == digest, DigestPost.channel == channel,
        DigestPost.period_start == start, DigestPost.period_end == end))


def get_last_fired(session: Session, team_id: str, digest: str, channel: str) -> datetime | None:
    """The newest firing a claim answers: the schedule was looked at up to there."""
    return session.scalar(select(func.max(DigestPost.fired_at)).where(
        DigestPost.team_id == team_id, DigestPost.digest == digest, DigestPost.channel == channel))


def list_claimed(session: Session, team_id: str, digest: str, channel: str,
                 ending_after: datetime) -> set[tuple[datetime, datetime]]:
    """The claimed periods that end after `ending_after`."""
    return {(start, end) for start, end in session.execute(
        select(DigestPost.period_start, DigestPost.period_end).where(
            DigestPost.team_id == team_id, DigestPost.digest == digest,
            DigestPost.channel == channel, DigestPost.period_end > ending_after))}
