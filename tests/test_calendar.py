"""Business time: hand-computed cases, and properties over any instant and duration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.platform.config import parse_config
from bot.sla.calendar import Calendar

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
US = Calendar.of(parse_config({"workspace": {"timezone": "America/New_York", "holidays": "US"}}))
DE = Calendar.of(parse_config({"workspace": {"timezone": "Europe/Berlin", "holidays": "DE",
                                             "extra_holidays": ["2026-12-24"]}}))
ALWAYS = Calendar.of(parse_config({"workspace": {
    "timezone": "America/New_York", "working_hours": "00:00-23:59",
    "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}}))


@pytest.mark.parametrize("start,minutes,due", [
    (datetime(2026, 11, 20, 16, 30, tzinfo=NY), 240, datetime(2026, 11, 23, 12, 30, tzinfo=NY)),
    # Thanksgiving (Thursday 26th) is skipped
    (datetime(2026, 11, 25, 15, 0, tzinfo=NY), 240, datetime(2026, 11, 27, 11, 0, tzinfo=NY)),
    # spring forward on Sunday 2026-03-08: Monday's 10:00 is EDT
    (datetime(2026, 3, 6, 16, 0, tzinfo=NY), 120, datetime(2026, 3, 9, 10, 0, tzinfo=NY)),
    # New Year's Day 2027 is a Friday holiday: Thursday 16:00 + 4h is Monday 12:00
    (datetime(2026, 12, 31, 16, 0, tzinfo=NY), 240, datetime(2027, 1, 4, 12, 0, tzinfo=NY)),
    # outside hours: the clock starts at the next working start
    (datetime(2026, 11, 24, 7, 0, tzinfo=NY), 30, datetime(2026, 11, 24, 9, 30, tzinfo=NY)),
])
def test_hand_computed_due_times(start, minutes, due):
    assert US.add_business_minutes(start, minutes) == due
    assert US.business_minutes_between(start, due) == minutes


def test_company_holidays_and_other_countries():
    # Berlin: 24 Dec is a company day off, 25 Dec a public holiday, 26-27 the weekend
    start = datetime(2026, 12, 23, 16, 0, tzinfo=BERLIN)
    assert DE.add_business_minutes(start, 120) == datetime(2026, 12, 28, 10, 0, tzinfo=BERLIN)


def test_a_dst_day_is_as_long_as_it_really_is():
    spring = datetime(2026, 3, 8, 0, 0, tzinfo=NY)
    fall = datetime(2026, 11, 1, 0, 0, tzinfo=NY)
    assert ALWAYS.business_minutes_between(spring, spring.replace(hour=23, minute=59)) == 1379
    assert ALWAYS.business_minutes_between(fall, fall.replace(hour=23, minute=59)) == 1499


instants = st.datetimes(min_value=datetime(2025, 12, 20), max_value=datetime(2027, 1, 10),  # noqa: DTZ001
                        timezones=st.just(UTC))
durations = st.integers(min_value=0, max_value=20_000)
calendars = st.sampled_from([US, DE])


@settings(max_examples=300, deadline=None)
@given(calendars, instants, durations)
def test_adding_then_measuring_round_trips(cal, start, minutes):
    due = cal.add_business_minutes(start, minutes)
    assert cal.business_minutes_between(start, due) == pytest.approx(minutes, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(calendars, instants, st.integers(min_value=1, max_value=20_000))
def test_results_fall_in_working_time(cal, start, minutes):
    due = cal.add_business_minutes(start, minutes)
    local = due.astimezone(cal.tz)
    window_start, window_end = cal.window(local.date())
    assert cal.is_working_day(local.date()) and window_start < due <= window_end


@settings(max_examples=300, deadline=None)
@given(calendars, instants, instants, durations, durations)
def test_monotonic_in_start_and_duration(cal, a, b, m, n):
    a, b = sorted((a, b))
    m, n = sorted((m, n))
    assert cal.add_business_minutes(a, m) <= cal.add_business_minutes(b, m)
    assert cal.add_business_minutes(a, m) <= cal.add_business_minutes(a, n)


@settings(max_examples=200, deadline=None)
@given(calendars, instants, st.integers(min_value=0, max_value=48 * 60))
def test_measuring_is_additive(cal, start, hours_later):
    middle = start + timedelta(minutes=hours_later)
    end = middle + timedelta(minutes=hours_later)
    total = cal.business_minutes_between(start, end)
    parts = cal.business_minutes_between(start, middle) + cal.business_minutes_between(middle, end)
    assert total == pytest.approx(parts, abs=1e-6)
