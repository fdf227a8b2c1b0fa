"""Daily snapshots: a refresh stores whole past days; answers over them equal live ones."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, event, func, select, update

from bot.metrics import snapshots
from bot.metrics.answers import answer, parse, trend_periods
from bot.metrics.grammar import parse_period
from bot.metrics.registry import METRICS, SERIES, compute, parts_each
from bot.metrics.snapshots import SETTLE_DAYS, Reader, refresh, spans
from bot.platform.work import Work
from storage.db import make_sessionmaker, read_only
from storage.models import Customer, Deal, Lead, MetricRefresh, MetricSnapshot, Person
from storage.snapshots import get_refresh, lock_refresh, merge_histograms_each, replace_rows
from tests.concurrency import until_waiting
from tests.metric_fixture import add_metric_fixture, at
from tests.slack import TEAM

NOW = datetime(2026, 8, 3, 16, 0, tzinfo=UTC)  # a Monday noon in New York, after the fixture
# 2026-04 is stored and holds no spend and no customer (C7 starts on 3/31 in New York):
# CAC by team still lists both teams
PERIODS = ("2026-05", "2026-06", "Q2 2026", "2026-05-10..2026-07-20", "last 90 days", "ytd",
           "this month", "2025-12", "2026-04")


@pytest.fixture
def sessions(engine):
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        add_metric_fixture(s)
    return sessions


def live(session, config, key, period, by):
    return compute(session, TEAM, key, period.start, period.end, by,
                   gross_margin=config.workspace.gross_margin, now=NOW, tz=config.workspace.tz)


def assert_answers_are_live_ones(sessions, config, periods=PERIODS):
    with read_only(sessions) as s:
        reader = Reader(Work(s, TEAM, config, NOW))
        for text in periods:
            period = parse_period(text, NOW, config.workspace.tz)
            for metric in METRICS.values():
                for by in (None, *metric.dimensions):
                    value, groups = reader.value(metric, period, by or metric.default_by)
                    expected, expected_groups = live(s, config, metric.key, period, by)
                    assert value == pytest.approx(expected), (metric.key, text, by)
                    assert (groups or {}) == pytest.approx(expected_groups or {}), \
                        (metric.key, text, by)
        assert reader.as_of == NOW  # the refresh's time: it ran at NOW


def test_answers_over_snapshots_equal_live_ones_for_every_metric_period_and_grouping(
        sessions, config):
    report = refresh(sessions, config, TEAM, NOW)
    assert 0 < report.days < (NOW - at(1, 1)).days / 2  # only the days something happened
    assert_answers_are_live_ones(sessions, config)


def test_a_refresh_since_a_day_stores_from_it_and_reads_the_rest_live(sessions, config):
    since = date(2026, 6, 1)
    refresh(sessions, config, TEAM, NOW, since=since)
    assert_answers_are_live_ones(sessions, config)
    with sessions.begin() as s:  # a May lead is rejected: a day before the stored ones
        lead = s.scalars(select(Lead).where(Lead.accepted_at < at(5, 31),
                                            Lead.rejected_at.is_(None))).first()
        lead.rejected_at, lead.rejection_reason, lead.updated_at = at(5, 20), "bad_fit", NOW
    refresh(sessions, config, TEAM, NOW)
    with sessions() as s:
        assert get_refresh(s, TEAM).first_day >= since
        assert s.scalar(select(func.min(MetricSnapshot.day))
                        .where(MetricSnapshot.grain == "day")) >= since
    assert_answers_are_live_ones(sessions, config)


def test_a_stored_month_without_data_lists_cacs_teams_as_the_live_answer_does(
        sessions, config):
    refresh(sessions, config, TEAM, NOW)
    april = parse_period("2026-04", NOW, config.workspace.tz)
    with read_only(sessions) as s:
        assert get_refresh(s, TEAM).first_day < date(2026, 4, 1)  # April is stored
        teams = {"marketing": None, "sales": None}
        assert live(s, config, "cac", april, "team") == (None, teams)
        assert Reader(Work(s, TEAM, config, NOW)).value(METRICS["cac"], april, "team") == \
            (None, teams)


def test_the_groups_a_metric_lists_without_data_are_its_declared_groups(sessions, config):
    """The snapshots store no row for a group without data, and add a metric's `groups`
    when read: they must be what its live parts list over a period with no data at all."""
    empty = (at(1, 1, year=2020), at(2, 1, year=2020))
    with read_only(sessions) as s:
        for metric in (*METRICS.values(), *SERIES):
            for by in metric.dimensions:
                listed = metric.parts(s, TEAM, *empty, by, now=NOW)
                assert set(listed) == set(metric.groups.get(by, ())), (metric.key, by)
                assert not any(p.numerator or p.denominator or p.histogram
                               for p in listed.values()), (metric.key, by)


def test_snapshots_hold_whole_past_days_only_and_today_is_read_live(sessions, config):
    refresh(sessions, config, TEAM, NOW)
    with sessions.begin() as s:
        s.add(Lead(team_id=TEAM, external_id="L-TODAY", source="webinar", status="routed",
                   created_at=NOW, mql_at=NOW, routed_at=NOW, updated_at=NOW))
    with sessions() as s:
        assert get_refresh(s, TEAM).last_day == date(2026, 8, 2)  # yesterday in New York
        assert s.scalar(select(func.max(MetricSnapshot.day))) < date(2026, 8, 3)
        this_month = parse_period("this month", NOW, config.workspace.tz)
        value, _ = Reader(Work(s, TEAM, config, NOW)).value(METRICS["leads_routed"], this_month, None)
        assert value == 1  # today's lead, which no snapshot holds


def test_a_past_period_is_read_from_snapshots_as_of_the_refresh(sessions, config):
    refresh(sessions, config, TEAM, NOW)
    with sessions.begin() as s:  # a May lead moves to another workspace; no refresh since
        s.scalars(select(Lead).where(Lead.routed_at >= at(5, 2),
                                     Lead.routed_at < at(5, 31))).first().team_id = "T0ELSE"
    later = NOW + timedelta(hours=1)
    with sessions() as s:
        may = parse_period("2026-05", later, config.workspace.tz)
        reader = Reader(Work(s, TEAM, config, later))
        stored, _ = reader.value(METRICS["leads_routed"], may, None)
        assert stored == (live(s, config, "leads_routed", may, None)[0] or 0) + 1
        assert reader.as_of == NOW  # what the answer says: the data is an hour old


def test_a_refresh_is_idempotent_and_redoes_only_what_changed(sessions, config):
    refresh(sessions, config, TEAM, NOW)
    with sessions() as s:
        before = s.execute(select(MetricSnapshot.metric, MetricSnapshot.day,
                                  MetricSnapshot.dimension, MetricSnapshot.dimension_value,
                                  MetricSnapshot.numerator, MetricSnapshot.denominator)
                           .order_by(MetricSnapshot.metric, MetricSnapshot.day,
                                     MetricSnapshot.dimension,
                                     MetricSnapshot.dimension_value)).all()
    later = NOW + timedelta(hours=1)
    again = refresh(sessions, config, TEAM, later)
    assert again.days == SETTLE_DAYS  # nothing changed: only the settling window
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(MetricSnapshot)) == len(before)
    # A lead of May is rejected now (it was accepted): May's acceptance changes.
    with sessions.begin() as s:
        lead = s.scalars(select(Lead).where(Lead.accepted_at < at(5, 31),
                                            Lead.rejected_at.is_(None))).first()
        lead.rejected_at, lead.rejection_reason, lead.updated_at = at(5, 20), "bad_fit", later
        # its deals' days too: grouped by segment or region, a deal is its lead's
        closes = len({t.astimezone(config.workspace.tz).date() for t in s.scalars(
            select(Deal.closed_at).where(Deal.lead_id == lead.id, Deal.closed_at.is_not(None)))})
    changed = refresh(sessions, config, TEAM, later + timedelta(minutes=5))
    assert SETTLE_DAYS + 1 + closes <= changed.days <= SETTLE_DAYS + 2 + closes  # + its day(s)
    with sessions() as s:
        may = parse_period("2026-05", NOW, config.workspace.tz)
        metric = METRICS["acceptance_rate"]
        assert Reader(Work(s, TEAM, config, later)).value(metric, may, None)[0] == pytest.approx(
            live(s, config, "acceptance_rate", may, None)[0])


DERIVED = [m for m in METRICS.values() if m.derive is not None]


def assert_trends_are_live_ones(sessions, config, now=NOW, metrics=DERIVED, periods=PERIODS):
    """Whole answers (value, groups, the six periods of the trend, the comparison) of the
    metrics (derived from stored sums), against the live computation of each period."""
    with read_only(sessions) as s:
        for metric in metrics:
            for text in periods:
                for by in (None, *metric.dimensions[:2]):
                    for compare in ("", " vs last year"):
                        words = f"{metric.key} {text}" + (f" by {by}" if by else "") + compare
                        a = answer(Work(s, TEAM, config, now), parse(words, config, now))
                        live_trend = [compute(s, TEAM, metric.key, p.start, p.end, None,
                                              gross_margin=config.workspace.gross_margin,
                                              tz=config.workspace.tz)[0]
                                      for p in trend_periods(a.period)]
                        assert list(a.trend) == pytest.approx(live_trend), words
                        groups = compute(s, TEAM, metric.key, a.period.start, a.period.end, by,
                                         tz=config.workspace.tz)[1]
                        assert (a.groups or {}) == pytest.approx(groups or {}), words
                        if a.comparison:
                            then = a.comparison.period
                            assert a.comparison.value == pytest.approx(compute(
                                s, TEAM, metric.key, then.start, then.end, None,
                                gross_margin=config.workspace.gross_margin,
                                tz=config.workspace.tz)[0]), words


def test_churn_cltv_and_growth_read_from_snapshots_answer_as_live_ones(sessions, config):
    with sessions.begin() as s:  # a customer without MRR: active, but no part of ARPA
        s.add(Customer(team_id=TEAM, external_id="C-FREE", started_at=at(5, 3), mrr=None,
                       updated_at=at(5, 3)))
    assert_trends_are_live_ones(sessions, config)  # before a first refresh: live
    refresh(sessions, config, TEAM, NOW)
    with sessions() as s:
        assert {"won_amount", "customers", "mrr"} <= set(s.scalars(
            select(MetricSnapshot.metric).distinct()))
    assert_trends_are_live_ones(sessions, config)
    assert_answers_are_live_ones(sessions, config)


def test_a_churn_after_the_refresh_counts_at_once_today_and_as_of_the_refresh_before(
        sessions, config):
    refresh(sessions, config, TEAM, NOW)
    later = NOW + timedelta(hours=1)
    churn = METRICS["churn_rate"]

    def churns(customer, when):
        with sessions.begin() as s:
            row = s.get(Customer, customer.id)
            row.churned_at, row.updated_at = when, later
    with sessions() as s:
        first, second = s.scalars(select(Customer).where(Customer.team_id == TEAM,
                                                         Customer.churned_at.is_(None))).all()[:2]
    this_month = parse_period("this month", later, config.workspace.tz)
    june = parse_period("2026-06", later, config.workspace.tz)
    churns(first, NOW)  # today: no snapshot holds the day, it is read live
    with read_only(sessions) as s:
        reader = Reader(Work(s, TEAM, config, later))
        assert reader.value(churn, this_month, None)[0] == pytest.approx(
            live(s, config, "churn_rate", this_month, None)[0])
    churns(second, at(6, 3))  # a stored day: as of the refresh, until the next one
    with read_only(sessions) as s:
        reader = Reader(Work(s, TEAM, config, later))
        stored, _ = reader.value(churn, june, None)
        assert stored != pytest.approx(live(s, config, "churn_rate", june, None)[0])
        assert reader.as_of == NOW  # and the answer says so
    refresh(sessions, config, TEAM, later + timedelta(minutes=5))
    assert_trends_are_live_ones(sessions, config, later)


def test_a_full_refresh_of_an_empty_workspace_stores_nothing(engine, config):
    report = refresh(make_sessionmaker(engine), config, "T0EMPTY", NOW)
    assert (report.days, report.rows) == (0, 0)


@pytest.mark.parametrize(("first", "last", "expected"), [
    (date(2026, 5, 12), date(2026, 5, 16), [("day", date(2026, 5, 12), date(2026, 5, 16))]),
    (date(2026, 5, 10), date(2026, 5, 20), [("week", date(2026, 5, 11), date(2026, 5, 17)),
                                            ("day", date(2026, 5, 10), date(2026, 5, 10)),
                                            ("day", date(2026, 5, 18), date(2026, 5, 20))]),
    (date(2026, 5, 1), date(2026, 5, 31), [("month", date(2026, 5, 1), date(2026, 5, 31))]),
    # weeks do not nest in months: each range around June is covered on its own
    (date(2026, 5, 10), date(2026, 7, 20), [("month", date(2026, 6, 1), date(2026, 6, 30)),
                                            ("week", date(2026, 5, 11), date(2026, 5, 31)),
                                            ("day", date(2026, 5, 10), date(2026, 5, 10)),
                                            ("week", date(2026, 7, 6), date(2026, 7, 19)),
                                            ("day", date(2026, 7, 1), date(2026, 7, 5)),
                                            ("day", date(2026, 7, 20), date(2026, 7, 20))]),
    (date(2025, 11, 15), date(2027, 2, 28), [("year", date(2026, 1, 1), date(2026, 12, 31)),
                                             ("month", date(2025, 12, 1), date(2025, 12, 31)),
                                             ("week", date(2025, 11, 17), date(2025, 11, 30)),
                                             ("day", date(2025, 11, 15), date(2025, 11, 16)),
                                             ("month", date(2027, 1, 1), date(2027, 2, 28))]),
    # a rolling 30 days: four weeks, not 30 days
    (date(2026, 6, 4), date(2026, 7, 3), [("week", date(2026, 6, 8), date(2026, 6, 28)),
                                          ("day", date(2026, 6, 4), date(2026, 6, 7)),
                                          ("day", date(2026, 6, 29), date(2026, 7, 3))]),
    # ISO week 1 of 2026 starts on Monday 2025-12-29: one row across the new year
    (date(2025, 12, 20), date(2026, 1, 20), [("week", date(2025, 12, 22), date(2026, 1, 18)),
                                             ("day", date(2025, 12, 20), date(2025, 12, 21)),
                                             ("day", date(2026, 1, 19), date(2026, 1, 20))]),
])
def test_a_span_of_days_reads_whole_years_months_and_weeks_as_one_row_each(first, last,
                                                                           expected):
    assert list(spans(first, last)) == expected


def test_a_span_ending_at_the_last_stored_day_reads_that_months_or_weeks_rollup():
    assert list(spans(date(2026, 10, 26), date(2026, 11, 23), through=date(2026, 11, 23))) == [
        ("month", date(2026, 11, 1), date(2026, 11, 30)),
        ("day", date(2026, 10, 26), date(2026, 10, 31))]
    assert list(spans(date(2026, 1, 1), date(2026, 11, 23), through=date(2026, 11, 23))) == [
        ("year", date(2026, 1, 1), date(2026, 12, 31))]  # this year so far
    # the last 30 days through a Thursday: its week so far is one row (into next year)
    assert list(spans(date(2026, 12, 2), date(2026, 12, 31), through=date(2026, 12, 31))) == [
        ("week", date(2026, 12, 7), date(2027, 1, 3)),
        ("day", date(2026, 12, 2), date(2026, 12, 6))]
    assert list(spans(date(2026, 10, 1), date(2026, 10, 28), through=date(2026, 10, 28))) == [
        ("month", date(2026, 10, 1), date(2026, 10, 31))]  # not the weeks of a month so far


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)  # SQLite has one writer: refreshes never overlap there
def test_two_workers_first_refreshes_write_one_after_the_other(sessions, config):
    """Two bot processes' schedulers refresh at the same minute: the second would fail
    writing a snapshot row the first has written and not committed yet."""
    errors = []

    def second_worker():
        try:
            refresh(sessions, config, TEAM, NOW)
        except Exception as exc:  # noqa: BLE001 - the test's verdict
            errors.append(exc)
    with sessions() as s:  # a day with routed leads, which both workers store
        day = s.scalar(select(func.min(Lead.routed_at))).astimezone(config.workspace.tz).date()
    with sessions.begin() as first:
        lock_refresh(first, TEAM)  # the first worker, in the middle of writing
        replace_rows(first, TEAM, "day", day, [
            {"metric": "leads_routed", "dimension": "", "dimension_value": "", "value": -1.0,
             "numerator": -1.0, "denominator": 0.0, "histogram": None, "computed_at": NOW}])
        second = threading.Thread(target=second_worker)
        second.start()
        until_waiting(first.get_bind(), second)
    second.join()
    assert errors == []
    with sessions() as s:
        assert s.scalar(select(MetricSnapshot.numerator).where(
            MetricSnapshot.day == day, MetricSnapshot.metric == "leads_routed",
            MetricSnapshot.dimension == "")) > 0  # the second worker's, whole


def test_a_refresh_written_a_day_at_a_time_stores_what_one_transaction_does(
        sessions, config, monkeypatch):
    refresh(sessions, config, TEAM, NOW)
    whole = stored_rows(sessions)
    with sessions.begin() as s:
        s.execute(delete(MetricSnapshot))
        s.execute(delete(MetricRefresh))
    monkeypatch.setattr("bot.metrics.snapshots.CHUNK_ROWS", 1)  # a transaction per day
    refresh(sessions, config, TEAM, NOW)
    assert_same_rows(stored_rows(sessions), whole)
    later = NOW + timedelta(days=1)  # and the next day's refresh, on top of it
    monkeypatch.setattr("bot.metrics.snapshots.CHUNK_ROWS", 10**9)
    refresh(sessions, config, TEAM, later)
    whole = stored_rows(sessions)
    monkeypatch.setattr("bot.metrics.snapshots.CHUNK_ROWS", 1)
    refresh(sessions, config, TEAM, later)
    assert_same_rows(stored_rows(sessions), whole)


def test_questions_asked_during_a_first_refresh_are_answered_live(sessions, config):
    """Its days count once it is recorded, at its end: halfway, no stored day is read."""
    asked = []

    def halfway(done, total):
        if done == total // 2:
            assert_answers_are_live_ones(sessions, config)
            asked.append(done)
    refresh(sessions, config, TEAM, NOW, progress=halfway)
    assert asked


# ------------------------------------------------------------------ a run of days a statement


def per_day_rows(reader, days):
    """What the refresh stored before it computed runs of days at once: each day's parts
    from the live queries, one day at a time."""
    return [snapshots._rows(reader, 1, lambda metric, by, d=day: [reader.live(
        metric, reader.midnight(d), reader.midnight(d + timedelta(days=1)), by)])[0]
        for day in days]


def per_unit_rollups(reader, finer, grain, units):
    """...and each month's (year's) rollup from its stored rows, one unit at a time."""
    return [snapshots._rows(reader, 1, lambda metric, by, u=unit: snapshots.stored_parts_each(
        reader.session, reader.team_id, metric, by,
        [[(finer, u, snapshots._next_unit(grain, u) - timedelta(days=1))]]))[0]
        for unit in units]


def add_leads_around_the_changes_of_clocks(sessions):
    """Leads routed half an hour either side of New York's local midnights around the
    days of 23 hours (2026-03-08) and 25 hours (2025-11-02): an hour's shift of a day's
    boundary moves one of them to the next or previous day."""
    utc = [datetime(2026, 3, 8, 4, 30, tzinfo=UTC),  # 3/7 23:30 EST
           datetime(2026, 3, 8, 5, 30, tzinfo=UTC),  # 3/8 00:30 EST
           datetime(2026, 3, 9, 3, 30, tzinfo=UTC),  # 3/8 23:30 EDT
           datetime(2026, 3, 9, 4, 30, tzinfo=UTC),  # 3/9 00:30 EDT
           datetime(2025, 11, 2, 3, 30, tzinfo=UTC),  # 11/1 23:30 EDT
           datetime(2025, 11, 2, 4, 30, tzinfo=UTC),  # 11/2 00:30 EDT
           datetime(2025, 11, 3, 4, 30, tzinfo=UTC),  # 11/2 23:30 EST
           datetime(2025, 11, 3, 5, 30, tzinfo=UTC)]  # 11/3 00:30 EST
    with sessions.begin() as s:
        s.add_all(Lead(team_id=TEAM, external_id=f"L-DST{k}", source="webinar",
                       status="contacted", created_at=t, mql_at=t, routed_at=t,
                       accepted_at=t + timedelta(minutes=5),
                       first_touch_at=t + timedelta(minutes=5), response_minutes=5,
                       business_minutes=5, sla_due_at=t + timedelta(minutes=15), sla_met=True,
                       updated_at=t) for k, t in enumerate(utc))


def stored_rows(sessions) -> list[tuple]:
    c = MetricSnapshot
    with sessions() as s:
        return sorted((r.grain, r.day, r.metric, r.dimension, r.dimension_value, r.value,
                       r.numerator, r.denominator, sorted((r.histogram or {}).items()))
                      for r in s.execute(select(c)).scalars())


def refreshed_both_ways(sessions, config, monkeypatch, now, **kwargs):
    """The rows a refresh stores a run of days at a time, and those it stored a day (a
    month) at a time, from the same store, refreshed as it was before each."""
    with sessions() as s:
        before = [(r.grain, r.day, {k: getattr(r, k) for k in (
            "metric", "dimension", "dimension_value", "value", "numerator", "denominator",
            "histogram", "computed_at")}) for r in s.scalars(select(MetricSnapshot))]
        state = get_refresh(s, TEAM)
        state = state and (state.first_day, state.last_day, state.as_of)

    def restore():
        with sessions.begin() as s:
            s.execute(delete(MetricSnapshot))
            s.execute(delete(MetricRefresh))
            for grain, day, row in before:
                s.add(MetricSnapshot(team_id=TEAM, grain=grain, day=day, **row))
            if state:
                s.add(MetricRefresh(team_id=TEAM, first_day=state[0], last_day=state[1],
                                    as_of=state[2]))
    refresh(sessions, config, TEAM, now, **kwargs)
    chunked = stored_rows(sessions)
    restore()
    with monkeypatch.context() as m:
        m.setattr(snapshots, "_day_rows", per_day_rows)
        m.setattr(snapshots, "_chunks", lambda days, size: [[day] for day in days])
        m.setattr(snapshots, "_rollup_rows", per_unit_rollups)
        m.setattr(snapshots, "_store", _per_unit_store(snapshots._store))
        refresh(sessions, config, TEAM, now, **kwargs)
    return chunked, stored_rows(sessions)


def _per_unit_store(store):
    def per_unit(sessions, upkeep, config, team_id, now, grain, batches, rows_of, progress=None):
        units = [[unit] for batch in batches for unit in batch]
        return store(sessions, upkeep, config, team_id, now, grain, units, rows_of, progress)
    return per_unit


@pytest.mark.parametrize("chunk_days", [31, 3])
def test_a_run_of_days_a_statement_stores_what_a_day_at_a_time_did(
        sessions, config, monkeypatch, chunk_days):
    add_leads_around_the_changes_of_clocks(sessions)
    monkeypatch.setattr(snapshots, "CHUNK_DAYS", {"sqlite": chunk_days, "postgresql": chunk_days})
    chunked, per_day = refreshed_both_ways(sessions, config, monkeypatch, NOW)
    assert len(chunked) > 200
    assert_same_rows(chunked, per_day)
    # the next refresh's few days (the settling window and a changed day), on top of it
    later = NOW + timedelta(days=1)
    with sessions.begin() as s:
        lead = s.scalars(select(Lead).where(Lead.accepted_at < at(5, 31),
                                            Lead.rejected_at.is_(None))).first()
        lead.rejected_at, lead.rejection_reason, lead.updated_at = at(5, 20), "bad_fit", later
    chunked, per_day = refreshed_both_ways(sessions, config, monkeypatch, later)
    assert_same_rows(chunked, per_day)


def assert_same_rows(chunked, per_day):
    """The same rows; their numbers to the last bits a float sum's order moves (CAC's days
    hold shares of a month's spend, and PostgreSQL adds a rollup's days in the order its
    plan reads them, which differs between one statement for all units and one a unit)."""
    def numbers(rows):
        return [x if x is not None else -1.0 for r in rows for x in r[5:8]]
    assert [r[:5] + r[8:] for r in chunked] == [r[:5] + r[8:] for r in per_day]
    assert numbers(chunked) == pytest.approx(numbers(per_day), rel=1e-12, abs=1e-9)


def add_leads_across_a_new_year(sessions):
    """Leads of both owners in ISO week 1 of 2026 (Monday 2025-12-29 to Sunday 2026-01-04)
    and the weeks either side, at New York's evening (the next day in UTC)."""
    with sessions.begin() as s:
        owners = s.scalars(select(Person.id).where(Person.team_id == TEAM)).all()[:2]
        for k in range(16):
            t = datetime(2025, 12, 24, 23, 30, tzinfo=UTC) + timedelta(days=k)
            s.add(Lead(team_id=TEAM, external_id=f"L-NY{k}", owner_id=owners[k % 2],
                       source=("webinar", "events")[k % 3 == 0], status="contacted",
                       created_at=t, mql_at=t, routed_at=t, accepted_at=t + timedelta(minutes=5),
                       first_touch_at=t + timedelta(minutes=3 + k), response_minutes=3 + k,
                       business_minutes=3 + k, sla_due_at=t + timedelta(minutes=15),
                       sla_met=3 + k <= 15, updated_at=t))


ROLLING = ("last 30 days", "2026-06-10..2026-07-20",
           "2026-02-20..2026-03-25", "2025-10-20..2025-11-20", "2025-12-20..2026-01-20")


def test_rolling_ranges_read_weeks_and_answer_as_live_ones(sessions, config):
    """Across both changes of clocks and ISO week 1 of 2026, which spans two years."""
    add_leads_around_the_changes_of_clocks(sessions)
    add_leads_across_a_new_year(sessions)
    refresh(sessions, config, TEAM, NOW)
    with read_only(sessions) as s:
        weeks = set(s.scalars(select(MetricSnapshot.day).where(MetricSnapshot.grain == "week")))
        assert {date(2025, 12, 29), date(2026, 3, 2), date(2025, 10, 27)} <= weeks
        assert {w.weekday() for w in weeks} == {0}
        reader = Reader(Work(s, TEAM, config, NOW))
        for text in ROLLING:
            period = parse_period(text, NOW, config.workspace.tz)
            stored, _ = reader._split(METRICS["response_time"], period.start, period.end)
            assert "week" in {grain for grain, _, _ in stored}, text
    assert_answers_are_live_ones(sessions, config, ROLLING)
    assert_trends_are_live_ones(sessions, config, metrics=[
        METRICS["response_time"], METRICS["leads_routed"]], periods=ROLLING[:1])


def week_rows(sessions, metric: str) -> dict[date, tuple]:
    c = MetricSnapshot
    with sessions() as s:
        return {day: (n, computed_at) for day, n, computed_at in s.execute(
            select(c.day, c.numerator, c.computed_at).where(
                c.grain == "week", c.metric == metric, c.dimension == ""))}


def test_a_refresh_rebuilds_the_week_of_each_day_it_redoes(sessions, config):
    refresh(sessions, config, TEAM, NOW)
    before = week_rows(sessions, "leads_routed")
    later = NOW + timedelta(hours=1)
    t = datetime(2026, 6, 10, 16, tzinfo=UTC)  # a Wednesday, in the week from June 8
    with sessions.begin() as s:
        s.add(Lead(team_id=TEAM, external_id="L-LATE", source="webinar", status="routed",
                   created_at=t, mql_at=t, routed_at=t, updated_at=later))
    assert refresh(sessions, config, TEAM, later).days == SETTLE_DAYS + 1  # and its day
    weeks, c = week_rows(sessions, "leads_routed"), MetricSnapshot
    with sessions() as s:
        days = s.scalar(select(func.sum(c.numerator)).where(
            c.grain == "day", c.metric == "leads_routed", c.dimension == "",
            c.day.between(date(2026, 6, 8), date(2026, 6, 14))))
        week = parse_period("2026-06-08..2026-06-14", later, config.workspace.tz)
        reader = Reader(Work(s, TEAM, config, later))
        assert reader._split(METRICS["leads_routed"], week.start, week.end) == (
            (("week", date(2026, 6, 8), date(2026, 6, 14)),), [])
        assert reader.value(METRICS["leads_routed"], week, None)[0] == \
            live(s, config, "leads_routed", week, None)[0]
    assert weeks[date(2026, 6, 8)] == (days, later)  # rebuilt, with the new lead
    assert days == before[date(2026, 6, 8)][0] + 1
    assert weeks[date(2026, 6, 1)] == before[date(2026, 6, 1)]  # no day of it redone


def test_a_day_is_from_one_local_midnight_to_the_next_across_a_change_of_clocks(
        sessions, config):
    add_leads_around_the_changes_of_clocks(sessions)
    refresh(sessions, config, TEAM, NOW)
    with sessions() as s:
        routed = dict(s.execute(select(MetricSnapshot.day, MetricSnapshot.numerator).where(
            MetricSnapshot.grain == "day", MetricSnapshot.metric == "leads_routed",
            MetricSnapshot.dimension == "", MetricSnapshot.day.in_([
                date(2026, 3, d) for d in (6, 7, 8, 9, 10)] + [
                date(2025, 11, d) for d in (1, 2, 3, 4)]))).all())
    assert routed == {date(2026, 3, 7): 1, date(2026, 3, 8): 2, date(2026, 3, 9): 1,
                      date(2025, 11, 1): 1, date(2025, 11, 2): 2, date(2025, 11, 3): 1}


def test_each_metrics_parts_of_many_periods_are_those_of_each_period(sessions, config):
    """`each` against `parts`, one period at a time: local days (a DST day among them),
    months, periods apart and overlapping, with and without `now` (SLA judged at each
    period's end)."""
    add_leads_around_the_changes_of_clocks(sessions)
    tz = config.workspace.tz

    def day(d):
        return datetime(d.year, d.month, d.day, tzinfo=tz)
    days = [date(2026, 3, 6) + timedelta(days=k) for k in range(5)]
    periods = [(day(d), day(d + timedelta(days=1))) for d in days]
    periods += [(at(5, 1), at(6, 1)), (at(6, 1), at(7, 1)), (at(5, 20), at(7, 10)),
                (at(6, 2, 9, 5), at(6, 2, 9, 10)), (at(7, 1), at(8, 1)),
                (day(date(2025, 11, 2)), day(date(2025, 11, 3)))]
    with read_only(sessions) as s:
        for metric in (*METRICS.values(), *SERIES):
            if not metric.additive:
                continue
            assert metric.each is not None, metric.key
            for by in (None, *metric.dimensions):
                for now in (NOW, None):
                    each = parts_each(metric, s, TEAM, periods, by, now=now, tz=tz)
                    one = [metric.parts(s, TEAM, a, b, by, now=now, tz=tz) for a, b in periods]
                    assert each == one, (metric.key, by, now)


def _stored_reads(engine) -> list[str]:
    """The statements that read metric_snapshots, as they run."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_):
        if "FROM metric_snapshots" in statement:
            seen.append(statement)
    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_a_question_asked_again_reads_no_snapshots_until_the_next_refresh(sessions, config):
    """Questions come in waves (a digest, then a channel asking the same): the stored parts
    of an answer are read once per refresh. A refresh at the very same time as the last
    (a frozen clock) still makes answers read the new rows."""
    refresh(sessions, config, TEAM, NOW)
    reads = _stored_reads(sessions.kw["bind"])
    question = parse("response time last quarter by owner", config, NOW)

    def ask():
        with read_only(sessions) as s:
            return answer(Work(s, TEAM, config, NOW), question)
    first = ask()
    assert reads
    read_once = len(reads)
    assert ask() == first and len(reads) == read_once  # remembered
    with sessions.begin() as s:  # the quarter's responses were ten times slower
        s.execute(update(Lead).where(Lead.routed_at >= at(4, 1), Lead.routed_at < at(7, 1))
                  .values(response_minutes=Lead.response_minutes * 10))
    assert ask() == first  # the snapshots say so until they are refreshed
    refresh(sessions, config, TEAM, NOW, full=True)
    again = ask()
    assert len(reads) > read_once and again != first
    with read_only(sessions) as s:
        expected = live(s, config, "response_time", question.period, "owner")
    assert (again.value, again.groups) == (pytest.approx(expected[0]),
                                           pytest.approx(expected[1]))


def test_stored_histograms_are_added_up_per_group_and_a_null_one_is_empty(engine):
    """Each group's rows over the span add up, their values read as numbers (JSON keeps
    them as text); a row whose histogram is JSON null still names its group."""
    sessions = make_sessionmaker(engine)
    row = {"metric": "response_time", "dimension": "owner", "computed_at": NOW}
    with sessions.begin() as s:
        replace_rows(s, TEAM, "day", date(2026, 6, 1), [
            {**row, "dimension_value": "U0SAM", "histogram": {1.5: 2, 12.0: 1}},
            {**row, "dimension_value": "U0SUE", "histogram": None}])
        replace_rows(s, TEAM, "day", date(2026, 6, 2), [
            {**row, "dimension_value": "U0SAM", "histogram": {1.5: 1, 3.0: 4}}])
    with sessions() as s:
        merged = merge_histograms_each(s, TEAM, "response_time", "owner",
                                       [[("day", date(2026, 6, 1), date(2026, 6, 2))]])
    assert merged == [{"U0SAM": {1.5: 3, 3.0: 4, 12.0: 1}, "U0SUE": {}}]
    assert all(isinstance(v, float) for v in merged[0]["U0SAM"])


def test_sales_cycle_leaves_out_a_deal_won_before_it_was_created(sessions, config):
    """Versions before intake refused it stored such deals; a negative cycle is impossible.
    July's D2 (33.5 days) and D7 (61), both Sue's: 47.25 exact (47.5 to two figures), with
    a deal of hers "won" ten days before it was created beside them (33.5 if counted) —
    live, from a refresh a day at a time and from one of many days a statement."""
    with sessions.begin() as s:
        sue = s.scalar(select(Person.id).where(Person.slack_id == "U0SUE"))
        s.add(Deal(team_id=TEAM, external_id="D-BACKWARDS", owner_id=sue, source="sales",
                   amount=1_000, created_at=at(7, 22), closed_at=at(7, 12), outcome="won",
                   updated_at=at(7, 22)))
    july = parse_period("2026-07", NOW, config.workspace.tz)
    cycle = METRICS["sales_cycle"]
    refresh(sessions, config, TEAM, NOW)
    with read_only(sessions) as s:
        for exact, median in ((True, 47.25), (False, 47.5)):
            reader = Reader(Work(s, TEAM, config, NOW), exact=exact)
            assert reader.value(cycle, july, "owner") == (median, {"U0SUE": median}), exact
        halves = [(july.start, at(7, 16)), (at(7, 16), july.end)]
        assert parts_each(cycle, s, TEAM, halves, None)[0][""].histogram == {34.0: 1}
    assert_answers_are_live_ones(sessions, config, ("2026-07",))
