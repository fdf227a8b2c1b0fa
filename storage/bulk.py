"""Bulk loading (the demo data set): explicit ids, many rows per statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from storage.models import Lead


def next_id(session: Session, model: type) -> int:
    return (session.scalar(select(func.max(model.id))) or 0) + 1


def add_rows(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(model), rows)


def count_leads(session: Session, team_id: str) -> int:
    return session.scalar(select(func.count()).select_from(Lead).where(Lead.team_id == team_id)) or 0
