"""Retention: deleting what is older than [retention] says, a batch per transaction.

Each function deletes at most `limit` rows and returns how many it deleted, so a first
prune of a large table never holds SQLite's one writer lock (or PostgreSQL row locks) for
long: the caller loops until a batch comes back empty.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select, tuple_
from sqlalchemy.orm import Session, aliased

from storage.models import (
    DigestPost,
    HandoffBurst,
    LeadEvent,
    OutboxMessage,
    ProcessedEvent,
    SurveyRun,
)

FINISHED = ("sent", "superseded")  # dead rows stay: the admins were told, and may look


def delete_processed_events(session: Session, before: datetime, limit: int) -> int:
    batch = select(ProcessedEvent.team_id, ProcessedEvent.event_id) \
        .where(ProcessedEvent.received_at < before).limit(limit)
    keys = [tuple(k) for k in session.execute(batch)]
    if keys:
        session.execute(delete(ProcessedEvent).where(
            tuple_(ProcessedEvent.team_id, ProcessedEvent.event_id).in_(keys)))
    return len(keys)


def delete_closed_bursts(session: Session, before: datetime) -> int:
    """Handoff bursts quiet since `before` (long closed): their summary message may then go."""
    return session.execute(delete(HandoffBurst).where(HandoffBurst.last_at < before)).rowcount


def delete_finished_outbox(session: Session, before: datetime, limit: int) -> int:
    """Delivered or superseded rows created before `before` that nothing kept refers to: an
    edit or a reply (parent_id) goes first, its original in a later batch, so a thread or a
    card edited within the window keeps what it edits. A digest's post stays with its claim."""
    child = aliased(OutboxMessage)
    batch = (select(OutboxMessage.id)
             .where(OutboxMessage.state.in_(FINISHED), OutboxMessage.created_at < before,
                    ~exists().where(child.parent_id == OutboxMessage.id),
                    ~exists().where(DigestPost.message_id == OutboxMessage.id),
                    ~exists().where(HandoffBurst.message_id == OutboxMessage.id))
             .limit(limit))
    ids = list(session.scalars(batch))
    if ids:
        session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
    return len(ids)


def delete_lead_events(session: Session, before: datetime, limit: int) -> int:
    ids = list(session.scalars(select(LeadEvent.id).where(LeadEvent.at < before).limit(limit)))
    if ids:
        session.execute(delete(LeadEvent).where(LeadEvent.id.in_(ids)))
    return len(ids)


def delete_closed_survey_runs(session: Session, before: datetime) -> int:
    """Runs closed before `before`, with their questions, invites and answers (the foreign
    keys cascade), except each survey's latest closed run: the alignment index reads it."""
    later = aliased(SurveyRun)
    old = (select(SurveyRun.id)
           .where(SurveyRun.state == "closed", SurveyRun.closed_at < before,
                  exists().where(later.survey_id == SurveyRun.survey_id, later.state == "closed",
                                 later.number > SurveyRun.number)))
    ids = list(session.scalars(old))
    if ids:
        session.execute(delete(SurveyRun).where(SurveyRun.id.in_(ids)))
    return len(ids)
