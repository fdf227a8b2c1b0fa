"""Business time: working days and hours in a timezone, minus public and company holidays.

Working windows are built from local wall times and then converted to UTC, and all
arithmetic happens in UTC: Python adds and subtracts datetimes that share a zoneinfo
in wall-clock time, which would make a day with a daylight-saving switch an hour off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from bot.platform.config import MAX_DURATION, Config, WorkingHours, Workspace, hashed_once

MAX_DAYS = MAX_DURATION.days  # a search for working time gives up after ten years of holidays


@cache
def _public_holidays(spec: str | None, year: int) -> frozenset[date]:
    if not spec:
        return frozenset()
    country, _, subdiv = spec.partition("-")
    return frozenset(holidays_lib.country_holidays(country, subdiv=subdiv or None, years=year))


@hashed_once
@dataclass(frozen=True)
class Calendar:
    tz: ZoneInfo
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    hours: WorkingHours = WorkingHours(time(9), time(17))
    holidays: str | None = None
    extra: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(cls, config: Config, timezone: str | None = None,
           hours: WorkingHours | None = None) -> Calendar:
        """The workspace calendar, in a person's own timezone and hours when they have them."""
        return workspace_calendar(config.workspace, timezone, hours)

    def is_working_day(self, day: date) -> bool:
        return (day.weekday() in self.days and day not in self.extra
                and day not in _public_holidays(self.holidays, day.year))

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The day's working hours as UTC instants."""
        return (datetime.combine(day, self.hours.start, self.tz).astimezone(UTC),
                datetime.combine(day, self.hours.end, self.tz).astimezone(UTC))

    def is_working_time(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        if not self.is_working_day(local.date()):
            return False
        start, end = self.window(local.date())
        return start <= at < end

    def next_working_start(self, at: datetime) -> datetime:
        """`at` itself when it is working time, else the start of the next working window."""
        at = at.astimezone(UTC)
        for start, end in self._windows_from(at):
            if at < end:
                return max(at, start)
        raise ValueError("no working time within ten years; check working_days and holidays")

    def next_day_start(self, at: datetime) -> datetime:
        """The start of the first working window that begins after `at`: the next morning."""
        at = at.astimezone(UTC)
        for start, _ in self._windows_from(at):
            if start > at:
                return start
        raise ValueError("no working time within ten years; check working_days and holidays")

    def add_business_minutes(self, at: datetime, minutes: float) -> datetime:
        return _add_business_minutes(self, at, minutes)

    def _add(self, at: datetime, minutes: float) -> datetime:
        at = at.astimezone(UTC)
        remaining = timedelta(minutes=minutes)
        for start, end in self._windows_from(at):
            begin = max(at, start)
            if begin >= end:
                continue
            if begin + remaining <= end:
                return begin + remaining
            remaining -= end - begin
        raise ValueError("no working time within ten years; check working_days and holidays")

    def business_minutes_between(self, a: datetime, b: datetime) -> float:
        a, b = a.astimezone(UTC), b.astimezone(UTC)
        if b <= a:
            return 0.0
        total = timedelta()
        for start, end in self._windows_from(a):
            if start >= b:
                break
            overlap = min(end, b) - max(start, a)
            if overlap > timedelta():
                total += overlap
        return total.total_seconds() / 60

    def _windows_from(self, at: datetime):
        day = at.astimezone(self.tz).date()
        for offset in range(MAX_DAYS):
            d = day + timedelta(days=offset)
            if self.is_working_day(d):
                yield self.window(d)


# A batch of leads routed at one instant asks the same questions thousands of times.
@lru_cache(maxsize=256)
def workspace_calendar(ws: Workspace, timezone: str | None = None,
                       hours: WorkingHours | None = None) -> Calendar:
    return Calendar(tz=ws.zone_of(timezone), days=ws.working_days,
                    hours=hours or ws.working_hours, holidays=ws.holidays,
                    extra=frozenset(ws.extra_holidays))


@lru_cache(maxsize=4096)
def _add_business_minutes(calendar: Calendar, at: datetime, minutes: float) -> datetime:
    return calendar._add(at, minutes)
