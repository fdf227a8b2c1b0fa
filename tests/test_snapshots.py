"""Daily snapshots: a refresh stores whole past days; answers over them equal live ones."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from bot.metrics.answers import answer, parse, trend_periods
from bot.metrics.grammar import parse_period
from bot.metrics.registry import METRICS, compute
from bot.metrics.snapshots import SETTLE_DAYS, Reader, refresh, spans
from bot.platform.work import Work
from storage.db import make_sessionmaker, read_only
from storage.models import Customer, Lead, MetricRefresh, MetricSnapshot
from storage.snapshots import get_refresh, lock_refresh, replace_rows
from tests.concurrency import until_waiting
from tests.metric_fixture import add_metric_fixture, at
from tests.slack import TEAM

NOW = datetime(2026, 8, 3, 16, 0, tzinfo=UTC)  # a Monday noon in New York, after the fixture
PERIODS = ("2026-05", "2026-06", "Q2 2026", "2026-05-10..2026-07-20", "last 90 days", "ytd",
           "this month", "2025-12")


@pytest.fixture
def sessions(engine):
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        add_metric_fixture(s)
    return sessions


def live(session, config, key, period, by):
    return compute(session, TEAM, key, period.start, period.end, by,
                   gross_margin=config.workspace.gross_margin, now=NOW)


def assert_answers_are_live_ones(sessions, config):
    with read_only(sessions) as s:
        reader = Reader(Work(s, TEAM, config, NOW))
        for text in PERIODS:
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
    changed = refresh(sessions, config, TEAM, later + timedelta(minutes=5))
    assert changed.days == SETTLE_DAYS + 1 or changed.days == SETTLE_DAYS + 2  # + its day(s)
    with sessions() as s:
        may = parse_period("2026-05", NOW, config.workspace.tz)
        metric = METRICS["acceptance_rate"]
        assert Reader(Work(s, TEAM, config, later)).value(metric, may, None)[0] == pytest.approx(
            live(s, config, "acceptance_rate", may, None)[0])


DERIVED = [m for m in METRICS.values() if m.derive is not None]


def assert_trends_are_live_ones(sessions, config, now=NOW):
    """Whole answers (value, groups, the six periods of the trend, the comparison) of the
    metrics derived from stored sums, against the live computation of each period."""
    with read_only(sessions) as s:
        for metric in DERIVED:
            for text in PERIODS:
                for by in (None, *metric.dimensions[:2]):
                    for compare in ("", " vs last year"):
                        words = f"{metric.key} {text}" + (f" by {by}" if by else "") + compare
                        a = answer(Work(s, TEAM, config, now), parse(words, config, now))
                        live_trend = [compute(s, TEAM, metric.key, p.start, p.end, None,
                                              gross_margin=config.workspace.gross_margin)[0]
                                      for p in trend_periods(a.period)]
                        assert list(a.trend) == pytest.approx(live_trend), words
                        groups = compute(s, TEAM, metric.key, a.period.start, a.period.end, by)[1]
                        assert (a.groups or {}) == pytest.approx(groups or {}), words
                        if a.comparison:
                            then = a.comparison.period
                            assert a.comparison.value == pytest.approx(compute(
                                s, TEAM, metric.key, then.start, then.end, None,
                                gross_margin=config.workspace.gross_margin)[0]), words


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
    (date(2026, 5, 10), date(2026, 5, 20), [("day", date(2026, 5, 10), date(2026, 5, 20))]),
    (date(2026, 5, 1), date(2026, 5, 31), [("month", date(2026, 5, 1), date(2026, 5, 31))]),
    (date(2026, 5, 10), date(2026, 7, 20), [("month", date(2026, 6, 1), date(2026, 6, 30)),
                                            ("day", date(2026, 5, 10), date(2026, 5, 31)),
                                            ("day", date(2026, 7, 1), date(2026, 7, 20))]),
    (date(2025, 11, 15), date(2027, 2, 28), [("year", date(2026, 1, 1), date(2026, 12, 31)),
                                             ("month", date(2025, 12, 1), date(2025, 12, 31)),
                                             ("day", date(2025, 11, 15), date(2025, 11, 30)),
                                             ("month", date(2027, 1, 1), date(2027, 2, 28))]),
])
def test_a_span_of_days_reads_whole_years_and_months_as_one_row_each(first, last, expected):
    assert spans(first, last) == expected


def test_a_span_ending_at_the_last_stored_day_reads_that_months_rollup():
    assert spans(date(2026, 10, 26), date(2026, 11, 23), through=date(2026, 11, 23)) == [
        ("month", date(2026, 11, 1), date(2026, 11, 30)),
        ("day", date(2026, 10, 26), date(2026, 10, 31))]
    assert spans(date(2026, 1, 1), date(2026, 11, 23), through=date(2026, 11, 23)) == [
        ("year", date(2026, 1, 1), date(2026, 12, 31))]  # this year so far


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


def snapshot_rows(sessions) -> list[tuple]:
    c = MetricSnapshot
    with sessions() as s:
        return s.execute(select(c.grain, c.day, c.metric, c.dimension, c.dimension_value,
                                c.numerator, c.denominator, c.histogram)
                         .order_by(c.grain, c.day, c.metric, c.dimension,
                                   c.dimension_value)).all()


def test_a_refresh_written_a_day_at_a_time_stores_what_one_transaction_does(
        sessions, config, monkeypatch):
    refresh(sessions, config, TEAM, NOW)
    whole = snapshot_rows(sessions)
    with sessions.begin() as s:
        s.execute(delete(MetricSnapshot))
        s.execute(delete(MetricRefresh))
    monkeypatch.setattr("bot.metrics.snapshots.CHUNK_ROWS", 1)  # a transaction per day
    refresh(sessions, config, TEAM, NOW)
    assert snapshot_rows(sessions) == whole
    later = NOW + timedelta(days=1)  # and the next day's refresh, on top of it
    monkeypatch.setattr("bot.metrics.snapshots.CHUNK_ROWS", 10**9)
    refresh(sessions, config, TEAM, later)
    whole = snapshot_rows(sessions)
    monkeypatch.setattr("bot.metrics.snapshots.CHUNK_ROWS", 1)
    refresh(sessions, config, TEAM, later)
    assert snapshot_rows(sessions) == whole


def test_questions_asked_during_a_first_refresh_are_answered_live(sessions, config):
    """Its days count once it is recorded, at its end: halfway, no stored day is read."""
    asked = []

    def halfway(done, total):
        if done == total // 2:
            assert_answers_are_live_ones(sessions, config)
            asked.append(done)
    refresh(sessions, config, TEAM, NOW, progress=halfway)
    assert asked
