"""Metrics over periods that are not whole months: monthly spend spread over its days
(CAC), a period's length in months (CLTV's monthly churn), and the previous period of
equal length (revenue growth) across a change of clocks.

Every number is read the ways an answer can read it: live (before a first refresh), from
the snapshots a refresh stores, and, for CAC, by `parts_each` over many periods at once
(what a refresh on PostgreSQL computes days with). Periods are New York's (the tests'
workspace): March 2026 has 31 local days, one of them 23 hours long.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import select

from bot.metrics.grammar import Period, parse_period
from bot.metrics.registry import METRICS, Parts, compute, parts_each
from bot.metrics.snapshots import Reader, refresh
from bot.platform.work import Work
from storage.db import make_sessionmaker, read_only
from storage.models import Customer, Deal, Spend
from tests.slack import TEAM

ASKED = datetime(2026, 3, 31, 18, 0, tzinfo=UTC)  # "last 30 days" is then Mar 2-31
DAY = timedelta(days=1)


def _spend(month: int, team: str, amount: int) -> Spend:
    return Spend(team_id=TEAM, month=date(2026, month, 1), team=team, amount=Decimal(amount),
                 updated_at=datetime(2026, month, 1, tzinfo=UTC))


def _customer(ext: str, started: datetime, churned: datetime | None = None,
              mrr: int = 100) -> Customer:
    return Customer(team_id=TEAM, external_id=ext, mrr=Decimal(mrr), started_at=started,
                    churned_at=churned, updated_at=started)


def _answers(sessions, config, now, key, texts, by=None):
    """The metric over each period (words, as asked at ASKED, or a Period): live, then from
    snapshots."""
    tz = config.workspace.tz
    periods = [p if isinstance(p, Period) else parse_period(p, ASKED, tz) for p in texts]

    def read():
        with read_only(sessions) as s:
            reader = Reader(Work(s, TEAM, config, now))
            return [reader.value(METRICS[key], p, by)[1 if by else 0] for p in periods]

    live = read()
    refresh(sessions, config, TEAM, now)
    return live, read()


# ------------------------------------------------------------------ CAC


CAC_NOW = datetime(2026, 4, 10, 16, 0, tzinfo=UTC)  # March is past: a refresh stores it


@pytest.fixture
def march(engine):
    """9,300 spent in March (marketing 6,200, sales 3,100); a customer starts each day of
    March, at noon in New York."""
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        s.add_all([_spend(3, "marketing", 6_200), _spend(3, "sales", 3_100)])
        s.add_all(_customer(f"C-03-{day:02d}", datetime(2026, 3, day, 16, 0, tzinfo=UTC))
                  for day in range(1, 32))
    return sessions


def test_cac_spreads_a_months_spend_over_its_days(march, config):
    texts = ("2026-03",  # all 9,300 for 31 customers
             "last 30 days",  # Mar 2-31: 30/31 of it, 9,000, for 30 (was null)
             "2026-02-23..2026-03-01",  # the week of Feb 23: Mar 1's 300 for one (was 9,300)
             "2026-03-02..2026-03-08",  # the week of Mar 2: 7/31, 2,100, for 7 (was null)
             "2026-03-31")  # one day
    live, stored = _answers(march, config, CAC_NOW, "cac", texts)
    assert live == pytest.approx([300.0] * 5)
    assert stored == pytest.approx([300.0] * 5)


def test_cac_by_team_spreads_each_teams_spend(march, config):
    live, stored = _answers(march, config, CAC_NOW, "cac", ["2026-03-02..2026-03-08"], "team")
    expected = {"marketing": 1_400 / 7, "sales": 700 / 7}
    assert live == [pytest.approx(expected)]
    assert stored == [pytest.approx(expected)]


def test_cac_over_two_months_adds_each_months_share(march, config):
    with march.begin() as s:  # February: 5,600 over its 28 days, 200 a day, no customer
        s.add(_spend(2, "marketing", 5_600))
    # Feb 15-Mar 14: 14 × 200 + 14 × 300 = 7,000 for the 14 of March (was 9,300 / 14)
    live, stored = _answers(march, config, CAC_NOW, "cac", ["2026-02-15..2026-03-14"])
    assert live == stored == [pytest.approx(500.0)]


def test_cac_of_many_periods_at_once_is_each_periods(march, config):
    """What a refresh computes a run of days with (PostgreSQL's) equals the parts of each
    period alone; days, a partial day and a week across the change of clocks."""
    tz = config.workspace.tz
    local = [datetime(2026, 3, d, tzinfo=tz) for d in (1, 2, 8, 9, 20)]
    periods = [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in pairwise(local)]
    periods.append((datetime(2026, 3, 31, 16, tzinfo=UTC), datetime(2026, 4, 1, 4, tzinfo=UTC)))
    cac = METRICS["cac"]
    with read_only(march) as s:
        for by in (None, "team"):
            many = parts_each(cac, s, TEAM, periods, by, tz=tz)
            one = [cac.parts(s, TEAM, a, b, by, tz=tz) for a, b in periods]
            for each, alone in zip(many, one, strict=True):
                assert each.keys() == alone.keys()
                for k in each:
                    assert (each[k].numerator, each[k].denominator) == pytest.approx(
                        (alone[k].numerator, alone[k].denominator))
        spend = [Parts.total(p.values()).numerator for p in parts_each(cac, s, TEAM, periods,
                                                                       None, tz=tz)]
    # a day is 300 (Mar 8 is 23 hours); the last is noon to midnight, half of Mar 31
    assert spend == pytest.approx([300, 6 * 300, 300, 11 * 300, 150])


def test_a_changed_months_spend_redoes_every_stored_day_of_it(march, config):
    refresh(march, config, TEAM, CAC_NOW)
    later = CAC_NOW + timedelta(hours=1)
    with march.begin() as s:
        row = s.scalars(select(Spend).where(Spend.team == "sales")).one()
        row.amount, row.updated_at = Decimal(6_200), later
    refresh(march, config, TEAM, later + timedelta(minutes=5))
    week = parse_period("2026-03-02..2026-03-08", ASKED, config.workspace.tz)
    with read_only(march) as s:
        _, groups = Reader(Work(s, TEAM, config, later)).value(METRICS["cac"], week, "team")
    assert groups == pytest.approx({"marketing": 200.0, "sales": 200.0})


# ------------------------------------------------------------------ CLTV


CLTV_NOW = datetime(2027, 1, 5, 16, 0, tzinfo=UTC)  # 2026 is past


@pytest.fixture
def churning(engine):
    """100 customers at $100 MRR since December; 10 churn in February, 10 in March."""
    sessions = make_sessionmaker(engine)
    started = datetime(2025, 12, 10, 15, tzinfo=UTC)
    churns = {**dict.fromkeys(range(10), datetime(2026, 2, 10, 15, tzinfo=UTC)),
              **dict.fromkeys(range(10, 20), datetime(2026, 3, 10, 15, tzinfo=UTC))}
    with sessions.begin() as s:
        s.add_all(_customer(f"C-{n:03d}", started, churns.get(n)) for n in range(100))
    return sessions


def test_cltv_divides_churn_by_the_calendar_months_of_a_month_quarter_or_year(churning, config):
    # ARPA 100 at each period's end, gross margin 0.8: CLTV = 80 / monthly churn
    texts = ("2026-02",  # 10 of 100 in 1 month: 800 (was 736, 28 days / 30.4375)
             "2026-03",  # 10 of 90 in 1 month: 720 (was 733)
             "Q1 2026",  # 20 of 100 in 3 months: 1,200 (was 1,183)
             "2026",  # 20 of 100 in 12 months: 4,800 (was 4,793)
             "2026-02-01..2026-02-14")  # not whole months: 10 of 100 in 14 / 30.4375 months
    expected = [800.0, 720.0, 1_200.0, 4_800.0, 80 / (0.1 / (14 / 30.4375))]
    live, stored = _answers(churning, config, CLTV_NOW, "cltv", texts)
    assert live == pytest.approx(expected)
    assert stored == pytest.approx(expected)


def test_a_periods_length_in_months(config):
    from bot.metrics.registry import month_length

    ny = config.workspace.tz

    def months(a: datetime, b: datetime, tz=ny) -> float:
        return month_length(a.astimezone(UTC), b.astimezone(UTC), tz)

    def local(*args: int) -> datetime:
        return datetime(*args, tzinfo=ny)

    assert months(local(2026, 2, 1), local(2026, 3, 1)) == 1  # 28 days
    assert months(local(2026, 3, 1), local(2026, 4, 1)) == 1  # 31 days less an hour
    assert months(local(2026, 1, 1), local(2026, 4, 1)) == 3
    assert months(local(2025, 12, 1), local(2026, 2, 1)) == 2
    assert months(local(2026, 1, 1), local(2027, 1, 1)) == 12
    day = timedelta(days=1)
    # not from a 1st to a 1st: days / 30.4375, as before
    assert months(local(2026, 2, 2), local(2026, 3, 1)) == pytest.approx(27 / 30.4375)
    assert months(local(2026, 2, 1), local(2026, 2, 15)) == pytest.approx(14 / 30.4375)
    assert months(local(2026, 2, 1), local(2026, 3, 1) - timedelta(hours=1)) == pytest.approx(
        (28 * day - timedelta(hours=1)) / (30.4375 * day))
    # local days, however many hours: a week across either change of clocks is 7 days
    # (was 167 and 169 hours / 30.4375 days when given in UTC)
    assert months(local(2026, 3, 5), local(2026, 3, 12)) == pytest.approx(7 / 30.4375)
    assert months(local(2026, 10, 29), local(2026, 11, 5)) == pytest.approx(7 / 30.4375)
    # New York's month is not UTC's: a UTC month read in New York is not whole months
    utc_feb = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert months(*utc_feb, tz=UTC) == 1
    assert months(*utc_feb) == pytest.approx(28 / 30.4375)


# ------------------------------------------------------------------ revenue growth


def _won(ext: str, closed: datetime, amount: int) -> Deal:
    return Deal(team_id=TEAM, external_id=ext, source="marketing", amount=Decimal(amount),
                created_at=closed, closed_at=closed, outcome="won", updated_at=closed)


@pytest.mark.parametrize("first", [date(2026, 3, 5),  # a week holding Mar 8, 23 hours
                                   date(2026, 10, 29)])  # a week holding Nov 1, 25 hours
def test_revenue_growths_previous_period_starts_at_local_midnight_across_a_change_of_clocks(
        engine, config, first):
    """The week before a week of 167 (169) hours is the 7 local days before it, from
    midnight: a deal won at 00:30 on its first day counts, one won at 23:30 the evening
    before does not. However the week's instants are given (in the zone, or in UTC as
    storage's are), live and from stored sums: 200 against 100, +100%. The week before
    began at 01:00 (at 23:00 the evening before) when given in UTC: growth none (-82%)."""
    tz = config.workspace.tz
    before = first - 7 * DAY
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        s.add_all([_won("D-LATE", datetime.combine(before - DAY, time(23, 30), tz), 1_000),
                   _won("D-PREV", datetime.combine(before, time(0, 30), tz), 100),
                   _won("D-NOW", datetime.combine(first, time(12), tz), 200)])
    week = parse_period(f"{first}..{first + 6 * DAY}", ASKED, tz)
    in_utc = Period(week.start.astimezone(UTC), week.end.astimezone(UTC), week.label)
    with read_only(sessions) as s:
        assert compute(s, TEAM, "revenue_growth", in_utc.start, in_utc.end, tz=tz)[0] == 1.0
    live, stored = _answers(sessions, config, CLTV_NOW, "revenue_growth", (week, in_utc))
    assert live == stored == [1.0, 1.0]

