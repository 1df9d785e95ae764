"""Chinese working days and office hours: the clock every time limit is measured on.

Working days come from the official calendar (``chinese_calendar``): public holidays are off and
make-up working days (调休, e.g. a Sunday before National Day) are on. For a year the package has
no data for yet, the calendar falls back to Monday–Friday and logs a warning once per year;
``extra_holidays`` / ``extra_workdays`` let a deployment add the State Council's announcement before
a new package release.

Working hours are the configured morning and afternoon periods (default 8:30–12:00 and
14:30–17:30, 6.5 h). A "working day" as a unit of duration is 6.5 working hours.

Definitions used throughout:

* ``add_work_hours(dt, h)``: the earliest instant at which ``h`` working hours have passed since
  ``dt``. Time outside the working periods does not count, so a submission at night starts
  counting at the next working period, and a limit that uses up a period exactly ends at that
  period's end (12:00 or 17:30), not at the start of the next one.
* ``add_work_days(dt, n)`` for a whole ``n``: from a moment inside the working day (on a working
  day, between the morning start and the afternoon end, lunch break included) it is the same
  clock time on the n-th next working day: Friday 17:20 + 1 = the next working day 17:20. From
  outside the working day (before the morning start, after the afternoon end, or on a day off)
  counting starts at the next working period, and that working day is day 1: so the result is
  the end (17:30) of the n-th working day counted from there. Saturday + 1 = the next working
  day 17:30; Monday 07:00 + 1 = Monday 17:30; Friday 18:00 + 1 = the next working day 17:30.
  Both cases add exactly ``n`` × 6.5 working hours. A fractional ``n`` uses ``add_work_hours``.

All datetimes are timezone-aware; they are converted to the configured zone (China has no
daylight saving time, so wall-clock arithmetic is exact).
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from bot.config import Settings

logger = logging.getLogger(__name__)

_DAY = timedelta(days=1)


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


class WorkCalendar:
    """Working days (official Chinese calendar) and working hours (from settings)."""

    def __init__(
        self,
        settings: Settings,
        *,
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
    ) -> None:
        self.tz = ZoneInfo(settings.timezone)
        periods = [
            (settings.work_morning_start, settings.work_morning_end),
            (settings.work_afternoon_start, settings.work_afternoon_end),
        ]
        self._periods: list[tuple[int, int]] = [(_seconds(a), _seconds(b)) for a, b in periods]
        for (start, end), (nxt, _) in zip(
            self._periods, [*self._periods[1:], (86400, 0)], strict=True
        ):
            if not start < end <= nxt:
                raise ValueError("工作时间配置有误：上午、下午时段须按时间先后且不重叠")
        self._day_start = self._periods[0][0]
        self._day_end = self._periods[-1][1]
        self.day_seconds = sum(end - start for start, end in self._periods)
        self.day_hours = self.day_seconds / 3600
        self._holidays = frozenset([*settings.extra_holidays, *extra_holidays])
        self._workdays = frozenset([*settings.extra_workdays, *extra_workdays])
        self._cache: dict[date, bool] = {}
        self._warned_years: set[int] = set()
        # _cum[i]: working seconds from _origin + i days up to the start of that day; the table
        # starts on 1 January of the first year asked about and grows on demand.
        self._origin: date | None = None
        self._cum: list[int] = [0]

    # -- days ---------------------------------------------------------------------------------

    def is_workday(self, d: date) -> bool:
        """True on an official working day (holidays off, 调休 make-up days on)."""
        cached = self._cache.get(d)
        if cached is not None:
            return cached
        if d in self._holidays:
            result = False
        elif d in self._workdays:
            result = True
        else:
            try:
                result = bool(chinese_calendar.is_workday(d))
            except NotImplementedError:
                if d.year not in self._warned_years:
                    self._warned_years.add(d.year)
                    logger.warning(
                        "chinese_calendar has no data for %d: using Monday-Friday "
                        "(upgrade chinesecalendar or pass extra_holidays/extra_workdays)",
                        d.year,
                    )
                result = d.weekday() < 5
        self._cache[d] = result
        return result

    def next_workday(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        d += _DAY
        while not self.is_workday(d):
            d += _DAY
        return d

    # -- instants -----------------------------------------------------------------------------

    def local(self, dt: datetime) -> datetime:
        """``dt`` in the configured zone; naive datetimes are refused."""
        tz = dt.tzinfo
        if tz is self.tz:
            return dt
        if tz is None or dt.utcoffset() is None:
            raise ValueError("naive datetime: all times must be timezone-aware")
        return dt.astimezone(self.tz)

    def _at(self, d: date, seconds: float) -> datetime:
        return datetime.combine(d, time(), tzinfo=self.tz) + timedelta(seconds=seconds)

    def is_work_time(self, dt: datetime) -> bool:
        """True inside a working period of a working day (start inclusive, end exclusive)."""
        dt = self.local(dt)
        if not self.is_workday(dt.date()):
            return False
        s = self._sec_of_day(dt)
        return any(start <= s < end for start, end in self._periods)

    def next_work_start(self, dt: datetime) -> datetime:
        """``dt`` itself during working time, else the start of the next working period."""
        dt = self.local(dt)
        d = dt.date()
        if self.is_workday(d):
            s = self._sec_of_day(dt)
            for start, end in self._periods:
                if s < start:
                    return self._at(d, start)
                if s < end:
                    return dt
        return self._at(self.next_workday(d), self._periods[0][0])

    @staticmethod
    def _sec_of_day(dt: datetime) -> float:
        return dt.hour * 3600 + dt.minute * 60 + dt.second + dt.microsecond / 1e6

    def _worked_in_day(self, s: float) -> float:
        """Working seconds of a working day elapsed at ``s`` seconds after midnight."""
        total = 0.0
        for start, end in self._periods:
            if s <= start:
                break
            total += min(s, end) - start
        return total

    def _ensure(self, d: date) -> int:
        """Index of ``d`` in the prefix table, extending (or re-anchoring) it as needed."""
        origin = self._origin
        if origin is None or d < origin:
            origin = self._origin = date(d.year, 1, 1)
            self._cum = [0]
        idx = (d - origin).days
        while len(self._cum) <= idx + 1:
            day = origin + timedelta(days=len(self._cum) - 1)
            self._cum.append(self._cum[-1] + (self.day_seconds if self.is_workday(day) else 0))
        return idx

    def _position(self, dt: datetime) -> float:
        """Working seconds from the table origin up to ``dt`` (monotonic in ``dt``)."""
        dt = self.local(dt)
        d = dt.date()
        idx = self._ensure(d)
        inside = self._worked_in_day(self._sec_of_day(dt)) if self.is_workday(d) else 0.0
        return self._cum[idx] + inside

    def work_hours_between(self, a: datetime, b: datetime) -> float:
        """Working hours from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        self._ensure(min(self.local(a).date(), self.local(b).date()))  # anchor before reading
        return (self._position(b) - self._position(a)) / 3600

    def work_days_between(self, a: datetime, b: datetime) -> float:
        """Working time from ``a`` to ``b`` in working days of 6.5 h (by default)."""
        return self.work_hours_between(a, b) / self.day_hours

    def add_work_hours(self, dt: datetime, hours: float) -> datetime:
        """The earliest instant at which ``hours`` working hours have passed since ``dt``."""
        if hours < 0:
            raise ValueError("hours must not be negative")
        dt = self.local(dt)
        if hours == 0:
            return dt
        target = self._position(dt) + hours * 3600
        origin = self._origin
        assert origin is not None  # set by _position
        while self._cum[-1] < target:
            self._ensure(origin + timedelta(days=len(self._cum) + 30))
        # First day index whose cumulative start reaches the target, minus one: the day on
        # which the target is reached (always a working day, its increment being positive).
        i = bisect_left(self._cum, target) - 1
        day = origin + timedelta(days=i)
        rest = target - self._cum[i]
        for start, end in self._periods:
            if rest <= end - start:
                return self._at(day, start + rest)
            rest -= end - start
        return self._at(day, self._periods[-1][1])  # pragma: no cover - rounding guard

    def add_work_days(self, dt: datetime, days: float) -> datetime:
        """``days`` working days after ``dt`` (see the module docstring for the rule)."""
        if days < 0:
            raise ValueError("days must not be negative")
        dt = self.local(dt)
        if days == 0:
            return dt
        if days != int(days):
            return self.add_work_hours(dt, days * self.day_hours)
        n = int(days)
        d = dt.date()
        s = self._sec_of_day(dt)
        if self.is_workday(d) and self._day_start <= s <= self._day_end:
            for _ in range(n):
                d = self.next_workday(d)
            return datetime.combine(d, dt.timetz())
        start = self.next_work_start(dt).date()
        for _ in range(n - 1):
            start = self.next_workday(start)
        return self._at(start, self._day_end)

    def end_of_workday(self, d: date) -> datetime:
        """The end of the working day ``d`` (17:30 by default), whether or not ``d`` is one."""
        return self._at(d, self._day_end)

    def next_workday_end(self, dt: datetime) -> datetime:
        """``dt`` if it falls on a working day, else the end of the next working day."""
        dt = self.local(dt)
        if self.is_workday(dt.date()):
            return dt
        return self.end_of_workday(self.next_workday(dt.date()))
