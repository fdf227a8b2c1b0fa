"""Bulk writing: explicit ids and many rows per statement (the demo data set, batches of new leads)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from storage.models import Lead


def next_id(session: Session, model: type) -> int:
    return (session.scalar(select(func.max(model.id))) or 0) + 1


def add_rows(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """One executemany on the table itself: the ORM's bulk path would inspect every row."""
    if rows:
        session.connection().execute(insert(model.__table__), rows)


def count_leads(session: Session, team_id: str) -> int:
    return session.scalar(select(func.count()).select_from(Lead).where(Lead.team_id == team_id)) or 0


class Rows:
    """Rows that nothing reads back before the transaction ends (the history and nudges of a
    batch of new leads), kept as plain dicts and written in one INSERT per table: a thousand
    leads' worth of ORM objects would cost more than everything else in the batch."""

    def __init__(self) -> None:
        self._rows: dict[type, list[dict[str, Any]]] = {}

    def add(self, model: type, row: dict[str, Any]) -> None:
        self._rows.setdefault(model, []).append(row)

    def write(self, session: Session) -> None:
        """Flush the ORM first: these rows point at leads that may not be written yet."""
        session.flush()
        for model, rows in self._rows.items():
            add_rows(session, model, rows)
        self._rows.clear()


def add(session: Session, rows: Rows | None, model: type, row: dict[str, Any]) -> None:
    """Into the batch's rows when there is one, else into the session now."""
    if rows is not None:
        rows.add(model, row)
    else:
        session.add(model(**row))
