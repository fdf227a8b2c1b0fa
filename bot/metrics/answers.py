"""Answers to metric questions: one parser, one computation, for every surface.

`/align metric`, @mentions, `/align scorecard`, `/align export`, the App Home and
`alignbot query` all come here: words are parsed by `grammar`, numbers come from the
`registry` through `snapshots` (daily rollups for whole past days, live tables for the
rest), and an `Answer` carries everything a builder or a script shows.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from bot.intake.csvfile import write_rows
from bot.metrics import snapshots
from bot.metrics.grammar import Period, Query, QueryError, parse_period, parse_query
from bot.metrics.registry import METRICS, Metric, vocabulary
from bot.platform.config import Config
from bot.platform.work import Work
from storage.db import read_only

if TYPE_CHECKING:
    from bot.platform.services import Services

TREND = 6  # periods in an answer's trend, the asked one last
COMPARE_LABELS = {"previous": "previous period", "last_year": "last year"}


@dataclass(frozen=True)
class Comparison:
    kind: str  # previous | last_year
    period: Period
    value: float | None
    # value now minus value then, in the metric's unit; of an approximate answer's medians,
    # of the two as shown ("53 days" vs "50 days": 3 days, not 53.2 - 49.5 = 3.7)
    change: float | None

    @property
    def label(self) -> str:
        return COMPARE_LABELS[self.kind]


@dataclass(frozen=True)
class Answer:
    query: Query
    metric: Metric
    value: float | None
    groups: dict[str, float | None] | None  # highest first; by `by` or the metric's default_by
    comparison: Comparison | None  # only with `vs`
    trend: tuple[float | None, ...]  # the TREND periods of equal length ending with this one
    target: float | None
    as_of: datetime  # the oldest data the answer stands on
    exact: bool = False  # medians from the rows, not from the two-figure histograms
    # more of the metric than its value, when asked (response time's p90 and median in
    # business time), by name as the JSON has them; in the metric's unit, None for no data
    details: Mapping[str, float | None] = field(default_factory=dict)
    # the same of each group, by its key, when asked with `by` (response time by owner: each
    # owner's p90 and median in business time beside their median)
    group_details: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    # the same of each period of the trend, the asked one last, when asked without `by`:
    # a CSV without groups has a row a period, and its details are columns of each
    trend_details: tuple[Mapping[str, float | None], ...] = ()

    @property
    def approximate(self) -> bool:
        """Its values are medians read from two-figure histograms (see `answer`)."""
        return self.metric.median and not self.exact

    def format(self, value: float | None, currency: str = "USD") -> str:
        """One of the answer's values (its own, a group's, the comparison's or the change)
        in the metric's unit, with no more figures than it has; a target is the metric's
        `format`: the config's number, exact."""
        return self.metric.format(value, currency, approximate=self.approximate)

    @property
    def period(self) -> Period:
        return self.query.period

    @property
    def by(self) -> str | None:
        """What the groups are by: the question's `by`, else the metric's own default."""
        return self.query.by or self.metric.default_by

    def on_target(self) -> bool | None:
        """Whether the value meets its target, in the metric's better direction."""
        if self.value is None or self.target is None:
            return None
        return self.value >= self.target if self.metric.better == "higher" else \
            self.value <= self.target

    def as_json(self) -> dict[str, Any]:
        """The shape of PRODUCT.md "Metrics": `alignbot query --json`."""
        out: dict[str, Any] = {
            "metric": self.metric.key, "value": self.value, "unit": self.metric.unit,
            **self.details, "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat(),
                       "label": self.period.label}}
        if self.comparison is not None:
            c = self.comparison
            out["comparison"] = {"label": c.kind, "value": c.value, "change": c.change,
                                 "period": {"start": c.period.start.isoformat(),
                                            "end": c.period.end.isoformat()}}
        if self.groups is not None and self.query.by is not None:  # "only with `by`": a
            # metric's own breakdown (rejections by reason) is shown in Slack, not listed here
            out["groups"] = [{"key": k, "value": v, **self.group_details.get(k, {})}
                             for k, v in self.groups.items()]
        out["target"] = self.target
        out["trend"] = list(self.trend)
        out["as_of"] = self.as_of.isoformat()
        return out

    def csv(self) -> str:
        """One row per group with `by`, else one per period of the trend. Group keys come
        from data (a lead's source): text; values are numbers, or empty for no data. The
        metric's details, when the answer has them (response time's), are columns after its
        value, named as the JSON's keys: each group's, or each period's."""
        if self.groups is not None:
            names = list(self.details)
            rows = [[self.by, self.metric.key, *names],
                    *([k, *_cells(v, self.group_details.get(k, {}), names)]
                      for k, v in self.groups.items())]
        else:
            names = list(self.trend_details[-1]) if self.trend_details else []
            each = self.trend_details or [{}] * len(self.trend)
            rows = [["period", "start", "end", self.metric.key, *names],
                    *([p.label, p.start.isoformat(), p.end.isoformat(), *_cells(v, more, names)]
                      for p, v, more in zip(trend_periods(self.period), self.trend, each,
                                            strict=True))]
        out = io.StringIO()
        write_rows(out, rows)
        return out.getvalue()


def _cells(value: float | None, details: Mapping[str, float | None], names: list[str]
           ) -> list[float | None]:
    """A row's value and its details, in the columns' order (None where a group has none)."""
    return [_cell(value), *(_cell(details.get(name)) for name in names)]


def _cell(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def parse(text: str, config: Config, now: datetime, default_metric: str | None = None) -> Query:
    """Words -> a query, or a QueryError saying what is wrong and what would work."""
    query = parse_query(text, now, config.workspace.tz, vocabulary(), default_metric)
    metric = METRICS[query.metric]
    if query.by is not None and query.by not in metric.dimensions:
        ways = ", ".join(metric.dimensions) or "nothing: it is one number for the workspace"
        raise QueryError(f"{metric.label} cannot be broken down by {query.by}; it can by {ways}.")
    return query


def ask(services: Services, text: str, default_metric: str | None = None, *,
        exact: bool = False, details: bool = False, trend_details: bool = False) -> Answer:
    """Parse and answer a question for the services' workspace, now."""
    now = services.clock.now()
    query = parse(text, services.config, now, default_metric)
    with read_only(services.sessions) as session:
        return answer(services.work_in(session, now=now), query, exact=exact, details=details,
                      trend_details=trend_details)


def answer(work: Work, query: Query, *, exact: bool = False, details: bool = False,
           trend_details: bool = False) -> Answer:
    """`exact`: medians from the rows, not to two figures (see `snapshots.Reader`): for
    answers people check number by number (`alignbot query`, exports); Slack's answers
    show no more figures than the histograms keep, and read a year of them in milliseconds.
    `details`: the metric's `details` too (response time's p90 and median in business
    time), for one who asked about it (`/align metric`, `alignbot query`), and with `by`
    each group's: from the same stored histograms as the value, or exact from the rows.
    `trend_details` with `details` and without `by`: each trend period's too, for a CSV
    (a row a period); Slack's answers show only the asked period's."""
    metric = METRICS[query.metric]
    reader = snapshots.Reader(work, exact=exact)
    earlier = trend_periods(query.period)[:-1]
    last_year = query.period.last_year() if query.compare == "last_year" else None
    reader.expect([query.period, *earlier, *([last_year] if last_year else [])])
    value, groups = reader.value(metric, query.period, query.by or metric.default_by)
    trend = tuple(reader.value(metric, p, None)[0] for p in earlier)
    comparison = None
    if query.compare is not None:
        then = last_year or earlier[-1]
        before = trend[-1] if last_year is None else reader.value(metric, then, None)[0]
        change = None
        if value is not None and before is not None:
            shown = metric.shown if metric.median and not exact else float
            change = shown(value) - shown(before)
        comparison = Comparison(query.compare, then, before, change)
    more = reader.details(metric, query.period) if details else {}
    each = reader.group_details(metric, query.period, query.by) \
        if details and query.by is not None else {}
    periods = (*(reader.details(metric, p) for p in earlier), more) \
        if details and trend_details and groups is None else ()
    return Answer(query, metric, value, groups, comparison, (*trend, value),
                  work.config.targets.get(metric.key), reader.as_of, exact,
                  MappingProxyType(more), MappingProxyType(each), periods)


def scorecard(work: Work, period: Period | None = None) -> list[Answer]:
    """Every metric over the period (default: the last 30 days) against its target,
    compared with the period before."""
    period = period or parse_period("", work.now, work.config.workspace.tz)
    return [answer(work, Query(key, period, compare="previous")) for key in METRICS]


def trend_periods(period: Period) -> list[Period]:
    """The TREND periods ending with `period`, each the one before the next."""
    periods = [period]
    while len(periods) < TREND:
        periods.insert(0, periods[0].previous())
    return periods
