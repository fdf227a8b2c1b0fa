"""Metric snapshot queries: the daily (and monthly) parts a refresh stores, their sums over
spans of days and months, and which days a refresh must redo.

A span is (grain, first, last): the rows of that grain whose `day` is in first..last (a
month's row has its first day)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, union_all
from sqlalchemy.orm import Session

from storage.db import hold
from storage.metrics import SPEND_BOOKED_AT
from storage.models import Customer, Deal, Lead, MetricRefresh, MetricSnapshot, Spend

_SNAPSHOTS = MetricSnapshot.__table__


def get_refresh(session: Session, team_id: str) -> MetricRefresh | None:
    return session.get(MetricRefresh, team_id)


def lock_refresh(session: Session, team_id: str) -> None:
    """The workspace's refresh, until the transaction ends: two workers' first refreshes
    would both write its first snapshots and refresh row."""
    hold(session, f"metrics-refresh:{team_id}")


def set_refresh(session: Session, team_id: str, first_day: date, last_day: date,
                as_of: datetime) -> None:
    session.merge(MetricRefresh(team_id=team_id, first_day=first_day, last_day=last_day,
                                as_of=as_of))


def replace_rows(session: Session, team_id: str, grain: str, day: date,
                 rows: list[dict[str, Any]]) -> None:
    """A day's (or month's) snapshot rows, all at once: what is not in `rows` is gone."""
    session.execute(delete(_SNAPSHOTS).where(_SNAPSHOTS.c.team_id == team_id,
                                             _SNAPSHOTS.c.grain == grain, _SNAPSHOTS.c.day == day))
    if rows:
        session.execute(insert(_SNAPSHOTS), [{"team_id": team_id, "grain": grain, "day": day, **r}
                                             for r in rows])


Span = tuple[str, date, date]


def sum_parts(session: Session, team_id: str, metric: str, dimension: str,
              spans: list[Span]) -> dict[str, tuple[float, float]]:
    """(Σ numerator, Σ denominator) per dimension value over the spans."""
    rows = session.execute(
        select(_SNAPSHOTS.c.dimension_value, func.sum(_SNAPSHOTS.c.numerator),
               func.sum(_SNAPSHOTS.c.denominator))
        .where(*_spans(team_id, metric, dimension, spans))
        .group_by(_SNAPSHOTS.c.dimension_value))
    return {k: (n or 0.0, d or 0.0) for k, n, d in rows}


def merge_histograms(session: Session, team_id: str, metric: str, dimension: str,
                     spans: list[Span]) -> dict[str, Counter]:
    """The spans' histograms merged per dimension value. In Python: with year and month
    rollups a span is a few dozen rows per group, and adding them here beats SQL's JSON
    functions (8 ms against 22 for a month of 40 owners)."""
    merged: dict[str, Counter] = {}
    for key, histogram in session.execute(
            select(_SNAPSHOTS.c.dimension_value, _SNAPSHOTS.c.histogram)
            .where(*_spans(team_id, metric, dimension, spans))):
        merged.setdefault(key, Counter()).update(histogram or {})
    return {key: Counter({float(value): n for value, n in counts.items()})
            for key, counts in merged.items()}


def _spans(team_id: str, metric: str, dimension: str, spans: list[Span]) -> list:
    c = _SNAPSHOTS.c
    return [c.team_id == team_id, c.metric == metric, c.dimension == dimension,
            or_(*((c.grain == grain) & (c.day >= first) & (c.day <= last)
                  for grain, first, last in spans))]


def list_changed_days(session: Session, team_id: str, since: datetime | None, now: datetime,
                      tz: tzinfo) -> set[date]:
    """The local days additive metrics count rows at, of every row changed since `since` (of
    all rows when None) — and of open leads that fell due since then (breaches now)."""
    def changed(model):
        return [model.team_id == team_id] + ([model.updated_at >= since] if since else [])

    stmts = [select(t).where(*changed(Lead), t.is_not(None))
             for t in (Lead.routed_at, Lead.mql_at, Lead.accepted_at, Lead.rejected_at)]
    stmts += [select(Deal.closed_at).where(*changed(Deal), Deal.closed_at.is_not(None)),
              select(Lead.mql_at).join(Deal, Deal.lead_id == Lead.id)  # conversion
              .where(*changed(Deal), Lead.mql_at.is_not(None)),
              select(Customer.started_at).where(*changed(Customer))]
    if since is not None:
        stmts.append(select(Lead.routed_at).where(
            Lead.team_id == team_id, Lead.sla_met.is_(None), Lead.sla_due_at >= since,
            Lead.sla_due_at < now, Lead.routed_at.is_not(None)))
    # Streamed: a first refresh reads millions of instants and keeps only their days.
    days = {t.astimezone(tz).date() for t in session.scalars(
        union_all(*stmts).subquery().select().execution_options(yield_per=20_000))}
    months = session.scalars(select(Spend.month).where(*changed(Spend)).distinct())
    return days | {_booked(m).astimezone(tz).date() for m in months}


def _booked(month: date) -> datetime:
    return datetime.combine(month, time.min, UTC) + SPEND_BOOKED_AT

