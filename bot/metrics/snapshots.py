"""Daily metric snapshots: what the refresh job stores, and how answers read them.

A metric's value over a period is computed from its *parts* (see `registry`). For the
additive metrics, the refresh stores the parts of every whole past day, per grouping,
in `metric_snapshots`, and their sums per ISO week, month and year; a period is then read
as the sum of its stored years, months, weeks and days (a year is one row per group)
plus the live parts of what the snapshots do not cover (today, days not refreshed yet,
partial days). Both paths use the registry's own parts functions, so for the same data
they give the same number. Churn, CLTV and revenue growth are derived from stored sums
(`registry.SERIES`), read for all the periods of an answer (its trend) in one query a
sum; until a first refresh they are live, as content utilization always is.

What a refresh redoes: every day since the last refreshed one, the days of every row
changed since the last refresh (by the instants metrics count it at, its deals' for a
lead, and those it left, recorded as it changed: `storage.models.MetricStaleInstant`),
and always the last `SETTLE_DAYS` — a re-routed lead's stage time moves within them, and the day it
left is known only there. Days before the first stored one are never stored later: they
stay live reads (a first refresh may start at a recent day, as the demo's does).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy.orm import Session, sessionmaker

from bot.metrics.grammar import Period, midnight
from bot.metrics.registry import (
    METRICS,
    SERIES,
    Metric,
    Parts,
    Series,
    Totals,
    add_into,
    highest_first,
    parts_each,
)
from bot.platform.config import Config
from bot.platform.work import Work
from storage import snapshots as queries
from storage.db import between_batches, make_way, read_only, without_jit
from storage.metrics import next_month

SETTLE_DAYS = 7
DAY = timedelta(days=1)
REMEMBERED = 512  # reads of the snapshots remembered per database, the latest used kept
T = TypeVar("T")


class Reader:
    """Values of metrics for one workspace as of `now`; `as_of` is how fresh the data read
    so far is (the last refresh's time once a snapshot was used). `exact` reads medians
    from the rows themselves instead of the histograms' two significant figures."""

    def __init__(self, work: Work, *, exact: bool = False):
        self.session, self.config, self.team_id, self.now = \
            work.session, work.config, work.team_id, work.now
        self.tz = self.config.workspace.tz
        self.refresh = queries.get_refresh(self.session, self.team_id)
        self.as_of = self.now
        self.exact = exact
        self.expected: list[Period] = []
        self._derived: dict[tuple, dict[str, Parts]] = {}
        self._stored: dict[tuple, dict[str, Parts]] = {}
        self._grouped: dict[tuple, dict[str, Parts]] = {}

    def expect(self, periods: list[Period]) -> None:
        """The periods the reader will be asked about: a derived metric reads them at once."""
        self.expected = periods

    def value(self, metric: Metric, period: Period, by: str | None
              ) -> tuple[float | None, dict[str, float | None] | None]:
        """The metric over the period, and per group (highest first) when `by` is given."""
        if self.exact and metric.exact is not None:
            return self._exact(metric, period, by)
        grouped = self.grouped(metric, period, by) if by else None
        overall = metric.value(self.whole(metric, period))
        if grouped is None:
            return overall, None
        return overall, highest_first({k: metric.value(p) for k, p in grouped.items()})

    def whole(self, metric: Metric | Series, period: Period) -> Parts:
        """The metric's parts over the period for the whole workspace, read once. The whole
        is read as a whole, not added up from the groups: sums may not add up (CAC's teams
        share its customers), and the trend reads the whole in the same statement anyway;
        adding forty owners' histograms was a third of a median's answer."""
        return Parts.total(self.grouped(metric, period, None).values())  # `grouped` reads once

    def grouped(self, metric: Metric | Series, period: Period, by: str | None
                ) -> dict[str, Parts]:
        """The metric's parts over the period per group, read once: a grouped answer's
        details read its groups' histograms again (and today's live). Its callers never
        change the dict (it is the one kept)."""
        key = (metric.key, period.start, period.end, by)
        if key not in self._grouped:
            self._grouped[key] = self._period_parts(metric, period, by) \
                if isinstance(metric, Metric) else self.parts(metric, period.start, period.end, by)
        return self._grouped[key]

    def details(self, metric: Metric, period: Period) -> dict[str, float | None]:
        """The metric's `details` over the period (none without): from the same stored
        histograms as its value, or from the rows when the reader is exact."""
        if metric.details is None:
            return {}
        def histogram(m: Metric | Series) -> Mapping[float, int]:
            return self.whole(m, period).histogram
        if self.exact:
            return metric.details.exact(self.session, self.team_id, period.start, period.end,
                                        histogram)
        return metric.details.read(histogram)

    def group_details(self, metric: Metric, period: Period, by: str
                      ) -> dict[str, dict[str, float | None]]:
        """The metric's `details` of each group (of those its value has) over the period:
        from the groups' stored histograms, or from the rows when the reader is exact."""
        if metric.details is None:
            return {}
        if self.exact:
            return metric.details.exact_by(self.session, self.team_id, period.start,
                                           period.end, by)
        def histogram_of(key: str) -> Callable[[Metric | Series], Mapping[float, int]]:
            return lambda m: self.grouped(m, period, by).get(key, Parts()).histogram
        return {key: metric.details.read(histogram_of(key))
                for key in self.grouped(metric, period, by)}

    def _period_parts(self, metric: Metric, period: Period, by: str | None
                      ) -> dict[str, Parts]:
        if metric.derive is None or self.refresh is None:
            return self.parts(metric, period.start, period.end, by)
        if (metric.key, period.start, period.end, by) not in self._derived:
            # grouped, only the asked period; else every expected one, at once
            periods = [period] if by else [period, *(p for p in self.expected if p != period)]
            derived = metric.derive(self.totals, [(p.start, p.end) for p in periods], by,
                                    gross_margin=self.config.workspace.gross_margin, tz=self.tz)
            for p, parts in zip(periods, derived, strict=True):
                self._derived[metric.key, p.start, p.end, by] = parts
        return self._derived[metric.key, period.start, period.end, by]

    def _exact(self, metric: Metric, period: Period, by: str | None
               ) -> tuple[float | None, dict[str, float | None] | None]:
        """Live from the rows (a median of a period has no sum of parts to store), guided
        by the two-figure histogram of the fast path."""
        overall = metric.exact(self.session, self.team_id, period.start, period.end,
                               guide=self.whole(metric, period).histogram).get("")
        if by is None:
            return overall, None
        return overall, highest_first(metric.exact(self.session, self.team_id, period.start,
                                                   period.end, by))

    def parts(self, metric: Metric | Series, start: datetime, end: datetime, by: str | None
              ) -> dict[str, Parts]:
        stored, around = self._split(metric, start, end)
        parts = self._stored_parts(metric, start, end, by) if stored else {}
        for a, b in around:
            add_into(parts, self.live(metric, a, b, by))
        return parts

    def _stored_parts(self, metric: Metric | Series, start: datetime, end: datetime,
                      by: str | None) -> dict[str, Parts]:
        """What the snapshots hold of [start, end). Asked about one of the expected periods
        as a whole, it reads them all in one query (an answer's trend: one statement, not
        six); grouped, only the asked period (the trend is not grouped), and so for a series
        (response time's business minutes: the asked period's details only)."""
        if (metric.key, by, start, end) not in self._stored:
            ranges = sorted({(p.start, p.end) for p in self.expected})
            if by is not None or isinstance(metric, Series) or (start, end) not in ranges or \
                    any(b > c for (_, b), (c, _) in pairwise(ranges)):
                ranges = [(start, end)]  # grouped, a series, not expected, or overlapping
            buckets = [self._split(metric, a, b)[0] for a, b in ranges]
            read = self._remembered("parts", metric.key, by, buckets, lambda: stored_parts_each(
                self.session, self.team_id, metric, by, buckets))
            for (a, b), parts in zip(ranges, read, strict=True):
                self._stored[metric.key, by, a, b] = parts
        return dict(self._stored[metric.key, by, start, end])

    def totals(self, series: Series, instants: list[datetime], by: str | None) -> Totals:
        """The series between each two consecutive instants: one query of the snapshots for
        all of them, and live reads of what they do not hold."""
        splits = [self._split(series, a, b) for a, b in pairwise(instants)]
        buckets = [spans for spans, _ in splits]
        stored = self._remembered("sums", series.key, by, buckets, lambda: queries.sum_parts_each(
            self.session, self.team_id, series.key, by or "", buckets))
        segments = []
        for sums, (_, around) in zip(stored, splits, strict=True):
            parts = {k: Parts(n, d) for k, (n, d) in sums.items()}
            for a, b in around:
                add_into(parts, self.live(series, a, b, by))
            segments.append(parts)
        return Totals(instants, segments)

    def _remembered(self, kind: str, key: str, by: str | None,
                    buckets: list[tuple[queries.Span, ...]], read: Callable[[], T]) -> T:
        """`read()` of the snapshots (`kind` of `key`'s rows in the buckets), or what it gave
        since their last refresh: they change only then (its time is in the key; a refresh
        in this process also forgets them). Questions come in waves (a digest, a channel
        clicking it, Homes opening), and an answer at 1M leads spent most of its time
        merging the same stored histograms."""
        return _remember(self.session, (self.team_id, tuple(self.refresh), kind, key, by,
                                        tuple(buckets)), read)

    def _split(self, metric: Metric | Series, start: datetime, end: datetime
               ) -> tuple[tuple[queries.Span, ...], list[tuple[datetime, datetime]]]:
        """[start, end) as the stored spans it holds and the ranges around them (read live)."""
        stored = self._stored_days(metric, start, end)
        if stored is None:
            return (), [(start, end)]
        first, last = stored
        self.as_of = min(self.as_of, self.refresh.as_of)
        around = ((start, self.midnight(first)), (self.midnight(last + DAY), end))
        return spans(first, last, self.refresh.last_day), [(a, b) for a, b in around if a < b]

    def live(self, metric: Metric | Series, start: datetime, end: datetime, by: str | None
             ) -> dict[str, Parts]:
        return metric.parts(self.session, self.team_id, start, end, by, now=self.now,
                            gross_margin=self.config.workspace.gross_margin, tz=self.tz)

    def midnight(self, day: date) -> datetime:
        return midnight(day, self.tz)

    def _stored_days(self, metric: Metric | Series, start: datetime, end: datetime
                     ) -> tuple[date, date] | None:
        """The whole local days of [start, end) the snapshots hold, if any."""
        if not metric.additive or self.refresh is None:
            return None
        local_start = start.astimezone(self.tz)
        first = local_start.date() + (DAY if local_start != self.midnight(local_start.date())
                                      else timedelta(0))
        last = end.astimezone(self.tz).date() - DAY
        first, last = max(first, self.refresh.first_day), min(last, self.refresh.last_day)
        return (first, last) if first <= last else None


_remembering = threading.Lock()
_memory: WeakKeyDictionary[Any, OrderedDict[Hashable, Any]] = WeakKeyDictionary()


def _remember(session: Session, key: Hashable, read: Callable[[], T]) -> T:
    """What `read()` gave for `key` in this database (its pool: every engine on it shares
    one), else what it gives now; the latest `REMEMBERED` kept. Values are never changed
    by their readers (Parts are frozen; dicts are copied)."""
    pool = session.get_bind().pool
    with _remembering:
        memory = _memory.setdefault(pool, OrderedDict())
        if key in memory:
            memory.move_to_end(key)
            return memory[key]
    value = read()
    with _remembering:
        memory[key] = value
        if len(memory) > REMEMBERED:
            memory.popitem(last=False)
    return value


def forget(sessions: sessionmaker[Session]) -> None:
    """What was remembered of the snapshots of that database: they changed."""
    with _remembering:
        _memory.pop(sessions.kw["bind"].pool, None)


def stored_parts_each(session: Session, team_id: str, metric: Metric | Series, by: str | None,
                      buckets: list[tuple[queries.Span, ...]]) -> list[dict[str, Parts]]:
    """The stored parts of each bucket of spans (consecutive stretches of time), per group,
    in one query. A group without data has no row (the refresh stores none for nothing):
    those the metric lists anyway (its `groups`, as its live parts do) are added empty."""
    listed = dict.fromkeys(metric.groups.get(by, ()) if by else (), Parts())
    if metric.median:
        return [listed | {k: Parts(histogram=MappingProxyType(h)) for k, h in groups.items()}
                for groups in queries.merge_histograms_each(session, team_id, metric.key,
                                                            by or "", buckets)]
    return [listed | {k: Parts(n, d) for k, (n, d) in sums.items()}
            for sums in queries.sum_parts_each(session, team_id, metric.key, by or "", buckets)]


# sums of days stored per unit, coarsest first. Weeks (ISO, from Monday, whatever the
# workspace's week start) are for rolling ranges ("last 30 days" rarely holds a month):
# they do not nest in months, but each range left around a month is covered on its own.
ROLLUPS = ("year", "month", "week")


@lru_cache(maxsize=4096)  # every period of every answer: the same few until the next day
def spans(first: date, last: date, through: date | None = None) -> tuple[queries.Span, ...]:
    """first..last as the fewest stored rows: the years wholly inside it, then the months,
    then the weeks, then the days around them. The unit holding `through` (the last stored
    day) has the days through it, so it also serves a span that ends there."""
    return tuple(_cover(first, last, through, ROLLUPS))


def _cover(first: date, last: date, through: date | None,
           grains: tuple[str, ...]) -> list[queries.Span]:
    if first > last:
        return []
    if not grains:
        return [("day", first, last)]
    grain, finer = grains[0], grains[1:]
    start = first if _unit_start(grain, first) == first else _next_unit(grain, first)
    end = start
    while end <= last and (_next_unit(grain, end) - DAY <= last or last == through):
        end = _next_unit(grain, end)
    if end == start:
        return _cover(first, last, through, finer)
    return [(grain, start, end - DAY), *_cover(first, start - DAY, through, finer),
            *_cover(end, last, through, finer)]


def _unit_start(grain: str, day: date) -> date:
    if grain == "week":
        return day - day.weekday() * DAY
    return date(day.year, 1, 1) if grain == "year" else day.replace(day=1)


def _next_unit(grain: str, day: date) -> date:
    if grain == "week":
        return _unit_start(grain, day) + 7 * DAY
    if grain == "year":
        return date(day.year + 1, 1, 1)
    return next_month(day)


# ------------------------------------------------------------------ the refresh job


@dataclass(frozen=True)
class RefreshReport:
    team_id: str
    days: int
    rows: int
    as_of: datetime


CHUNK_ROWS = 500  # snapshot rows a refresh writes per transaction: a few milliseconds
# consecutive days a refresh computes in one statement a metric and grouping, by dialect:
# on SQLite a day at a time with the live statements (built once, bound: storage.metrics)
# beat the runs' statements (a 100k store's first refresh 31 s against 43.5); on
# PostgreSQL the runs win (70 s against 40), its round trips and planning being dearer
CHUNK_DAYS = {"postgresql": 31}


def refresh(sessions: sessionmaker[Session], config: Config, team_id: str, now: datetime, *,
            full: bool = False, since: date | None = None,
            progress: Callable[[int, int], None] | None = None) -> RefreshReport:
    """Recompute the snapshots of the days whose inputs changed (all days when `full`),
    through yesterday; idempotent: a day's rows are replaced whole. A first (or full)
    refresh `since` a day stores the days from it only: the ones before stay live reads,
    then and in later refreshes. `progress(done, total)` is told after each day.

    It computes a run of consecutive days (`CHUNK_DAYS`) in one read transaction, a
    statement a metric and grouping for all of them (the registry's `each`; the weeks,
    months and years after, a statement a metric and grouping for all), and writes a few
    days (weeks, months) at a time, each in a short transaction of its own: a question, a
    click or a webhook never waits for the whole refresh (SQLite has one writer). A reader
    sees every day's and rollup's rows whole, old or new; the days the refresh adds to the
    stored span count only once it is recorded, last (until then, they are read live)."""
    with read_only(sessions) as session:
        reader = Reader(Work(session, team_id, config, now))
        yesterday = now.astimezone(reader.tz).date() - DAY
        state = None if full else reader.refresh
        days = _days_to_redo(session, reader, state, yesterday, since)
    with between_batches(sessions.kw["bind"]) as upkeep:
        runs = _chunks(days, CHUNK_DAYS.get(sessions.kw["bind"].dialect.name, 1))
        rows = _store(sessions, upkeep, config, team_id, now, "day", runs, _day_rows, progress)
        for grain, finer in (("week", "day"), ("month", "day"), ("year", "month")):
            units = sorted({_unit_start(grain, day) for day in days})
            rows += _store(sessions, upkeep, config, team_id, now, grain, [units] if units else [],
                           lambda r, units, g=grain, f=finer: _rollup_rows(r, f, g, units))
    if days or state is not None:
        first = min([*days, *([state.first_day] if state else [])])
        with sessions.begin() as session:
            queries.lock_refresh(session, team_id)
            queries.set_refresh(session, team_id, first, max(yesterday, first), now)
            if state is not None:
                queries.forget_stale_instants(session, team_id, state.as_of)
    forget(sessions)  # the same time as the last refresh's (a frozen clock) would find them
    return RefreshReport(team_id, len(days), rows, now)


def _store(sessions: sessionmaker[Session], upkeep: Callable[[], None], config: Config,
           team_id: str, now: datetime, grain: str, batches: list[list[date]],
           rows_of: Callable[[Reader, list[date]], list[list[dict]]],
           progress: Callable[[int, int], None] | None = None) -> int:
    """Each batch's units' rows, computed in one read transaction, written in transactions
    of about `CHUNK_ROWS` rows, each followed by the store's `upkeep` (SQLite's WAL
    checkpoint, which the commit of a click would otherwise do) and a pause for whoever
    waits to write (`make_way`): a batch's writes come one after the other; how many rows."""
    pending: list[tuple[date, list[dict]]] = []
    count, done, total = 0, 0, sum(len(batch) for batch in batches)

    def write() -> None:
        with sessions.begin() as session:
            queries.lock_refresh(session, team_id)  # two workers write one after the other
            for unit, unit_rows in pending:
                queries.replace_rows(session, team_id, grain, unit, unit_rows)
        pending.clear()
        upkeep()
        make_way(sessions.kw["bind"])  # a month of days is many writes in a row
    for batch in batches:
        with read_only(sessions) as session:
            without_jit(session)
            computed = rows_of(Reader(Work(session, team_id, config, now)), batch)
        for unit, unit_rows in zip(batch, computed, strict=True):
            pending.append((unit, unit_rows))
            count += len(unit_rows)
            done += 1
            if sum(len(r) for _, r in pending) >= CHUNK_ROWS or done == total:
                write()
            if progress:
                progress(done, total)
    return count


def _chunks(days: list[date], size: int) -> list[list[date]]:
    """The days (sorted) as runs of consecutive days, of `size` at most."""
    chunks: list[list[date]] = []
    for day in days:
        if chunks and chunks[-1][-1] + DAY == day and len(chunks[-1]) < size:
            chunks[-1].append(day)
        else:
            chunks.append([day])
    return chunks


def _days_to_redo(session: Session, reader: Reader, state, yesterday: date,
                  since: date | None) -> list[date]:
    """All days anything happened on (from `since`), for a first or full refresh; else see
    the module. Never a day before the stored ones: storing it alone would leave a gap that
    the stored span claims to hold."""
    days = queries.list_changed_days(session, reader.team_id, state and state.as_of, reader.now,
                                     reader.tz)
    first = state.first_day if state is not None else since
    if state is not None:
        days |= {state.last_day + DAY * i for i in range(1, (yesterday - state.last_day).days + 1)}
        days |= {yesterday - DAY * i for i in range(SETTLE_DAYS)}
    return sorted(d for d in days if d <= yesterday and (first is None or d >= first))


def _day_rows(reader: Reader, days: list[date]) -> list[list[dict]]:
    """Every additive metric's parts of each day, for the whole team and per grouping: a
    statement a metric and grouping for all the days. A day is from one local midnight to
    the next (23 or 25 hours across a change of clocks)."""
    periods = [(reader.midnight(day), reader.midnight(day + DAY)) for day in days]
    return _rows(reader, len(days), lambda metric, by: parts_each(
        metric, reader.session, reader.team_id, periods, by, now=reader.now,
        gross_margin=reader.config.workspace.gross_margin, tz=reader.tz))


def _rollup_rows(reader: Reader, finer: str, grain: str, units: list[date]) -> list[list[dict]]:
    """Each week's or month's day rows (each year's month rows) added up: what a period
    holding it reads; one query a metric and grouping for all the units."""
    over = [[(finer, unit, _next_unit(grain, unit) - DAY)] for unit in units]
    return _rows(reader, len(units), lambda metric, by: stored_parts_each(
        reader.session, reader.team_id, metric, by, over))


def _rows(reader: Reader, count: int,
          parts_of: Callable[[Metric | Series, str | None], list[dict[str, Parts]]]
          ) -> list[list[dict]]:
    """Each unit's rows, from the parts of every additive metric and grouping per unit."""
    rows: list[list[dict]] = [[] for _ in range(count)]
    for metric in (*METRICS.values(), *SERIES):
        if not metric.additive:
            continue
        for by in (None, *metric.dimensions):
            for unit_rows, parts in zip(rows, parts_of(metric, by), strict=True):
                for key, p in parts.items():
                    if not (p.numerator or p.denominator or p.histogram) and \
                            _listed(metric, by, key):
                        continue  # nothing happened: a missing row reads the same
                    unit_rows.append({
                        "metric": metric.key, "dimension": by or "", "dimension_value": key,
                        "value": metric.value(p), "numerator": p.numerator,
                        "denominator": p.denominator,
                        "histogram": {str(v): n for v, n in p.histogram.items()} or None,
                        "computed_at": reader.now})
    return rows


def _listed(metric: Metric | Series, by: str | None, key: str) -> bool:
    """Whether answers list the group without a row: the whole workspace's, and a metric's
    `groups`. Any other group with empty parts had rows all the same (a won deal without an
    amount: marketing-sourced revenue lists its owner with no value), and is stored."""
    return by is None or key in metric.groups.get(by, ())
