"""Ingest queries: a batch's existing rows fetched in a few queries, never one per record."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import ContentUse, Spend, WebhookRequest

CHUNK = 500  # keys per IN (...) list


def _chunks(keys: list[Any]) -> Iterable[list[Any]]:
    unique = list(dict.fromkeys(keys))
    for i in range(0, len(unique), CHUNK):
        yield unique[i:i + CHUNK]


def get_by_external_ids(session: Session, model: type, team_id: str, keys: list[str]) -> dict:
    found = {}
    for chunk in _chunks(keys):
        for row in session.scalars(select(model).where(model.team_id == team_id,
                                                       model.external_id.in_(chunk))):
            found[row.external_id] = row
    return found


def get_ids_by_external_ids(session: Session, model: type, team_id: str,
                            keys: list[str]) -> dict[str, int]:
    found = {}
    for chunk in _chunks(keys):
        found.update(session.execute(select(model.external_id, model.id).where(
            model.team_id == team_id, model.external_id.in_(chunk))).all())
    return found


def get_spend(session: Session, team_id: str, months: set[date]) -> dict:
    rows = session.scalars(select(Spend).where(Spend.team_id == team_id,
                                               Spend.month.in_(sorted(months))))
    return {(r.month, r.team): r for r in rows}


def get_content_uses(session: Session, team_id: str, content_ids: list[int]) -> dict:
    found = {}
    for chunk in _chunks(content_ids):
        for row in session.scalars(select(ContentUse).where(ContentUse.team_id == team_id,
                                                            ContentUse.content_id.in_(chunk))):
            found[(row.content_id, row.user_email, row.used_at)] = row
    return found


def add_webhook_request(session: Session, team_id: str, signature: str, now: datetime) -> None:
    """Remember a request by its signature (a second one is an IntegrityError, at the latest
    when the transaction commits)."""
    session.add(WebhookRequest(team_id=team_id, signature=signature, received_at=now))
    session.flush()


def delete_webhook_request(session: Session, team_id: str, signature: str) -> None:
    session.execute(delete(WebhookRequest).where(WebhookRequest.team_id == team_id,
                                                 WebhookRequest.signature == signature))


def delete_webhook_requests_before(session: Session, before: datetime) -> None:
    session.execute(delete(WebhookRequest).where(WebhookRequest.received_at < before))
