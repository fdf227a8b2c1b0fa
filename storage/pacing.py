"""The outbox's pace per channel, shared by every sender process: a channel's next slot is
claimed in the transaction that claims its row, its row locked meanwhile (`FOR UPDATE
SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time). Queries take a session and
never commit.

A channel's `next_at` is a virtual schedule (GCRA): each message moves it one interval
on, and a quiet channel's lags behind now by at most `burst - 1` intervals, which is the
burst it may take at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import OutboxMessage, OutboxPace

# what an outbox row is paced by: its channel, or the method of a call without one (a Home view)
CHANNEL = func.coalesce(OutboxMessage.channel, OutboxMessage.method)
_free_until = case((OutboxPace.held_until > OutboxPace.next_at, OutboxPace.held_until),
               else_=OutboxPace.next_at)


def channel_of(row: OutboxMessage) -> str:
    return row.channel or row.method


def is_free(now: datetime):
    """For a query of outbox rows: the row's channel may take a message at `now`."""
    return ~exists().where(OutboxPace.team_id == OutboxMessage.team_id,
                           OutboxPace.channel == CHANNEL,
                           or_(OutboxPace.next_at > now, OutboxPace.held_until > now))


def lock(session: Session, team_id: str, channel: str, quiet: datetime, *,
         wait: bool = False) -> OutboxPace | None:
    """The channel's pace, locked until the transaction ends, made `quiet` (free at once, with
    its whole burst) the first time: None while another sender has it (PostgreSQL, unless
    `wait`). Inserting first also takes SQLite's write lock before anything is read."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(OutboxPace).values(team_id=team_id, channel=channel, next_at=quiet)
                    .on_conflict_do_nothing())
    return session.scalars(
        select(OutboxPace).where(OutboxPace.team_id == team_id, OutboxPace.channel == channel)
        .with_for_update(skip_locked=not wait).execution_options(populate_existing=True)
    ).first()


def free_at(pace: OutboxPace) -> datetime:
    """When the channel may take its next message."""
    return max(pace.next_at, pace.held_until or pace.next_at)


def advance(pace: OutboxPace, now: datetime, interval: timedelta, burst: int) -> None:
    """One message sent at `now`: the channel's schedule moves one interval on."""
    pace.next_at = max(pace.next_at, now - interval * (burst - 1)) + interval


def hold(session: Session, team_id: str, channel: str, until: datetime, quiet: datetime) -> None:
    """Slack asked us to wait (a 429's Retry-After): nothing goes to the channel before `until`,
    from any sender."""
    pace = lock(session, team_id, channel, quiet, wait=True)
    pace.held_until = max(until, pace.held_until or until)


def get_next_free(session: Session, now: datetime) -> datetime | None:
    """When the next channel now paced or held becomes free (it may have nothing waiting)."""
    return session.scalar(select(func.min(_free_until)).where(_free_until > now))


def forget(session: Session, team_id: str, channels: list[str]) -> None:
    """Drop the channels' pace (they are quiet again): a DM's holds the time of its last
    message, which must not outlive what it says (a survey's answer echo)."""
    session.execute(delete(OutboxPace).where(OutboxPace.team_id == team_id,
                                             OutboxPace.channel.in_(channels)))
