"""The queries of `storage.metrics` that a metrics refresh stores, over many periods at once.

Each takes `periods`, a list of half-open [start, end) of aware UTC datetimes (the
refresh's: a run of consecutive local days, whose boundaries the caller computes in the
workspace's timezone, so a DST day is 23 or 25 hours), and returns one `{group key:
numbers}` per period, equal to what the query of the same name in `storage.metrics`
returns for that period alone. The periods are the rows (i, since, until) of a CTE; a row
of the facts joins the period that holds its instant, and the statement groups by period
and key: a month of days is one statement a metric and grouping, where a query of each
day was tens of statements a day. The where clauses are the live queries' own, with the
period's bounds for theirs, plus the range of all the periods (an index range, whichever
way the planner joins).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Float,
    Integer,
    Select,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from storage.metrics import (
    _CYCLE_KNOWN,
    NOT_ICP,
    _days_between,
    _keyed,
    _two_figures,
    _within,
    list_spend_months,
    spend_in,
    spend_months,
)
from storage.models import Customer, Deal, Lead
from storage.types import UTCDateTime

Period = tuple[datetime, datetime]


def _table(bounds: list[tuple[Any, Any]], type_: Any) -> CTE:
    """The periods as the rows (i, since, until) of a CTE. MATERIALIZED on PostgreSQL: the
    planner then joins its few rows to index ranges, once."""
    rows = [select(literal(i, Integer).label("i"), literal(a, type_).label("since"),
                   literal(b, type_).label("until")) for i, (a, b) in enumerate(bounds)]
    table = union_all(*rows) if len(rows) > 1 else rows[0]
    return table.cte("periods").prefix_with("MATERIALIZED", dialect="postgresql")


def _held(column: Any, periods: CTE, bounds: list[tuple[Any, Any]]) -> list[ColumnElement]:
    """`column` in the period it joins, and in the range of all of them."""
    return [column >= min(a for a, _ in bounds), column < max(b for _, b in bounds),
            _within(column, periods.c.since, periods.c.until)]


def _grouped(periods: CTE, entity: type, by: str | None, *columns: Any) -> Select:
    """SELECT <key> AS grp, i, *columns FROM entity, periods, grouped by period and key."""
    stmt = _keyed(entity, by, periods.c.i, *columns)
    return stmt.group_by(periods.c.i) if by is None else stmt.group_by(periods.c.i, "grp")


def _rows(session: Session, count: int, by: str | None, stmt: Select, empty: tuple
          ) -> list[dict[str, tuple]]:
    """Each period's rows by key; ungrouped, a period without any has `empty` (the live
    query's aggregate over no rows)."""
    rows: list[dict[str, tuple]] = [{} for _ in range(count)]
    for grp, i, *rest in session.execute(stmt):
        rows[i][grp] = tuple(rest)
    if by is None:
        for each in rows:
            each.setdefault("", empty)
    return rows


def _lead_counts(session: Session, periods: list[Period], by: str | None, at: Any,
                 *where: Any) -> list[dict[str, int]]:
    t = _table(periods, UTCDateTime())
    rows = _rows(session, len(periods), by,
                 _grouped(t, Lead, by, func.count()).where(*where, *_held(at, t, periods)), (0,))
    return [{k: n for k, (n,) in each.items()} for each in rows]


def _histograms(session: Session, periods: list[Period], entity: type, by: str | None,
                value: ColumnElement, at: Any, *where: Any) -> list[dict[str, dict[float, int]]]:
    t = _table(periods, UTCDateTime())
    bucket = _two_figures(value).label("bucket")
    stmt = _grouped(t, entity, by, bucket, func.count()).where(
        value.is_not(None), *where, *_held(at, t, periods))
    histograms: list[dict[str, dict[float, int]]] = [{} for _ in periods]
    for grp, i, rounded, count in session.execute(stmt.group_by("bucket")):
        histograms[i].setdefault(grp, {})[rounded] = count
    return histograms


# ------------------------------------------------------------------ leads


def list_response_histograms(session: Session, team_id: str, periods: list[Period],
                             by: str | None = None, *, business: bool = False
                             ) -> list[dict[str, dict[float, int]]]:
    minutes = Lead.business_minutes if business else Lead.response_minutes
    return _histograms(session, periods, Lead, by, minutes, Lead.routed_at,
                       Lead.team_id == team_id, Lead.first_touch_at.is_not(None))


def list_sla_parts(session: Session, team_id: str, periods: list[Period], by: str | None = None,
                   *, now: datetime | None = None) -> list[dict[str, tuple[int, int]]]:
    t = _table(periods, UTCDateTime())
    judged = or_(Lead.sla_met.is_not(None), Lead.sla_due_at <= (t.c.until if now is None else now))
    stmt = _grouped(t, Lead, by, func.count(case((Lead.sla_met.is_(True), 1))), func.count())
    return _rows(session, len(periods), by, stmt.where(
        Lead.team_id == team_id, *_held(Lead.routed_at, t, periods),
        Lead.sla_due_at.is_not(None), judged), (0, 0))


def list_acceptance_parts(session: Session, team_id: str, periods: list[Period],
                          by: str | None = None) -> list[dict[str, tuple[int, int]]]:
    accepted = _lead_counts(session, periods, by, Lead.accepted_at, Lead.team_id == team_id,
                            Lead.rejected_at.is_(None))
    rejected = _lead_counts(session, periods, by, Lead.rejected_at, Lead.team_id == team_id)
    return [{k: (a.get(k, 0), a.get(k, 0) + r.get(k, 0)) for k in a.keys() | r.keys()
             if a.get(k, 0) + r.get(k, 0)} for a, r in zip(accepted, rejected, strict=True)]


def list_rejection_counts(session: Session, team_id: str, periods: list[Period],
                          by: str | None = None) -> list[dict[str, int]]:
    return _lead_counts(session, periods, by, Lead.rejected_at, Lead.team_id == team_id)


def list_not_icp_parts(session: Session, team_id: str, periods: list[Period],
                       by: str | None = None) -> list[dict[str, tuple[int, int]]]:
    t = _table(periods, UTCDateTime())
    stmt = _grouped(t, Lead, by, func.count(case((Lead.rejection_reason == NOT_ICP, 1))),
                    func.count())
    return _rows(session, len(periods), by, stmt.where(
        Lead.team_id == team_id, *_held(Lead.rejected_at, t, periods)), (0, 0))


def list_conversion_parts(session: Session, team_id: str, periods: list[Period],
                          by: str | None = None) -> list[dict[str, tuple[int, int]]]:
    t = _table(periods, UTCDateTime())
    converted = exists().where(Deal.lead_id == Lead.id, Deal.created_at >= Lead.mql_at)
    stmt = _grouped(t, Lead, by, func.count(case((converted, 1))), func.count())
    return _rows(session, len(periods), by, stmt.where(
        Lead.team_id == team_id, *_held(Lead.mql_at, t, periods)), (0, 0))


def list_routed_counts(session: Session, team_id: str, periods: list[Period],
                       by: str | None = None) -> list[dict[str, int]]:
    return _lead_counts(session, periods, by, Lead.routed_at, Lead.team_id == team_id)


# ------------------------------------------------------------------ deals


def list_win_parts(session: Session, team_id: str, periods: list[Period],
                   by: str | None = None) -> list[dict[str, tuple[int, int]]]:
    t = _table(periods, UTCDateTime())
    stmt = _grouped(t, Deal, by, func.count(case((Deal.outcome == "won", 1))), func.count())
    return _rows(session, len(periods), by, stmt.where(
        Deal.team_id == team_id, *_held(Deal.closed_at, t, periods),
        Deal.outcome.in_(("won", "lost"))), (0, 0))


def list_cycle_histograms(session: Session, team_id: str, periods: list[Period],
                          by: str | None = None) -> list[dict[str, dict[float, int]]]:
    days = _days_between(session.get_bind().dialect.name, Deal.created_at, Deal.closed_at)
    return _histograms(session, periods, Deal, by, days, Deal.closed_at,
                       Deal.team_id == team_id, Deal.outcome == "won", _CYCLE_KNOWN)


def list_won_amounts(session: Session, team_id: str, periods: list[Period],
                     by: str | None = None) -> list[dict[str, tuple[float, float]]]:
    marketing = func.sum(case((Deal.source == "marketing", Deal.amount)), type_=Float)
    rows = _won(session, team_id, periods, by, (marketing, func.sum(Deal.amount, type_=Float)),
                (None, None))
    return [{k: (m or 0.0, total or 0.0) for k, (m, total) in each.items()} for each in rows]


def list_won_totals(session: Session, team_id: str, periods: list[Period],
                    by: str | None = None) -> list[dict[str, tuple[float, int]]]:
    rows = _won(session, team_id, periods, by, (func.sum(Deal.amount, type_=Float), func.count()),
                (None, 0))
    return [{k: (total or 0.0, n) for k, (total, n) in each.items()} for each in rows]


def _won(session: Session, team_id: str, periods: list[Period], by: str | None,
         columns: tuple, empty: tuple) -> list[dict[str, tuple]]:
    """`columns` over the deals won in each period, by the deals' close."""
    t = _table(periods, UTCDateTime())
    return _rows(session, len(periods), by, _grouped(t, Deal, by, *columns).where(
        Deal.team_id == team_id, *_held(Deal.closed_at, t, periods), Deal.outcome == "won"),
        empty)


# ------------------------------------------------------------------ customers, spend


def count_customers_started(session: Session, team_id: str, periods: list[Period]) -> list[int]:
    t = _table(periods, UTCDateTime())
    counts = [0] * len(periods)
    for i, n in session.execute(select(t.c.i, func.count()).select_from(Customer).where(
            Customer.team_id == team_id, *_held(Customer.started_at, t, periods))
            .group_by(t.c.i)):
        counts[i] = n
    return counts


def list_spend(session: Session, team_id: str, periods: list[Period], by: str | None = None,
               *, tz: tzinfo = UTC) -> list[dict[str, float]]:
    """Spend in each period, each month's spread over its local days (`storage.metrics`'s
    `list_spend`): the months of all the periods read once, each period's share added up
    from them (a few rows: a month per team)."""
    first = min(spend_months(a, b, tz)[0] for a, b in periods)
    after = max(spend_months(a, b, tz)[1] for a, b in periods)
    rows = list_spend_months(session, team_id, first, after, by)
    return [spend_in(rows, a, b, by, tz) for a, b in periods]


def get_customer_moves(session: Session, team_id: str, periods: list[Period]
                       ) -> list[tuple[int, int]]:
    """(started less churned, churned) customers in each period: two counts of an index
    range a period, as the live query's."""
    t = _table(periods, UTCDateTime())
    started, churned = _moves(team_id, t.c.since, t.c.until, func.count())
    return _whole(session, len(periods), select(t.c.i, started - churned, churned))


def get_mrr_moves(session: Session, team_id: str, periods: list[Period]
                  ) -> list[tuple[float, int]]:
    t = _table(periods, UTCDateTime())
    mrr = _moves(team_id, t.c.since, t.c.until,
                 func.coalesce(func.sum(Customer.mrr, type_=Float), 0.0))
    paying = _moves(team_id, t.c.since, t.c.until, func.count(Customer.mrr))
    return _whole(session, len(periods), select(t.c.i, mrr[0] - mrr[1], paying[0] - paying[1]))


def _moves(team_id: str, since: Any, until: Any, column: Any) -> tuple[Any, Any]:
    """`column` over the customers started in the period, and over those churned in it: the
    live query's subqueries, on the period's bounds."""
    return tuple(select(column).where(Customer.team_id == team_id, _within(at, since, until))
                 .scalar_subquery() for at in (Customer.started_at, Customer.churned_at))


def _whole(session: Session, count: int, stmt: Select) -> list[tuple]:
    rows: list[tuple] = [()] * count
    for i, *numbers in session.execute(stmt):
        rows[i] = tuple(numbers)
    return rows
