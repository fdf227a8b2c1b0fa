"""Metric queries: the numbers each metric of `bot.metrics.registry` is computed from.

Every query counts or sums in SQL over a half-open period `[start, end)` of aware UTC
datetimes and returns `{group key: numbers}`. With `by=None` there is one group, "".
Otherwise the key is the owner's Slack id or role ("unassigned" without an owner), or a
lead's source, segment, region or rejection reason ("unknown" when empty); a deal's
segment and region are its lead's, its source its own. Queries group by the key's *label*:
PostgreSQL would not match a repeated expression whose literal became two parameters.

Each statement is built once a query, grouping and database dialect (`_prepared`), with the
workspace and the period as bound parameters: a question reads several periods (its trend)
and a refresh every day, and building a select and its cache key costs more than SQLite
takes to answer it on a small store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Float,
    Numeric,
    Select,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from storage.db import read
from storage.models import ContentItem, ContentUse, Customer, Deal, Lead, Person, Spend

UNASSIGNED = "unassigned"
UNKNOWN = "unknown"
NOT_ICP = "not_icp"  # the rejection reason "not our ideal customer"
SPEND_TEAMS = ("marketing", "sales")  # as spend's CHECK constraint
DAY = timedelta(days=1)

# What each grouping reads: a column of the row, of its owner, or of a deal's lead.
KEYS: dict[type, dict[str, Any]] = {
    Lead: {"owner": Person.slack_id, "team": Person.role, "source": Lead.source,
           "segment": Lead.segment, "region": Lead.region, "reason": Lead.rejection_reason},
    Deal: {"owner": Person.slack_id, "team": Person.role, "source": Deal.source,
           "segment": Lead.segment, "region": Lead.region},
    Spend: {"team": Spend.team},
}


# Deals won or lost, in the SQL itself: a tuple's IN would be re-rendered each time it runs.
_CLOSED = Deal.outcome.in_([literal_column("'won'"), literal_column("'lost'")])
# Sales cycle's deals: won no earlier than created. Versions before intake refused a
# created_at after the closed_at stored such deals; a negative cycle is impossible, so
# they are left out, live and in the refresh alike (`metrics_each`).
_CYCLE_KNOWN = Deal.created_at <= Deal.closed_at
# the values a statement is run with (`_prepared`)
TEAM, START, END = bindparam("team_id"), bindparam("start"), bindparam("end")
PREPARED_MAX = 512  # statements kept: more than the queries × groupings × dialects below
_PREPARED: dict[tuple, Any] = {}


def _prepared(session: Session, key: tuple, build: Callable[[str], Any]) -> Any:
    """The statement `build(dialect name)` makes for `key` (the query and its grouping),
    built once a dialect (their SQL may differ: `_days_between`) and kept: a statement
    object also keeps its cache key, so running it again only binds its parameters. Threads
    may build one twice; either is the same."""
    dialect = session.get_bind().dialect.name
    stmt = _PREPARED.get((dialect, *key))
    if stmt is None:
        if len(_PREPARED) >= PREPARED_MAX:  # never, with the queries below; bounded anyway
            _PREPARED.clear()
        stmt = _PREPARED[(dialect, *key)] = build(dialect)
    return stmt


def _grouped(entity: type, by: str | None, *columns: Any) -> Select:
    """SELECT <key> AS grp, *columns FROM entity, grouped by the key (no grouping for by=None)."""
    stmt = _keyed(entity, by, *columns)
    return stmt if by is None else stmt.group_by("grp")


def _keyed(entity: type, by: str | None, *columns: Any) -> Select:
    """SELECT <key> AS grp, *columns FROM entity, with the join the key needs ('' for by=None)."""
    if by is None:
        return select(literal_column("''").label("grp"), *columns).select_from(entity)
    column = KEYS.get(entity, {}).get(by)
    if column is None:
        raise ValueError(f"{entity.__tablename__} cannot be grouped by {by!r}")
    owner = column.class_ is Person
    stmt = select(func.coalesce(column, UNASSIGNED if owner else UNKNOWN).label("grp"), *columns)
    stmt = stmt.select_from(entity)
    if owner:
        stmt = stmt.outerjoin(Person, entity.owner_id == Person.id)
    elif column.class_ is not entity:  # a deal's segment or region
        stmt = stmt.outerjoin(Lead, entity.lead_id == Lead.id)
    return stmt


def _rows(session: Session, stmt: Select, **params: Any) -> dict[str, tuple]:
    return {grp: tuple(rest) for grp, *rest in read(session, stmt, params)}


def _in_period(session: Session, key: tuple, build: Callable[[str], Select], team_id: str,
               start: datetime, end: datetime) -> dict[str, tuple]:
    """`_rows` of a prepared statement over TEAM, START and END."""
    return _rows(session, _prepared(session, key, build), team_id=team_id, start=start, end=end)


def _lead_counts(session: Session, key: str, by: str | None, team_id: str, start: datetime,
                 end: datetime, where: Callable[[], tuple]) -> dict[str, int]:
    rows = _in_period(session, (key, by), lambda _: _grouped(Lead, by, func.count()).where(
        *where()), team_id, start, end)
    return {k: n for k, (n,) in rows.items()}


def _histograms(entity: type, by: str | None, value: ColumnElement, *where: Any) -> Select:
    """How many rows have each value, rounded in SQL (see `_two_figures`), per group:
    rows of (group, rounded value, count)."""
    bucket = _two_figures(value).label("bucket")
    stmt = _grouped(entity, by, bucket, func.count()).where(value.is_not(None), *where)
    return stmt.group_by("bucket")


def _histogram_rows(session: Session, stmt: Select, **params: Any) -> dict[str, dict[float, int]]:
    histograms: dict[str, dict[float, int]] = {}
    for grp, rounded, count in read(session, stmt, params):
        histograms.setdefault(grp, {})[rounded] = count
    return histograms


def _medians(entity: type, by: str | None, value: ColumnElement, *where: Any) -> Select:
    """The exact median of the values per group: the middle one, or the mean of the two
    middle ones (ranked by a window function: both backends, no histogram, no rounding)."""
    rows = _keyed(entity, by, value.label("v")).where(value.is_not(None), *where).subquery()
    ranked = select(rows.c.grp, rows.c.v,
                    func.row_number().over(partition_by=rows.c.grp, order_by=rows.c.v).label("k"),
                    func.count().over(partition_by=rows.c.grp).label("n")).subquery()
    # ranks k from 1: the middle is (n + 1) // 2, and also n // 2 + 1 when n is even
    middle = select(ranked.c.grp, func.avg(ranked.c.v, type_=Float)).where(
        or_(ranked.c.k == (ranked.c.n + 1) // 2, ranked.c.k == ranked.c.n // 2 + 1)
    ).group_by(ranked.c.grp)
    return middle


def _two_figures(value: ColumnElement) -> ColumnElement:
    """Two significant figures, and tenths below 10: 4.56 -> 4.6, 37.4 -> 37, 123 -> 120, half
    away from zero on both backends. That is the precision answers show, and it keeps a
    histogram to about 200 values however many rows it counts, so a year of stored days
    and months adds up in milliseconds."""
    v = cast(value, Numeric)
    steps = [(v < 10, func.round(v, 1)), (v < 100, func.round(v, 0))]
    steps += [(v < 10 ** (n + 1), func.round(v / 10 ** (n - 1), 0) * 10 ** (n - 1))
              for n in (2, 3, 4, 5)]
    return cast(case(*steps, else_=func.round(v / 10 ** 5, 0) * 10 ** 5), Float)


def _within(column: Any, start: Any = START, end: Any = END) -> ColumnElement[bool]:
    return (column >= start) & (column < end)


def _days_between(dialect: str, a: Any, b: Any) -> ColumnElement:
    if dialect == "sqlite":  # julianday is a float: round to seconds
        return func.round((func.julianday(b) - func.julianday(a)) * 86400) / 86400
    return func.extract("epoch", b - a) / 86400


# ------------------------------------------------------------------ leads


def list_response_histograms(session: Session, team_id: str, start: datetime, end: datetime,
                             by: str | None = None, *, business: bool = False
                             ) -> dict[str, dict[float, int]]:
    """Minutes from routing to first touch (wall or business time) of leads routed in the
    period. A rejection also stops the SLA clock, but it is not a touch: left out."""
    minutes = Lead.business_minutes if business else Lead.response_minutes
    stmt = _prepared(session, ("response_histograms", by, business), lambda _: _histograms(
        Lead, by, minutes, Lead.team_id == TEAM, _within(Lead.routed_at),
        Lead.first_touch_at.is_not(None)))
    return _histogram_rows(session, stmt, team_id=team_id, start=start, end=end)


class ResponseFigures(NamedTuple):
    median: float | None
    p90: float | None
    business_median: float | None  # working hours only


def list_response_figures(session: Session, team_id: str, start: datetime, end: datetime,
                          by: str | None = None) -> dict[str, ResponseFigures]:
    """The exact median and p90 of `list_response_histograms`'s minutes per group, and the
    median of their business minutes: the median the mean of the middle one or two, a
    quantile interpolated between the two nearest ranks as `registry.quantile` reads a
    histogram. One statement ranks each group's rows twice (wall, business) by window
    functions and returns those at the ranks read: one scan and two sorts, where a
    statement a figure took three of each. Kept for the session: a grouped answer's value
    and its details read the same figures."""
    key = ("response_figures", team_id, start, end, by)
    if key not in session.info:
        rows = read(session, _prepared(session, ("response_figures", by),
                                       lambda _: _ranked_response_minutes(by)),
                    {"team_id": team_id, "start": start, "end": end})
        wall: dict[str, tuple[int, dict[int, float]]] = {}
        business: dict[str, tuple[int, dict[int, float]]] = {}
        for grp, n, k, v, n_b, k_b, b in rows:  # ranks from 1, the values' (NULLs last)
            if k <= n:
                wall.setdefault(grp, (n, {}))[1][k - 1] = v
            if k_b <= n_b:
                business.setdefault(grp, (n_b, {}))[1][k_b - 1] = b
        session.info[key] = {grp: ResponseFigures(
            median_of(*wall[grp]) if grp in wall else None,
            quantile_of(*wall[grp], 9) if grp in wall else None,
            quantile_of(*business[grp], 5) if grp in business else None)
            for grp in wall.keys() | business.keys()}
    return session.info[key]


def _ranked_response_minutes(by: str | None) -> Select:
    """(group, wall count, rank, minutes, business count, rank, business minutes) of the
    rows at the ranks `list_response_figures` reads: the middle, and those around the p90
    of wall minutes and the median of business minutes."""
    wall, business = Lead.response_minutes, Lead.business_minutes
    rows = _keyed(Lead, by, wall.label("v"), business.label("b")).where(
        Lead.team_id == TEAM, _within(Lead.routed_at), Lead.first_touch_at.is_not(None),
        or_(wall.is_not(None), business.is_not(None))).subquery()

    def ranked(column: Any) -> tuple[Any, Any]:
        return (func.count(column).over(partition_by=rows.c.grp),
                func.row_number().over(partition_by=rows.c.grp,
                                       order_by=column.asc().nulls_last()))
    (n, k), (n_b, k_b) = ranked(rows.c.v), ranked(rows.c.b)
    r = select(rows.c.grp, n.label("n"), k.label("k"), rows.c.v, n_b.label("n_b"),
               k_b.label("k_b"), rows.c.b).subquery()

    def near(k: Any, n: Any, tenths: int) -> Any:  # ranks from 1: below + 1 and below + 2
        return or_(k == (n - 1) * tenths // 10 + 1, k == (n - 1) * tenths // 10 + 2)
    middle = or_(r.c.k == (r.c.n + 1) // 2, r.c.k == r.c.n // 2 + 1)
    return select(r).where(or_(middle, near(r.c.k, r.c.n, 9), near(r.c.k_b, r.c.n_b, 5)))


def middle_ranks(n: int) -> tuple[int, int]:
    """The ranks (from 0) of the middle of n values: one twice when n is odd."""
    return (n - 1) // 2, n // 2


def quantile_ranks(n: int, tenths: int) -> tuple[int, int]:
    """The ranks (from 0) of n values that their `tenths`/10 quantile lies between."""
    below = (n - 1) * tenths // 10
    return below, min(below + 1, n - 1)


def median_of(n: int, at: dict[int, float]) -> float:
    """The median of n values, from those at its ranks (`at`: rank from 0 -> value)."""
    first, second = middle_ranks(n)
    return (at[first] + at[second]) / 2


def quantile_of(n: int, at: dict[int, float], tenths: int) -> float:
    """The `tenths`/10 quantile of n values, from those at its ranks, interpolated."""
    first, second = quantile_ranks(n, tenths)
    return at[first] + (at[second] - at[first]) * ((n - 1) * tenths % 10) / 10


def get_response_window(session: Session, team_id: str, start: datetime, end: datetime,
                        low: float, high: float, *, business: bool = False
                        ) -> tuple[int, int, list[float]]:
    """(how many, how many below `low`, the sorted values from `low` to `high`) of the
    minutes `list_response_figures` ranks (wall or business time): range scans of
    ix_leads_team_routed_touch, and a sort of the few values in the window only."""
    minutes = Lead.business_minutes if business else Lead.response_minutes

    def where() -> tuple:
        return (Lead.team_id == TEAM, _within(Lead.routed_at), Lead.first_touch_at.is_not(None),
                minutes.is_not(None))
    low_, high_ = bindparam("low"), bindparam("high")
    counts = _prepared(session, ("response_window_counts", business), lambda _: select(
        func.count(), func.count(case((minutes < low_, 1)))).where(*where()))
    window = _prepared(session, ("response_window", business), lambda _: select(minutes)
                       .where(*where(), minutes >= low_, minutes <= high_).order_by(minutes))
    params = {"team_id": team_id, "start": start, "end": end, "low": low, "high": high}
    total, below = read(session, counts, params).one()
    return total, below, list(read(session, window, params).scalars())


def list_sla_parts(session: Session, team_id: str, start: datetime, end: datetime,
                   by: str | None = None, *, now: datetime | None = None
                   ) -> dict[str, tuple[int, int]]:
    """(met, judged) of leads routed in the period with an SLA. Judged: the outcome recorded
    at the response (`sla_met`), or still open and due by `now` (a breach); open leads not
    yet due are left out. `now` is the data's as-of time, `end` unless given."""
    stmt = _prepared(session, ("sla_parts", by), lambda _: _grouped(
        Lead, by, func.count(case((Lead.sla_met.is_(True), 1))), func.count()
    ).where(Lead.team_id == TEAM, _within(Lead.routed_at), Lead.sla_due_at.is_not(None),
            or_(Lead.sla_met.is_not(None), Lead.sla_due_at <= bindparam("now"))))
    return _rows(session, stmt, team_id=team_id, start=start, end=end,
                 now=end if now is None else now)


def list_acceptance_parts(session: Session, team_id: str, start: datetime, end: datetime,
                          by: str | None = None) -> dict[str, tuple[int, int]]:
    """(accepted, decided) by each lead's standing decision, counted when it was made: a
    rejection at `rejected_at`, else an acceptance at `accepted_at`. A lead accepted and
    later rejected counts once, as rejected (so the parts of adjacent periods add up)."""
    # Two queries, not one with OR: each is then a range of ix_leads_team_decided.
    accepted = _lead_counts(session, "accepted", by, team_id, start, end, lambda: (
        Lead.team_id == TEAM, Lead.rejected_at.is_(None), _within(Lead.accepted_at)))
    rejected = list_rejection_counts(session, team_id, start, end, by)
    return {k: (accepted.get(k, 0), accepted.get(k, 0) + rejected.get(k, 0))
            for k in accepted.keys() | rejected.keys()
            if accepted.get(k, 0) + rejected.get(k, 0)}


def list_rejection_counts(session: Session, team_id: str, start: datetime, end: datetime,
                          by: str | None = None) -> dict[str, int]:
    return _lead_counts(session, "rejected", by, team_id, start, end,
                        lambda: (Lead.team_id == TEAM, _within(Lead.rejected_at)))


def list_not_icp_parts(session: Session, team_id: str, start: datetime, end: datetime,
                       by: str | None = None) -> dict[str, tuple[int, int]]:
    """(for not_icp, all) rejections in the period: how much of sales' pushback says marketing
    aims at the wrong customers."""
    return _in_period(session, ("not_icp_parts", by), lambda _: _grouped(
        Lead, by, func.count(case((Lead.rejection_reason == NOT_ICP, 1))), func.count()
    ).where(Lead.team_id == TEAM, _within(Lead.rejected_at)), team_id, start, end)


def list_conversion_parts(session: Session, team_id: str, start: datetime, end: datetime,
                          by: str | None = None) -> dict[str, tuple[int, int]]:
    """(converted, MQLs): leads that became MQL in the period, and those of them with a
    linked deal created at or after the MQL time."""
    def build(_: str) -> Select:
        converted = exists().where(Deal.lead_id == Lead.id, Deal.created_at >= Lead.mql_at)
        return _grouped(Lead, by, func.count(case((converted, 1))), func.count()).where(
            Lead.team_id == TEAM, _within(Lead.mql_at))
    return _in_period(session, ("conversion_parts", by), build, team_id, start, end)


def list_routed_counts(session: Session, team_id: str, start: datetime, end: datetime,
                       by: str | None = None) -> dict[str, int]:
    return _lead_counts(session, "routed", by, team_id, start, end,
                        lambda: (Lead.team_id == TEAM, _within(Lead.routed_at)))


# ------------------------------------------------------------------ deals


def list_win_parts(session: Session, team_id: str, start: datetime, end: datetime,
                   by: str | None = None) -> dict[str, tuple[int, int]]:
    """(won, won + lost) of deals closed in the period."""
    return _in_period(session, ("win_parts", by), lambda _: _grouped(
        Deal, by, func.count(case((Deal.outcome == "won", 1))), func.count()
    ).where(Deal.team_id == TEAM, _within(Deal.closed_at), _CLOSED), team_id, start, end)


def list_cycle_histograms(session: Session, team_id: str, start: datetime, end: datetime,
                          by: str | None = None) -> dict[str, dict[float, int]]:
    """Days from created to closed of deals won in the period (none closed before it was
    created: `_CYCLE_KNOWN`)."""
    stmt = _prepared(session, ("cycle_histograms", by), lambda dialect: _histograms(
        Deal, by, _days_between(dialect, Deal.created_at, Deal.closed_at),
        Deal.team_id == TEAM, _within(Deal.closed_at), Deal.outcome == "won", _CYCLE_KNOWN))
    return _histogram_rows(session, stmt, team_id=team_id, start=start, end=end)


def list_cycle_medians(session: Session, team_id: str, start: datetime, end: datetime,
                       by: str | None = None) -> dict[str, float]:
    """The exact median of `list_cycle_histograms`'s days, per group."""
    rows = _in_period(session, ("cycle_medians", by), lambda dialect: _medians(
        Deal, by, _days_between(dialect, Deal.created_at, Deal.closed_at),
        Deal.team_id == TEAM, _within(Deal.closed_at), Deal.outcome == "won", _CYCLE_KNOWN),
        team_id, start, end)
    return {k: median for k, (median,) in rows.items()}


def list_won_amounts(session: Session, team_id: str, start: datetime, end: datetime,
                     by: str | None = None) -> dict[str, tuple[float, float]]:
    """(from marketing, total) won amount of deals won in the period; deals without an
    amount add nothing."""
    rows = _in_period(session, ("won_amounts", by), lambda _: _grouped(
        Deal, by, func.sum(case((Deal.source == "marketing", Deal.amount)), type_=Float),
        func.sum(Deal.amount, type_=Float)
    ).where(Deal.team_id == TEAM, _within(Deal.closed_at), Deal.outcome == "won"),
        team_id, start, end)
    return {k: (m or 0.0, total or 0.0) for k, (m, total) in rows.items()}


# ------------------------------------------------------------------ customers, spend, content


def _active(at: Any) -> ColumnElement[bool]:
    """Started before `at` and not churned by then."""
    not_churned = Customer.churned_at.is_(None) | (Customer.churned_at >= at)
    return (Customer.started_at < at) & not_churned


def get_churn_parts(session: Session, team_id: str, start: datetime, end: datetime
                    ) -> tuple[int, int]:
    """(churned in the period, active at its start). A customer who started and churned
    within the period is churned too, as the definition reads. Active at the start is
    "started before it" less "churned before it" (ingest keeps started <= churned): two
    ranges of two indexes, where one condition over both columns would visit them all."""
    return (count_churned(session, team_id, start, end),
            _count_customers(session, "started_before", team_id, start, end,
                             lambda: Customer.started_at < START)
            - _count_customers(session, "churned_before", team_id, start, end,
                               lambda: Customer.churned_at < START))


def count_churned(session: Session, team_id: str, start: datetime, end: datetime) -> int:
    return _count_customers(session, "churned", team_id, start, end,
                            lambda: _within(Customer.churned_at))


def _count_customers(session: Session, key: str, team_id: str, start: datetime, end: datetime,
                     where: Callable[[], Any]) -> int:
    stmt = _prepared(session, ("customers", key), lambda _: select(func.count())
                     .select_from(Customer).where(Customer.team_id == TEAM, where()))
    return read(session, stmt, {"team_id": team_id, "start": start, "end": end}).scalar()


def get_active(session: Session, team_id: str, at: datetime) -> tuple[int, float | None]:
    """(customers active at `at`, their average MRR — those without one left out). Kept for
    the session: the periods of a trend meet at the same instants, each read once."""
    key = ("customers_active", team_id, at)
    if key not in session.info:
        at_ = bindparam("at")
        stmt = _prepared(session, ("customers_active",), lambda _: select(
            func.count(), func.avg(Customer.mrr, type_=Float)
        ).where(Customer.team_id == TEAM, _active(at_)))
        session.info[key] = tuple(read(session, stmt, {"team_id": team_id, "at": at}).one())
    return session.info[key]


def count_customers_started(session: Session, team_id: str, start: datetime, end: datetime) -> int:
    return _count_customers(session, "started", team_id, start, end,
                            lambda: _within(Customer.started_at))


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The instant `day` begins in `tz` (as `bot.metrics.grammar.midnight`, which periods
    are made with)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _local_days(at: datetime, since: date, tz: tzinfo) -> float:
    """Local days from the midnight `since` begins to `at`: whole at a local midnight, and
    a day of 23 or 25 hours is one day (a part of it, that part of its hours)."""
    day = at.astimezone(tz).date()
    # in UTC: the difference of two times of one zone would be of their wall clocks
    begin, end = (local_midnight(d, tz).astimezone(UTC) for d in (day, day + DAY))
    return (day - since).days + (at - begin) / (end - begin)


def spend_share(month: date, start: datetime, end: datetime, tz: tzinfo) -> float:
    """The share of a month's spend that falls in [start, end): the month's spend is spread
    evenly over its local days, so it is the days of the month inside the period over the
    days of the month (a part of a day counts as that part)."""
    first = month.replace(day=1)
    days = (next_month(first) - first).days
    inside = min(_local_days(end, first, tz), days) - max(_local_days(start, first, tz), 0)
    return max(inside, 0) / days


def spend_months(start: datetime, end: datetime, tz: tzinfo) -> tuple[date, date]:
    """[first, after) of the months whose days [start, end) may hold, in `tz`."""
    return (start.astimezone(tz).date().replace(day=1),
            next_month(end.astimezone(tz).date().replace(day=1)))


def spread_spend(rows: Iterable[tuple[str, date, float | None]], start: datetime,
                 end: datetime, tz: tzinfo) -> dict[str, float]:
    """Rows of (group, month, amount) as each group's spend in [start, end)."""
    spend: dict[str, float] = {}
    for grp, month, amount in rows:
        share = spend_share(month, start, end, tz)
        spend[grp] = spend.get(grp, 0.0) + (float(amount or 0) * share if share else 0.0)
    return spend


def list_spend(session: Session, team_id: str, start: datetime, end: datetime,
               by: str | None = None, *, tz: tzinfo = UTC) -> dict[str, float]:
    """Spend in the period, each month's spread evenly over its days in `tz` (the
    workspace's, as the period's); by team, both teams always."""
    rows = list_spend_months(session, team_id, *spend_months(start, end, tz), by)
    return spend_in(rows, start, end, by, tz)


def list_spend_months(session: Session, team_id: str, first: date, after: date,
                      by: str | None = None) -> list[tuple[str, date, float | None]]:
    """Each month's total per group from `first` to before `after`, in one order (so the
    floats add up alike wherever they are spread)."""
    stmt = _prepared(session, ("spend", by), lambda _: _grouped(
        Spend, by, Spend.month, func.sum(Spend.amount, type_=Float)
    ).where(Spend.team_id == TEAM, _within(Spend.month)).group_by(Spend.month)
        .order_by(Spend.month))
    return read(session, stmt, {"team_id": team_id, "start": first, "end": after}).all()


def spend_in(rows: Iterable[tuple[str, date, float | None]], start: datetime, end: datetime,
             by: str | None, tz: tzinfo) -> dict[str, float]:
    """The months' `rows` spread over [start, end): the whole's, or by team both teams."""
    spend = ({"": 0.0} if by is None else {}) | spread_spend(rows, start, end, tz)
    return dict.fromkeys(SPEND_TEAMS, 0.0) | spend if by == "team" else spend


def get_content_parts(session: Session, team_id: str, start: datetime, end: datetime
                      ) -> tuple[int, int]:
    """(used in the period, existing at its end) content items; a use is by sales by contract.
    Each item is asked whether it has a use in the period (one search of
    ix_content_uses_team_content_used): counting the distinct items of the period's uses
    read every use, a year's in 8-13 ms at 10,000."""
    def build(_: str) -> Select:
        existing = (ContentItem.team_id == TEAM) & (ContentItem.created_at < END)
        used_then = select(ContentUse.id).where(
            ContentUse.team_id == TEAM, ContentUse.content_id == ContentItem.id,
            _within(ContentUse.used_at)).exists()
        used = select(func.count()).select_from(ContentItem).where(existing, used_then) \
            .scalar_subquery()
        items = select(func.count()).select_from(ContentItem).where(existing).scalar_subquery()
        return select(used, items)
    return tuple(read(session, _prepared(session, ("content_parts",), build),
                                 {"team_id": team_id, "start": start, "end": end}).one())


def list_won_totals(session: Session, team_id: str, start: datetime, end: datetime,
                    by: str | None = None) -> dict[str, tuple[float, int]]:
    """(won amount, won deals) of deals won in the period."""
    rows = _in_period(session, ("won_totals", by), lambda _: _grouped(
        Deal, by, func.sum(Deal.amount, type_=Float), func.count()
    ).where(Deal.team_id == TEAM, _within(Deal.closed_at), Deal.outcome == "won"),
        team_id, start, end)
    return {k: (total or 0.0, n) for k, (total, n) in rows.items()}


def get_customer_moves(session: Session, team_id: str, start: datetime, end: datetime
                       ) -> tuple[int, int]:
    """(started less churned, churned) customers in the period: summed over the days from
    the first, the first number is how many are active at the end."""
    def build(_: str) -> Select:
        started, churned = _moves(func.count())
        return select(started - churned, churned)
    return tuple(read(session, _prepared(session, ("customer_moves",), build),
                                 {"team_id": team_id, "start": start, "end": end}).one())


def get_mrr_moves(session: Session, team_id: str, start: datetime, end: datetime
                  ) -> tuple[float, int]:
    """(MRR, customers with one) of those started in the period less those churned in it:
    summed over the days from the first, those of the customers active at the end."""
    def build(_: str) -> Select:
        mrr = _moves(func.coalesce(func.sum(Customer.mrr, type_=Float), 0.0))
        paying = _moves(func.count(Customer.mrr))
        return select(mrr[0] - mrr[1], paying[0] - paying[1])
    return tuple(read(session, _prepared(session, ("mrr_moves",), build),
                                 {"team_id": team_id, "start": start, "end": end}).one())


def _moves(column: Any) -> tuple[Any, Any]:
    """`column` over the customers started in the period, and over those churned in it."""
    return tuple(select(column).where(Customer.team_id == TEAM, _within(at)).scalar_subquery()
                 for at in (Customer.started_at, Customer.churned_at))
