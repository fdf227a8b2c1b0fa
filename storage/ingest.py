"""Ingest queries: a batch's existing rows fetched in a few queries, never one per record."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Executable, delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.db import among
from storage.models import ContentUse, Spend, WebhookRequest

CHUNK = 500  # keys per IN (...) list


def _chunks(keys: list[Any]) -> Iterable[list[Any]]:
    unique = list(dict.fromkeys(keys))
    for i in range(0, len(unique), CHUNK):
        yield unique[i:i + CHUNK]


def _each_chunk(session: Session, column: InstrumentedAttribute, keys: list[Any],
                query: Callable[[ColumnElement[bool]], Executable]) -> Iterator[Any]:
    """The rows of `query(column in chunk)` for every chunk of the keys. On PostgreSQL each
    is planned for its own keys, never prepared: a prepared plan is made once for any
    array, and one made while an import's table was small (an index scan on team_id,
    filtered by the keys one by one) stays while the table grows to take 100 ms a lookup."""
    conn = session.connection().connection.driver_connection
    prepared = getattr(conn, "prepare_threshold", None)  # psycopg's; SQLite has none
    if prepared is not None:
        conn.prepare_threshold = None
    try:
        for chunk in _chunks(keys):
            yield from session.execute(query(among(session, column, chunk)))
    finally:
        if prepared is not None:
            conn.prepare_threshold = prepared


def get_by_external_ids(session: Session, model: type, team_id: str, keys: list[str]) -> dict:
    rows = _each_chunk(session, model.external_id, keys,
                       lambda keyed: select(model).where(model.team_id == team_id, keyed))
    return {row.external_id: row for row in (r[0] for r in rows)}


def lock_by_external_ids(session: Session, model: type, team_id: str, keys: list[str]) -> dict:
    """`get_by_external_ids`, each row locked as its UPDATE would lock it (FOR NO KEY UPDATE)
    until the transaction ends: a batch compares a record's `updated_at` with the stored
    one and writes before another batch of the same rows reads them (else the older of two
    deliveries at once could commit last, and win). Rows, not a workspace lock like
    leads': deliveries of other rows, other entities, other workspaces go on side by side.
    Locked in byte order, the sorted keys' and their chunks', so two batches wait for each
    other in one order and never deadlock. SQLite has one writer at a time anyway."""
    if session.get_bind().dialect.name != "postgresql":
        return get_by_external_ids(session, model, team_id, keys)
    rows = _each_chunk(session, model.external_id, sorted(keys), lambda keyed: select(model)
                       .where(model.team_id == team_id, keyed)
                       .order_by(model.external_id.collate("C")).with_for_update(key_share=True))
    return {row.external_id: row for row in (r[0] for r in rows)}


def get_ids_by_external_ids(session: Session, model: type, team_id: str,
                            keys: list[str]) -> dict[str, int]:
    return dict(_each_chunk(session, model.external_id, keys, lambda keyed: select(
        model.external_id, model.id).where(model.team_id == team_id, keyed)))


def get_spend(session: Session, team_id: str, months: set[date]) -> dict:
    rows = session.scalars(select(Spend).where(Spend.team_id == team_id,
                                               Spend.month.in_(sorted(months))))
    return {(r.month, r.team): r for r in rows}


def get_content_uses(session: Session, team_id: str, content_ids: list[int]) -> dict:
    rows = _each_chunk(session, ContentUse.content_id, content_ids, lambda keyed: select(
        ContentUse).where(ContentUse.team_id == team_id, keyed))
    return {(row.content_id, row.user_email, row.used_at): row for row in (r[0] for r in rows)}


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
