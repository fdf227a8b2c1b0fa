"""Every metric of PRODUCT.md "Metrics", defined once: its words, its unit, and how it is computed.

A metric is computed in two steps: `parts` (numbers per group, counted in SQL by
`storage.metrics`) and `value` (the finished number, `None` when there is no data). For an
additive metric the parts of adjacent periods add up, so daily snapshots can be stored as
parts and merged. Churn, CLTV and revenue growth are not additive, but `derive` computes
them from sums that are (`SERIES`, stored the same way): growth compares two periods'
won amounts, and customers active at an instant are those started before it less those
churned before it. Content utilization is computed live. Response time's `details` (its
p90, and its median in business time) come from histograms stored the same way: its own,
and a series of business minutes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from types import MappingProxyType
from typing import ClassVar, NamedTuple

from sqlalchemy.orm import Session

from bot.metrics.grammar import DIMENSIONS
from storage import metrics as queries
from storage import metrics_each

MONTH = timedelta(days=365.25 / 12)  # an average month: a period not of whole months
EVER = datetime(1, 1, 2, tzinfo=UTC)  # before any data: what "before an instant" sums from
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
FORMATS = {"ratio": "{:.0%}", "minutes": "{:.0f} min", "days": "{:.1f} days", "count": "{:,.0f}"}
# a median read from two-figure histograms: the decimals its unit shows at most, and the unit
SHOWN = {"minutes": (0, " min"), "days": (1, " days")}


EMPTY: Mapping[float, int] = MappingProxyType({})


@dataclass(frozen=True)
class Parts:
    """What a metric's value is computed from, for one group over one period. Values are
    counted in the histogram to two significant figures (rounded in SQL), so merging the
    histograms of days gives exactly the histogram of the whole period."""

    numerator: float = 0.0
    denominator: float = 0.0
    histogram: Mapping[float, int] = field(default_factory=lambda: EMPTY)  # value -> count

    def __post_init__(self) -> None:
        """A histogram given as a dict is copied, never shared with its giver; one given
        read-only (another Parts', or a new one wrapped by its maker) is kept as it is: an
        answer makes dozens of Parts, most of them without a histogram."""
        if not isinstance(self.histogram, MappingProxyType):
            object.__setattr__(self, "histogram",
                               MappingProxyType(dict(self.histogram)) if self.histogram else EMPTY)

    def __add__(self, other: Parts) -> Parts:
        return Parts.total((self, other))

    @staticmethod
    def total(parts: Iterable[Parts]) -> Parts:
        """The parts added up, their histograms into one (summing forty owners' histograms
        pairwise copied the growing sum forty times)."""
        parts = list(parts)
        if len(parts) == 1:  # nothing to add (Parts never change)
            return parts[0]
        numerator = denominator = 0.0
        histogram: Counter = Counter()
        for p in parts:
            numerator += p.numerator
            denominator += p.denominator
            histogram.update(p.histogram)
        return Parts(numerator, denominator, MappingProxyType(histogram))


Interval = tuple[datetime, datetime]
# parts(session, team_id, start, end, by, *, now, gross_margin, tz) -> {group key: Parts};
# tz is the workspace's timezone, whose local days and months periods are made of
PartsFn = Callable[..., dict[str, Parts]]
# derive(totals, periods, by, gross_margin, tz) -> [{group key: Parts} per period], equal to
# `parts` of each period; totals(series, instants, by) sums a series between instants
Derive = Callable[..., list[dict[str, Parts]]]
# each(session, team_id, periods, by, *, now, gross_margin, tz) -> [{group key: Parts} per
# period]: `parts` of each of many periods (pairs of instants) at once, as a refresh stores them
EachFn = Callable[..., list[dict[str, Parts]]]
# exact(session, team_id, start, end, by, *, guide) -> {group key: value}; `guide` is the
# period's two-figure histogram (ungrouped), where the middle values are, give or take 5 %
ExactFn = Callable[..., dict[str, float]]


# histogram(metric or series) -> its two-figure histogram over the period, for the whole
# workspace or one group (stored, as a median's value is read)
Histogram = Callable[..., Mapping[float, int]]


class Details(NamedTuple):
    """More numbers of a median metric over a period than its value, named as
    `alignbot query --json` prints them: `read(histogram)` from the two-figure histograms
    (the whole workspace's, or one group's), `exact(session, team_id, start, end,
    histogram)` the whole workspace's from the rows (guided by them), and `exact_by(session,
    team_id, start, end, by)` each group's from the rows, for the answers that are exact."""

    read: Callable[[Histogram], dict[str, float | None]]
    exact: Callable[[Session, str, datetime, datetime, Histogram], dict[str, float | None]]
    exact_by: Callable[[Session, str, datetime, datetime, str],
                       dict[str, dict[str, float | None]]]


@dataclass(frozen=True)
class Metric:
    """One metric: its words, how to show it, and `parts` then `value` to compute it."""

    key: str
    label: str
    synonyms: tuple[str, ...]
    definition: str  # shown to users
    unit: str  # ratio | minutes | days | money | count
    better: str  # higher | lower
    dimensions: tuple[str, ...]  # the group-bys it supports
    additive: bool  # parts over [a, c) == parts over [a, b) + parts over [b, c)
    parts: PartsFn
    value: Callable[[Parts], float | None]
    default_by: str | None = None  # the grouping an answer shows when none is asked
    # a median's exact value per group, from the rows (the histogram rounds them): what
    # answers that people check against their CRM use (`alignbot query`, exports, the gap)
    exact: ExactFn | None = None
    # the metric's parts from stored sums, for metrics that are not additive; see `Derive`
    derive: Derive | None = None
    # `parts` of many periods in one statement a query, for an additive metric: what the
    # refresh stores; see `EachFn`
    each: EachFn | None = None
    # per grouping, the groups `parts` lists even when they have no data (CAC's two teams):
    # the snapshots store no row for nothing, so what reads them adds these
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    # more of the metric than its value, for the whole workspace (response time's p90);
    # see `Details`
    details: Details | None = None

    @property
    def median(self) -> bool:
        """Computed from a histogram of values rather than from sums."""
        return self.value is _median

    def format(self, value: float | None, currency: str = "USD", *,
               approximate: bool = False) -> str:
        """48%, 37 min, 12.5 days, $1,234, 1,234; "—" for no value. `approximate`: a median
        read from two-figure histograms (see `Parts`) shows no digit they do not hold: two
        significant figures (tenths below 10) and no trailing ".0" — 52.76 days is "53
        days", 123 days "120 days", 4.5 days "4.5 days"."""
        if value is None:
            return "—"
        if self.unit == "money":
            symbol = SYMBOLS.get(currency)
            return f"{symbol}{value:,.0f}" if symbol else f"{value:,.0f} {currency}"
        if approximate and self.median:
            decimals, unit = SHOWN[self.unit]
            return f"{self.shown(value):.{decimals}f}".removesuffix(".0") + unit
        return FORMATS[self.unit].format(value)

    def shown(self, value: float) -> float:
        """A median read from two-figure histograms, as `format(approximate=True)` shows it."""
        return two_figures(value, SHOWN[self.unit][0])


def two_figures(value: float, decimals: int = 1) -> float:
    """What a two-figure histogram knows of a value: two significant figures, and no more
    than `decimals` (tenths, as the histograms count below 10), half away from zero as
    `storage.metrics._two_figures` rounds (123 -> 120, 52.76 -> 53, 4.56 -> 4.6). A median
    between two counted values (46 and 47 -> 46.5) is read the same way: 47."""
    exact = Decimal(repr(value))
    places = min(decimals, 1 - exact.adjusted())
    return float(exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)) + 0.0  # not -0


def quantile(histogram: Mapping[float, int], q: float) -> float | None:
    """The q-quantile, interpolated between the two nearest ranks (numpy's default)."""
    n = sum(histogram.values())
    if not n:
        return None
    rank = (n - 1) * q
    below = int(rank)
    low, high = _nth(histogram, below), _nth(histogram, min(below + 1, n - 1))
    return low + (high - low) * (rank - below)


def _nth(histogram: Mapping[float, int], k: int) -> float:
    """The k-th smallest value (from 0)."""
    for value in sorted(histogram):
        k -= histogram[value]
        if k < 0:
            return value
    raise IndexError(k)


# ------------------------------------------------------------------ values


def _share(p: Parts) -> float | None:
    return p.numerator / p.denominator if p.denominator else None


def _count(p: Parts) -> float | None:
    return p.numerator or None  # nothing happened: no data, not a measured zero


def _median(p: Parts) -> float | None:
    return quantile(p.histogram, 0.5)


def _growth(p: Parts) -> float | None:
    return p.numerator / p.denominator - 1 if p.denominator else None


def _cost(p: Parts) -> float | None:
    return p.numerator / p.denominator if p.numerator and p.denominator else None  # no spend yet


def _response_median(session: Session, team_id: str, start: datetime, end: datetime,
                     by: str | None = None, *, guide: Mapping[float, int] | None = None
                     ) -> dict[str, float]:
    """Exact. With a guide, only the values around the middle are read and sorted: the
    histogram says where they lie (rounding moves a value by at most 5 %, and tenths), and
    a count of the values below says which ranks they hold. A guide the rows have moved
    away from (a refresh behind) finds its ranks outside the window: then all are ranked."""
    found = _guided(session, team_id, start, end, guide, queries.middle_ranks) \
        if by is None and guide else None
    if found is not None:
        return {"": queries.median_of(*found)}
    return {k: figures.median for k, figures in
            queries.list_response_figures(session, team_id, start, end, by).items()
            if figures.median is not None}


def _guided(session: Session, team_id: str, start: datetime, end: datetime,
            guide: Mapping[float, int], ranks: Callable[[int], tuple[int, int]], *,
            business: bool = False) -> tuple[int, dict[int, float]] | None:
    """(how many minutes, those at the `ranks` of that many by rank), reading and sorting
    only the values around where the guide (the period's two-figure histogram) puts those
    ranks: rounding moves a value by at most 5 %, and tenths, and a count of the values
    below the window says which ranks it holds. None when the rows have moved away from
    the guide (a refresh behind): the ranks fall outside the window."""
    first, second = ranks(sum(guide.values()))
    low, high = _nth(guide, first) * 0.94 - 0.1, _nth(guide, second) * 1.06 + 0.1
    total, below, values = queries.get_response_window(session, team_id, start, end, low,
                                                       high, business=business)
    at = {below + i: v for i, v in enumerate(values)}
    return (total, at) if total and all(r in at for r in ranks(total)) else None


def _unguided(query) -> ExactFn:
    return lambda session, team_id, start, end, by=None, **_: query(session, team_id, start,
                                                                    end, by)


# ------------------------------------------------------------------ parts


def _adapt(query, make: Callable[..., Parts]) -> PartsFn:
    """A parts function from a storage query of (session, team_id, start, end, by)."""
    return lambda session, team_id, start, end, by=None, **_: {
        k: make(v) for k, v in query(session, team_id, start, end, by).items()}


def _pair(numbers: tuple[float, float]) -> Parts:
    return Parts(*numbers)


def _histogram(histogram: Mapping[float, int]) -> Parts:
    return Parts(histogram=histogram)


def _whole(query) -> PartsFn:
    """Parts of a metric without dimensions, from a query of (numerator, denominator)."""
    return lambda session, team_id, start, end, by=None, **_: {
        "": Parts(*query(session, team_id, start, end))}


def _sla_parts(session: Session, team_id: str, start: datetime, end: datetime,
               by: str | None = None, *, now: datetime | None = None, **_) -> dict[str, Parts]:
    rows = queries.list_sla_parts(session, team_id, start, end, by, now=now)
    return {k: _pair(numbers) for k, numbers in rows.items()}


def _growth_parts(session: Session, team_id: str, start: datetime, end: datetime,
                  by: str | None = None, *, tz: tzinfo = UTC, **_) -> dict[str, Parts]:
    """Won amount of the period over that of the previous period of equal length."""
    current = queries.list_won_amounts(session, team_id, start, end, by)
    before = queries.list_won_amounts(session, team_id, previous_start(start, end, tz), start,
                                      by)
    return {k: Parts(current.get(k, (0, 0))[1], before.get(k, (0, 0))[1])
            for k in current.keys() | before.keys()}


def _cac_parts(session: Session, team_id: str, start: datetime, end: datetime,
               by: str | None = None, *, tz: tzinfo = UTC, **_) -> dict[str, Parts]:
    """Spend (each month's spread over its days in `tz`) over customers started."""
    customers = queries.count_customers_started(session, team_id, start, end)
    return {k: Parts(spend, customers)
            for k, spend in queries.list_spend(session, team_id, start, end, by, tz=tz).items()}


def previous_start(start: datetime, end: datetime, tz: tzinfo) -> datetime:
    """Where the period of equal length just before [start, end) begins: as many days and
    hours earlier on `tz`'s wall clocks, so that a period of local days follows one of
    local days, from midnight, whichever of them a change of clocks falls in. In elapsed
    time (instants in UTC, or fixed offsets) a week across one is 167 or 169 hours, and the
    week before it would begin at 01:00, or at 23:00 the evening before."""
    first, after = start.astimezone(tz), end.astimezone(tz)
    return (first.replace(tzinfo=None) - _wall_length(first, after)).replace(tzinfo=tz)


def _wall_length(first: datetime, after: datetime) -> timedelta:
    """after - first on their wall clocks (both of one zone), as local days count: Python
    subtracts times of one tzinfo by their wall clocks, but of two (UTC and a zone, fixed
    offsets) by their instants, so the same period would measure differently."""
    return after.replace(tzinfo=None) - first.replace(tzinfo=None)


def month_length(start: datetime, end: datetime, tz: tzinfo) -> float:
    """The period's length in months: its number of calendar months when it is whole
    months in `tz` (from a month's first day to a month's end: February is 1, a quarter
    3, a year 12), else its local days / 30.4375 (an average month; a day of 23 or 25
    hours is one, as a period's days are counted everywhere)."""
    first, after = start.astimezone(tz), end.astimezone(tz)
    # each a local month's first midnight (instants compared: a zone's wall clocks may skip it)
    if all(t.astimezone(UTC) == datetime(t.year, t.month, 1, tzinfo=tz) for t in (first, after)):
        return (after.year - first.year) * 12 + after.month - first.month
    return _wall_length(first, after) / MONTH


def _cltv_parts(session: Session, team_id: str, start: datetime, end: datetime,
                by: str | None = None, *, gross_margin: float = 0.8, tz: tzinfo = UTC,
                **_) -> dict[str, Parts]:
    """ARPA × gross margin over monthly churn; no parts when nobody was active."""
    churned = queries.count_churned(session, team_id, start, end)
    active, _ = queries.get_active(session, team_id, start)
    _, arpa = queries.get_active(session, team_id, end)
    if arpa is None or not active:
        return {}
    return {"": Parts(arpa * gross_margin, churned / active / month_length(start, end, tz))}


# ------------------------------------------------------------------ parts of many periods


def _adapt_each(query, make: Callable[..., Parts]) -> EachFn:
    """An `each` function from a `storage.metrics_each` query of (session, team_id, periods, by)."""
    return lambda session, team_id, periods, by=None, **_: [
        {k: make(v) for k, v in each.items()} for each in query(session, team_id, periods, by)]


def _whole_each(query) -> EachFn:
    return lambda session, team_id, periods, by=None, **_: [
        {"": Parts(*numbers)} for numbers in query(session, team_id, periods)]


def _sla_each(session: Session, team_id: str, periods: list[Interval], by: str | None = None,
              *, now: datetime | None = None, **_) -> list[dict[str, Parts]]:
    return [{k: _pair(numbers) for k, numbers in each.items()}
            for each in metrics_each.list_sla_parts(session, team_id, periods, by, now=now)]


def _cac_each(session: Session, team_id: str, periods: list[Interval], by: str | None = None,
              *, tz: tzinfo = UTC, **_) -> list[dict[str, Parts]]:
    customers = metrics_each.count_customers_started(session, team_id, periods)
    return [{k: Parts(spend, started) for k, spend in each.items()} for each, started in zip(
        metrics_each.list_spend(session, team_id, periods, by, tz=tz), customers, strict=True)]


def parts_each(metric: Metric | Series, session: Session, team_id: str,
               periods: list[Interval], by: str | None, *, now: datetime | None = None,
               gross_margin: float = 0.8, tz: tzinfo = UTC) -> list[dict[str, Parts]]:
    """The metric's parts of each period: its `each` for many, else its `parts` one period
    at a time (a statement built once, where `each`'s depends on the periods)."""
    if metric.each is not None and len(periods) > 1:
        return metric.each(session, team_id, periods, by, now=now, gross_margin=gross_margin,
                           tz=tz)
    return [metric.parts(session, team_id, start, end, by, now=now, gross_margin=gross_margin,
                         tz=tz)
            for start, end in periods]


# ------------------------------------------------------------------ derived from sums


@dataclass(frozen=True)
class Series:
    """A sum the refresh stores per day like an additive metric's parts, that a metric which
    is not additive is derived from; never asked for itself."""

    key: str
    dimensions: tuple[str, ...]
    parts: PartsFn
    each: EachFn
    median: bool = False  # a histogram of values (stored as one), not sums
    additive: ClassVar[bool] = True
    groups: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})  # only with data

    def value(self, parts: Parts) -> None:
        return None  # stored as its numerator and denominator, or its histogram


class Totals:
    """A series' parts between consecutive instants; `between` adds them up from one of
    the instants to another."""

    def __init__(self, instants: list[datetime], segments: list[dict[str, Parts]]):
        self.instants, self.segments = instants, segments

    def between(self, start: datetime, end: datetime) -> dict[str, Parts]:
        parts: dict[str, Parts] = {}
        for segment in self.segments[self.instants.index(start):self.instants.index(end)]:
            add_into(parts, segment)
        return parts

    def whole(self, start: datetime, end: datetime) -> Parts:
        return Parts.total(self.between(start, end).values())


def add_into(parts: dict[str, Parts], more: Mapping[str, Parts]) -> None:
    for key, p in more.items():
        parts[key] = parts[key] + p if key in parts else p


# (won amount, won deals) by the deals' close: the count keeps a group whose deals have no
# amount, as the live query does
WON = Series("won_amount", DIMENSIONS, _adapt(queries.list_won_totals, _pair),
             _adapt_each(metrics_each.list_won_totals, _pair))
# customers (started less churned, churned) and their (MRR, paying) started less churned,
# by day: summed from the first day, the first numbers are those active at an instant
CUSTOMERS = Series("customers", (), _whole(queries.get_customer_moves),
                   _whole_each(metrics_each.get_customer_moves))
MRR = Series("mrr", (), _whole(queries.get_mrr_moves), _whole_each(metrics_each.get_mrr_moves))
# response time in business minutes (working hours only), for the whole workspace and per
# grouping: a histogram like response time's own, whose median its answers show beside
# the value, and beside each group's
RESPONSE_BUSINESS = Series(
    "response_business_minutes", DIMENSIONS,
    _adapt(partial(queries.list_response_histograms, business=True), _histogram),
    _adapt_each(partial(metrics_each.list_response_histograms, business=True), _histogram),
    median=True)
SERIES = (WON, CUSTOMERS, MRR, RESPONSE_BUSINESS)


# each of response time's details: the quantile (in tenths) it is, of wall or business minutes
RESPONSE_DETAILS = {"p90": (9, False), "business_median": (5, True)}


def _response_details(histogram: Histogram) -> dict[str, float | None]:
    """Response time's p90 (wall clock) and its median in business time: PRODUCT.md's
    "also p90, and business-time minutes"."""
    return {name: quantile(histogram(_minutes(business)), tenths / 10)
            for name, (tenths, business) in RESPONSE_DETAILS.items()}


def _response_details_exact(session: Session, team_id: str, start: datetime, end: datetime,
                            histogram: Histogram) -> dict[str, float | None]:
    return {name: _response_detail(session, team_id, start, end, name,
                                   histogram(_minutes(business)))
            for name, (_, business) in RESPONSE_DETAILS.items()}


def _minutes(business: bool) -> Metric | Series:
    """Whose histogram a detail reads: the business minutes' series, or response time's."""
    return RESPONSE_BUSINESS if business else METRICS["response_time"]


def _response_detail(session: Session, team_id: str, start: datetime, end: datetime,
                     name: str, guide: Mapping[float, int]) -> float | None:
    """One of `RESPONSE_DETAILS`, exact, as `_response_median` reads the median: only the
    values around the rank the guide (the two-figure histogram) puts it at; when the rows
    have moved away from it, all are ranked."""
    tenths, business = RESPONSE_DETAILS[name]
    found = _guided(session, team_id, start, end, guide,
                    partial(queries.quantile_ranks, tenths=tenths), business=business) \
        if guide else None
    if found is not None:
        return queries.quantile_of(*found, tenths)
    figures = queries.list_response_figures(session, team_id, start, end).get("")
    return None if figures is None else getattr(figures, name)


def _response_details_by(session: Session, team_id: str, start: datetime, end: datetime,
                         by: str) -> dict[str, dict[str, float | None]]:
    """Each group's p90 and median in business time, exact: the rows ranked a group in SQL,
    in the statement that ranks the groups' medians (a guide would need a window a group)."""
    return {k: {"p90": figures.p90, "business_median": figures.business_median}
            for k, figures in
            queries.list_response_figures(session, team_id, start, end, by).items()}


def _bounds(periods: list[Interval], *more: datetime) -> list[datetime]:
    return sorted({*more, *(t for period in periods for t in period)})


def _derive_growth(totals, periods: list[Interval], by: str | None, *, tz: tzinfo = UTC,
                   **_) -> list[dict[str, Parts]]:
    befores = [previous_start(start, end, tz) for start, end in periods]
    won = totals(WON, _bounds(periods, *befores), by)
    derived = []
    for (start, end), since in zip(periods, befores, strict=True):
        current, before = won.between(start, end), won.between(since, start)
        derived.append({k: Parts(current.get(k, Parts()).numerator,
                                 before.get(k, Parts()).numerator)
                        for k in current.keys() | before.keys()})
    return derived


def _derive_churn(totals, periods: list[Interval], by: str | None = None, **_
                  ) -> list[dict[str, Parts]]:
    customers = totals(CUSTOMERS, _bounds(periods, EVER), None)
    return [{"": Parts(customers.whole(start, end).denominator,
                       customers.whole(EVER, start).numerator)} for start, end in periods]


def _derive_cltv(totals, periods: list[Interval], by: str | None = None, *,
                 gross_margin: float = 0.8, tz: tzinfo = UTC, **_) -> list[dict[str, Parts]]:
    customers, mrr = (totals(series, _bounds(periods, EVER), None) for series in (CUSTOMERS, MRR))
    derived = []
    for start, end in periods:
        active, paying = customers.whole(EVER, start).numerator, mrr.whole(EVER, end)
        if not paying.denominator or not active:  # no ARPA, or nobody to churn
            derived.append({})
            continue
        churn = customers.whole(start, end).denominator / active / month_length(start, end, tz)
        derived.append({"": Parts(paying.numerator / paying.denominator * gross_margin, churn)})
    return derived


# ------------------------------------------------------------------ the metrics

METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric(
        "response_time", "Response time",
        ("response time", "speed to lead", "time to first touch", "first response",
         "time to respond", "response"),
        "Median minutes from routing to first touch, for leads routed in the period.",
        unit="minutes", better="lower", dimensions=DIMENSIONS, additive=True,
        parts=_adapt(queries.list_response_histograms, _histogram), value=_median,
        each=_adapt_each(metrics_each.list_response_histograms, _histogram),
        exact=_response_median,
        details=Details(_response_details, _response_details_exact, _response_details_by)),
    Metric(
        "sla_compliance", "SLA compliance",
        ("sla", "sla compliance", "sla met", "sla rate", "on time response"),
        "Share of leads routed in the period whose SLA was met (first touch or rejection at or "
        "before the due time); leads still open past due count as breaches; open leads not yet "
        "due are left out.",
        unit="ratio", better="higher", dimensions=DIMENSIONS, additive=True,
        parts=_sla_parts, value=_share, each=_sla_each),
    Metric(
        "acceptance_rate", "Acceptance rate",
        ("acceptance rate", "acceptance", "accept rate", "accepted leads"),
        "Accepted / (accepted + rejected), for leads decided in the period.",
        unit="ratio", better="higher", dimensions=DIMENSIONS, additive=True,
        parts=_adapt(queries.list_acceptance_parts, _pair), value=_share,
        each=_adapt_each(metrics_each.list_acceptance_parts, _pair)),
    Metric(
        "rejection_reasons", "Rejections",
        ("rejection reasons", "rejections", "rejected leads", "rejection", "why rejected"),
        "Count of rejections in the period, by reason.",
        unit="count", better="lower", dimensions=("reason",), additive=True,
        parts=_adapt(queries.list_rejection_counts, Parts), value=_count, default_by="reason",
        each=_adapt_each(metrics_each.list_rejection_counts, Parts)),
    Metric(
        "not_icp_share", "Not-ICP rejections",
        ("not icp share", "not icp", "not our ideal customer", "not ideal customer",
         "icp rejections", "wrong customer"),
        "Share of the rejections in the period whose reason is not_icp (not our ideal "
        "customer).",
        unit="ratio", better="lower", dimensions=DIMENSIONS, additive=True,
        parts=_adapt(queries.list_not_icp_parts, _pair), value=_share,
        each=_adapt_each(metrics_each.list_not_icp_parts, _pair)),
    Metric(
        "conversion_rate", "Conversion rate",
        ("conversion rate", "conversion", "mql to deal", "mql conversion", "lead conversion"),
        "Of leads that became MQL in the period, the share with a linked deal created on or "
        "after the MQL time.",
        unit="ratio", better="higher", dimensions=DIMENSIONS, additive=True,
        parts=_adapt(queries.list_conversion_parts, _pair), value=_share,
        each=_adapt_each(metrics_each.list_conversion_parts, _pair)),
    Metric(
        "win_rate", "Win rate",
        ("win rate", "close rate", "wins", "won rate", "win ratio"),
        "Won / (won + lost), for deals closed in the period.",
        unit="ratio", better="higher", dimensions=DIMENSIONS, additive=True,
        parts=_adapt(queries.list_win_parts, _pair), value=_share,
        each=_adapt_each(metrics_each.list_win_parts, _pair)),
    Metric(
        "sales_cycle", "Sales cycle",
        ("sales cycle", "cycle time", "deal cycle", "time to close", "days to close"),
        "Median days from deal created to closed, for deals won in the period (a deal "
        "recorded as closed before it was created is left out).",
        unit="days", better="lower", dimensions=DIMENSIONS, additive=True,
        parts=_adapt(queries.list_cycle_histograms, _histogram), value=_median,
        each=_adapt_each(metrics_each.list_cycle_histograms, _histogram),
        exact=_unguided(queries.list_cycle_medians)),
    Metric(
        "content_utilization", "Content utilization",
        ("content utilization", "content usage", "content use", "content used",
         "collateral usage"),
        "Share of content items existing at period end that sales used at least once in the "
        "period.",
        unit="ratio", better="higher", dimensions=(), additive=False,
        parts=_whole(queries.get_content_parts), value=_share),
    Metric(
        "churn_rate", "Churn rate",
        ("churn rate", "churn", "customer churn", "logo churn"),
        "Customers churned in the period / customers active at period start.",
        unit="ratio", better="lower", dimensions=(), additive=False,
        parts=_whole(queries.get_churn_parts), value=_share, derive=_derive_churn),
    Metric(
        "revenue_growth", "Revenue growth",
        ("revenue growth", "growth", "bookings growth", "won revenue growth"),
        "Won amount closed in the period vs. the previous period of equal length, as a % "
        "change.",
        unit="ratio", better="higher", dimensions=DIMENSIONS, additive=False,
        parts=_growth_parts, value=_growth, derive=_derive_growth),
    Metric(
        "cac", "Customer acquisition cost",
        ("customer acquisition cost", "cac", "acquisition cost", "cost per customer"),
        "Marketing + sales spend in the period / customers started in the period; a "
        "month's spend is spread evenly over its days.",
        unit="money", better="lower", dimensions=("team",), additive=True,
        parts=_cac_parts, value=_cost, each=_cac_each, groups={"team": queries.SPEND_TEAMS}),
    Metric(
        "cltv", "Customer lifetime value",
        ("ltv", "lifetime value", "customer lifetime value", "cltv", "clv"),
        "ARPA × gross margin / monthly churn, where ARPA is the average MRR of customers active "
        "at period end and monthly churn is the period's churn rate divided by its length in "
        "months (calendar months for whole months, else days / 30.4375).",
        unit="money", better="higher", dimensions=(), additive=False,
        parts=_cltv_parts, value=_share, derive=_derive_cltv),
    Metric(
        "marketing_sourced_revenue", "Marketing-sourced revenue",
        ("marketing sourced revenue", "marketing-sourced revenue", "marketing revenue",
         "marketing sourced", "marketing share of revenue"),
        "Share of won amount from deals with source marketing, for deals won in the period.",
        unit="ratio", better="higher", dimensions=("owner", "segment", "region", "team"),
        additive=True, parts=_adapt(queries.list_won_amounts, _pair), value=_share,
        each=_adapt_each(metrics_each.list_won_amounts, _pair)),
    Metric(
        "leads_routed", "Leads routed",
        ("leads routed", "routed leads", "leads", "lead volume", "handoffs", "new leads"),
        "Count of leads routed in the period.",
        unit="count", better="higher", dimensions=DIMENSIONS, additive=True,
        parts=_adapt(queries.list_routed_counts, Parts), value=_count,
        each=_adapt_each(metrics_each.list_routed_counts, Parts)),
)}


def vocabulary() -> dict[str, tuple[str, ...]]:
    """Metric key -> the words that name it, for the query parser."""
    return {key: m.synonyms for key, m in METRICS.items()}


def compute(session: Session, team_id: str, metric_key: str, start: datetime, end: datetime,
            by: str | None = None, *, gross_margin: float = 0.8, now: datetime | None = None,
            tz: tzinfo = UTC) -> tuple[float | None, dict[str, float | None] | None]:
    """The metric's value over [start, end), and its value per group (highest first) when
    grouped by `by` or by the metric's own default grouping.

    `now` is the as-of time of the data; only SLA compliance depends on it (open leads due
    by then are breaches). It defaults to `end`: open leads judged as the period closed.
    Answers pass the clock's now, so that a lead of a running period is not judged before
    it is due, and one that has fallen due since a past period closed counts as a breach.
    `tz` is the workspace's timezone, whose days a month's spend is spread over (CAC) and
    whose calendar months a period's length in months counts (CLTV).
    """
    metric = METRICS.get(metric_key)
    if metric is None:
        raise ValueError(f"unknown metric {metric_key!r}; metrics: {', '.join(METRICS)}")
    by = by or metric.default_by
    if by is not None and by not in metric.dimensions:
        supported = ", ".join(metric.dimensions) or "nothing"
        raise ValueError(f"{metric.label} cannot be grouped by {by}; it can be by {supported}")

    def parts(group_by: str | None) -> dict[str, Parts]:
        return metric.parts(session, team_id, start, end, group_by, now=now,
                            gross_margin=gross_margin, tz=tz)

    overall = metric.value(Parts.total(parts(None).values()))
    if by is None:
        return overall, None
    return overall, highest_first({key: metric.value(p) for key, p in parts(by).items()})


def highest_first(groups: Mapping[str, float | None]) -> dict[str, float | None]:
    """Groups by value, highest first; those without a value last; ties by key."""
    return dict(sorted(groups.items(), key=lambda kv: (kv[1] is None, -(kv[1] or 0.0), kv[0])))


def response_time_detail(session: Session, team_id: str, start: datetime, end: datetime,
                         by: str | None = None) -> dict[str, queries.ResponseFigures]:
    """Response time's median, p90 and business-time median, per group ("" for by=None),
    live from the rows' histograms: what answers read from the snapshots
    (`Metric.details`) is checked against it."""
    wall = queries.list_response_histograms(session, team_id, start, end, by)
    business = queries.list_response_histograms(session, team_id, start, end, by, business=True)
    return {k: queries.ResponseFigures(quantile(wall.get(k, {}), 0.5),
                                       quantile(wall.get(k, {}), 0.9),
                                       quantile(business.get(k, {}), 0.5))
            for k in sorted(wall.keys() | business.keys() if by else {""})}
