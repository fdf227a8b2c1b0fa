"""Metric snapshot queries: the daily parts a refresh stores (and their weekly, monthly and
yearly sums), their sums over spans of those, and which days a refresh must redo.

A span is (grain, first, last): the rows of that grain whose `day` is in first..last (a
week's row has its Monday, a month's its first day)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Row,
    Select,
    String,
    Text,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from storage.db import hold, read
from storage.metrics import next_month
from storage.models import (
    Customer,
    Deal,
    Lead,
    MetricRefresh,
    MetricSnapshot,
    MetricStaleInstant,
    Spend,
)

_SNAPSHOTS = MetricSnapshot.__table__


_REFRESH = select(MetricRefresh.first_day, MetricRefresh.last_day, MetricRefresh.as_of).where(
    MetricRefresh.team_id == bindparam("team_id"))


def get_refresh(session: Session, team_id: str) -> Row | None:
    """(first_day, last_day, as_of) of the workspace's refresh, None before its first. Read
    by every metric question: a row of columns, not a mapped object (whose load, through
    the session's identity map, took a fifth of a question's CPU on an empty store)."""
    return read(session, _REFRESH, {"team_id": team_id}).one_or_none()


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
    """A day's (or week's, month's) snapshot rows, all at once: what is not in `rows` is gone."""
    session.execute(delete(_SNAPSHOTS).where(_SNAPSHOTS.c.team_id == team_id,
                                             _SNAPSHOTS.c.grain == grain, _SNAPSHOTS.c.day == day))
    if rows:
        session.execute(insert(_SNAPSHOTS), [{"team_id": team_id, "grain": grain, "day": day, **r}
                                             for r in rows])


Span = tuple[str, date, date]


def sum_parts_each(session: Session, team_id: str, metric: str, dimension: str,
                   buckets: list[Sequence[Span]]) -> list[dict[str, tuple[float, float]]]:
    """(Σ numerator, Σ denominator) per dimension value over each bucket of spans, in one
    query; each bucket's spans all come before the next bucket's (they cover consecutive
    stretches of time)."""
    sums: list[dict[str, tuple[float, float]]] = [{} for _ in buckets]
    if not any(buckets):
        return sums
    shape, params = _bucketed(session, team_id, metric, dimension, buckets)
    for i, key, n, d in read(session, _sums(*shape), params):
        sums[i][key] = (n or 0.0, d or 0.0)
    return sums


def merge_histograms_each(session: Session, team_id: str, metric: str, dimension: str,
                          buckets: list[Sequence[Span]]) -> list[dict[str, dict[float, int]]]:
    """Each bucket's histograms merged per dimension value, in one query (buckets as in
    `sum_parts_each`). In Python: with year, month and week rollups a span is a few dozen
    rows per group, and adding them here beats SQL's JSON functions (8 ms against 22 for a
    month of 40 owners). Each row is decoded straight to numbers (JSON's keys are text), a
    group's first row kept as it is and the others added to it in one pass: Counter.update
    and a pass to convert the values took twice as long."""
    merged: list[dict[str, dict[float, int]]] = [{} for _ in buckets]
    if not any(buckets):
        return merged
    shape, params = _bucketed(session, team_id, metric, dimension, buckets)
    for i, key, text in read(session, _histograms(*shape), params):
        histogram = (_HISTOGRAM.decode(text) if text else None) or {}
        into = merged[i].get(key)
        if into is None:
            merged[i][key] = histogram  # decoded here: nobody else holds it
            continue
        get = into.get
        for value, n in histogram.items():
            into[value] = get(value, 0) + n
    return merged


# JSON's null (what the column holds for a Python None) is no histogram; a count written
# as 2.0 is 2, as the JSON loads before it read them
_HISTOGRAM = msgspec.json.Decoder(dict[float, int] | None, strict=False)


def _bucketed(session: Session, team_id: str, metric: str, dimension: str,
              buckets: list[Sequence[Span]]) -> tuple[tuple[tuple[str, ...], int, str], dict[str, Any]]:
    """The shape of the query of the buckets' rows (its grains, how many buckets hold spans,
    the dialect) and its parameters: which units of each grain, and where each bucket
    starts (a row is in the last one starting at or before its day)."""
    dialect = session.get_bind().dialect.name
    held = [(i, min(first for _, first, _ in spans)) for i, spans in enumerate(buckets) if spans]
    days: dict[str, list[date]] = {}
    for grain, first, last in (span for spans in buckets for span in spans):
        days.setdefault(grain, []).extend(_units(grain, first, last))
    params = {"team_id": team_id, "metric": metric, "dimension": dimension,
              **{f"days_{grain}": _day_list(dialect, units) for grain, units in days.items()},
              **{f"bucket_{k}": i for k, (i, _) in enumerate(held)},
              **{f"before_{k}": first for k, (_, first) in enumerate(held[1:])}}
    return (tuple(sorted(days)), len(held), dialect), params


def _day_list(dialect: str, days: list[date]) -> Any:
    """Days as one parameter (see `_one_of`): PostgreSQL's array, SQLite's JSON array of the
    days as it stores them (ISO text)."""
    return days if dialect == "postgresql" else json.dumps([d.isoformat() for d in days])


def _one_of(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """`column IN (the days bound as name)`, one parameter however many days: an IN of a
    parameter a day was rewritten for its length and had every day converted on each call,
    a tenth of a new question's time. The same search of the index either way."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(Date)))
    return column.in_(select(literal_column("value")).select_from(
        func.json_each(bindparam(name, type_=String))))


@lru_cache(maxsize=128)
def _sums(grains: tuple[str, ...], held: int, dialect: str) -> Select:
    rows, bucket = _rows(grains, held, dialect)
    return select(bucket, rows.c.dimension_value, func.sum(rows.c.numerator),
                  func.sum(rows.c.denominator)).group_by("bucket", rows.c.dimension_value)


@lru_cache(maxsize=128)
def _histograms(grains: tuple[str, ...], held: int, dialect: str) -> Select:
    rows, bucket = _rows(grains, held, dialect)
    return select(bucket, rows.c.dimension_value, cast(rows.c.histogram, Text))  # see _HISTOGRAM


def _rows(grains: tuple[str, ...], held: int, dialect: str):
    """The rows of the units of the grains: one select per grain, each a search of the
    unique index down to its days (an OR of grains made SQLite read every row of the metric
    instead: 7 ms against 0.1 at 1M leads), joined by UNION ALL; and each row's bucket.
    Built once per shape, its values bound: building it anew took half of a cold answer's
    time."""
    c = _SNAPSHOTS.c
    selects = [select(c.day, c.dimension_value, c.numerator, c.denominator, c.histogram)
               .where(c.team_id == bindparam("team_id"), c.metric == bindparam("metric"),
                      c.grain == grain, _one_of(dialect, c.day, f"days_{grain}"),
                      c.dimension == bindparam("dimension"))
               for grain in grains]
    rows = (selects[0] if len(selects) == 1 else union_all(*selects)).subquery()
    whens = [(rows.c.day < bindparam(f"before_{k}", type_=Date),
              bindparam(f"bucket_{k}", type_=Integer)) for k in range(held - 1)]
    last = bindparam(f"bucket_{held - 1}", type_=Integer)
    return rows, (case(*whens, else_=last) if whens else last).label("bucket")


@lru_cache(maxsize=4096)  # the same spans for every answer until the next day
def _units(grain: str, first: date, last: date) -> tuple[date, ...]:
    """The first days of the units of a grain from first to last."""
    if grain in ("day", "week"):
        step = 7 if grain == "week" else 1
        return tuple(first + timedelta(days=k) for k in range(0, (last - first).days + 1, step))
    units = []
    while first <= last:
        units.append(first)
        months = 12 if grain == "year" else 1
        first = date(first.year + (first.month + months - 1) // 12,
                     (first.month + months - 1) % 12 + 1, 1)
    return tuple(units)


def list_changed_days(session: Session, team_id: str, since: datetime | None, now: datetime,
                      tz: tzinfo) -> set[date]:
    """The local days additive metrics count rows at, of every row changed since `since` (of
    all rows when None): its days now, those it left (`MetricStaleInstant`), and those of a
    changed lead's deals (grouped by its segment and region) — and of open leads that fell
    due since then (breaches now)."""
    def changed(model):
        return [model.team_id == team_id] + ([model.updated_at >= since] if since else [])

    stmts = [select(t).where(*changed(Lead), t.is_not(None))
             for t in (Lead.routed_at, Lead.mql_at, Lead.accepted_at, Lead.rejected_at)]
    stmts += [select(Deal.closed_at).where(*changed(Deal), Deal.closed_at.is_not(None)),
              select(Lead.mql_at).join(Deal, Deal.lead_id == Lead.id)  # conversion
              .where(*changed(Deal), Lead.mql_at.is_not(None)),
              select(Deal.closed_at).join(Lead, Deal.lead_id == Lead.id)
              .where(*changed(Lead), Deal.closed_at.is_not(None)),
              select(MetricStaleInstant.at).where(
                  MetricStaleInstant.team_id == team_id,
                  *([MetricStaleInstant.recorded_at >= since] if since else [])),
              select(Customer.started_at).where(*changed(Customer)),
              select(Customer.churned_at).where(*changed(Customer),
                                                Customer.churned_at.is_not(None))]
    if since is not None:
        stmts.append(select(Lead.routed_at).where(
            Lead.team_id == team_id, Lead.sla_met.is_(None), Lead.sla_due_at >= since,
            Lead.sla_due_at < now, Lead.routed_at.is_not(None)))
    # Streamed: a first refresh reads millions of instants and keeps only their days.
    days = {t.astimezone(tz).date() for t in session.scalars(
        union_all(*stmts).subquery().select().execution_options(yield_per=20_000))}
    # a month's spend is spread over its local days (storage.metrics.spend_share): all of them
    months = session.scalars(select(Spend.month).where(*changed(Spend)).distinct())
    return days | {day for m in months for day in _days_of(m)}


def forget_stale_instants(session: Session, team_id: str, before: datetime) -> None:
    """The instants recorded before `before` (the last refresh's time): that refresh read them."""
    session.execute(delete(MetricStaleInstant).where(MetricStaleInstant.team_id == team_id,
                                                     MetricStaleInstant.recorded_at < before))


def _days_of(month: date) -> list[date]:
    first = month.replace(day=1)
    return [first + timedelta(days=k) for k in range((next_month(first) - first).days)]

