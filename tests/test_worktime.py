"""Working days and hours on the Chinese calendar, and the deadlines a county office computes."""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.core.models import Urgency
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy

TZ = ZoneInfo("Asia/Shanghai")


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ)


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar(Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.fixture
def policy(cal: WorkCalendar) -> DeadlinePolicy:
    return DeadlinePolicy(Settings(_env_file=None), cal)  # type: ignore[call-arg]


def test_national_day_2025_calendar(cal: WorkCalendar) -> None:
    assert cal.is_workday(date(2025, 9, 26))  # Friday
    assert not cal.is_workday(date(2025, 9, 27))  # Saturday
    assert cal.is_workday(date(2025, 9, 28))  # Sunday, make-up working day (调休)
    assert cal.is_workday(date(2025, 9, 30))  # Tuesday, last working day before the holiday
    assert not any(cal.is_workday(date(2025, 10, d)) for d in range(1, 9))  # 1–8 October off
    assert cal.is_workday(date(2025, 10, 9))
    assert cal.is_workday(date(2025, 10, 11))  # Saturday, make-up working day
    assert not cal.is_workday(date(2025, 10, 12))


def test_working_time_boundaries(cal: WorkCalendar) -> None:
    assert cal.is_work_time(at(2025, 9, 30, 8, 30))
    assert not cal.is_work_time(at(2025, 9, 30, 12, 0))  # lunch starts
    assert not cal.is_work_time(at(2025, 9, 30, 17, 30))
    assert cal.is_work_time(at(2025, 9, 28, 10, 0))  # make-up Sunday
    assert not cal.is_work_time(at(2025, 10, 2, 10, 0))  # holiday
    assert cal.next_work_start(at(2025, 9, 30, 12, 10)) == at(2025, 9, 30, 14, 30)
    assert cal.next_work_start(at(2025, 9, 30, 17, 30)) == at(2025, 10, 9, 8, 30)
    assert cal.next_work_start(at(2025, 9, 30, 9, 0)) == at(2025, 9, 30, 9, 0)
    assert cal.day_hours == 6.5


def test_naive_datetimes_are_refused(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError):
        cal.is_work_time(datetime(2025, 9, 30, 9, 0))


def test_last_working_day_before_national_day(policy: DeadlinePolicy) -> None:
    """Submitted Tuesday 2025-09-30 16:00, the last working day before the holiday."""
    submitted = at(2025, 9, 30, 16, 0)
    # Ordinary: +7 days = Tue 7 Oct 16:00, a holiday → end of the next working day, Thu 9 Oct.
    assert policy.due_at(submitted, Urgency.NORMAL) == at(2025, 10, 9, 17, 30)
    # Urgent: 24 real hours; production stopped does not wait for the holiday.
    assert policy.due_at(submitted, Urgency.URGENT) == at(2025, 10, 1, 16, 0)
    # Complex: 15 working days at the same clock time. After 30 Sep: 9(1) 10(2) 11 Sat(3)
    # 13(4) 14(5) 15(6) 16(7) 17(8) 20(9) 21(10) 22(11) 23(12) 24(13) 27(14) 28 Oct(15).
    assert policy.due_at(submitted, Urgency.COMPLEX) == at(2025, 10, 28, 16, 0)
    # Major: +30 days = Thu 30 Oct 16:00, a working day: unchanged.
    assert policy.due_at(submitted, Urgency.MAJOR) == at(2025, 10, 30, 16, 0)
    # 签收 in 2 working hours: 16:00–17:30 is 1.5 h, the remaining 0.5 h on 9 Oct from 8:30.
    assert policy.claim_due(submitted) == at(2025, 10, 9, 9, 0)


def test_friday_before_national_day(policy: DeadlinePolicy, cal: WorkCalendar) -> None:
    """Submitted Friday 2025-09-26 10:00."""
    submitted = at(2025, 9, 26, 10, 0)
    # Ordinary: +7 days = Fri 3 Oct, a holiday → end of Thu 9 Oct.
    assert policy.due_at(submitted, Urgency.NORMAL) == at(2025, 10, 9, 17, 30)
    # Complex: after 26 Sep: 28 Sun(1) 29(2) 30(3) Oct 9(4) 10(5) 11 Sat(6) 13(7) 14(8) 15(9)
    # 16(10) 17(11) 20(12) 21(13) 22(14) 23(15) → Thu 23 Oct 10:00.
    assert policy.due_at(submitted, Urgency.COMPLEX) == at(2025, 10, 23, 10, 0)
    # 签收 within 2 working hours: 12:00 the same day (the morning period ends exactly then).
    assert policy.claim_due(submitted) == at(2025, 9, 26, 12, 0)
    # Unclaimed for 1 working day → coordinators at the same clock time on the make-up Sunday.
    assert cal.add_work_days(submitted, 1) == at(2025, 9, 28, 10, 0)


def test_submitted_at_1720(policy: DeadlinePolicy, cal: WorkCalendar) -> None:
    """Submitted Thursday 2025-11-20 17:20, ten minutes before the office closes."""
    submitted = at(2025, 11, 20, 17, 20)
    # Ordinary: Thu 27 Nov 17:20, a working day.
    assert policy.due_at(submitted, Urgency.NORMAL) == at(2025, 11, 27, 17, 20)
    # 签收: 10 min on Thursday, 1 h 50 min on Friday from 8:30 → Fri 10:20.
    assert policy.claim_due(submitted) == at(2025, 11, 21, 10, 20)
    # Group reminder at 1 working hour: 10 min + 50 min → Fri 9:20.
    assert cal.add_work_hours(submitted, 1) == at(2025, 11, 21, 9, 20)
    # Coordinators at 1 working day: the next working day at the same clock time.
    assert cal.add_work_days(submitted, 1) == at(2025, 11, 21, 17, 20)
    # Complex: 21(1) 24(2) 25 26 27 28(6) Dec 1–5(7–11) 8 9 10 11(15) → Thu 11 Dec 17:20.
    assert policy.due_at(submitted, Urgency.COMPLEX) == at(2025, 12, 11, 17, 20)
    # Friday 17:20 before the make-up Sunday: +1 working day is that Sunday 17:20.
    assert cal.add_work_days(at(2025, 9, 26, 17, 20), 1) == at(2025, 9, 28, 17, 20)


def test_make_up_sunday(policy: DeadlinePolicy) -> None:
    """Submitted Sunday 2025-09-28 10:00, a make-up working day (调休)."""
    submitted = at(2025, 9, 28, 10, 0)
    # 签收 within 2 working hours: the Sunday counts, so 12:00 the same day.
    assert policy.claim_due(submitted) == at(2025, 9, 28, 12, 0)
    # Ordinary: +7 days = Sun 5 Oct, a holiday → end of Thu 9 Oct.
    assert policy.due_at(submitted, Urgency.NORMAL) == at(2025, 10, 9, 17, 30)
    # Complex: 29(1) 30(2) Oct 9(3) 10(4) 11(5) 13(6) 14(7) 15(8) 16(9) 17(10) 20(11) 21(12)
    # 22(13) 23(14) 24(15) → Fri 24 Oct 10:00.
    assert policy.due_at(submitted, Urgency.COMPLEX) == at(2025, 10, 24, 10, 0)


def test_outside_working_hours(cal: WorkCalendar) -> None:
    # Saturday (not a make-up day) + 1 working day: counting starts Sunday 28 Sep (make-up),
    # which is day 1 → its end.
    assert cal.add_work_days(at(2025, 9, 27, 10, 0), 1) == at(2025, 9, 28, 17, 30)
    # After hours on the last day before the holiday → end of the first day after it.
    assert cal.add_work_days(at(2025, 9, 30, 19, 0), 1) == at(2025, 10, 9, 17, 30)
    # Before hours: that day is day 1.
    assert cal.add_work_days(at(2025, 11, 24, 7, 0), 1) == at(2025, 11, 24, 17, 30)
    # A night submission starts counting at 8:30 the next working day.
    assert cal.add_work_hours(at(2025, 11, 20, 22, 0), 1) == at(2025, 11, 21, 9, 30)
    # Lunch break: the same clock time the next working day.
    assert cal.add_work_days(at(2025, 11, 20, 13, 0), 1) == at(2025, 11, 21, 13, 0)


def test_add_work_days_adds_whole_working_days(cal: WorkCalendar) -> None:
    for start in (
        at(2025, 9, 26, 17, 20),
        at(2025, 9, 27, 10, 0),
        at(2025, 9, 30, 19, 0),
        at(2025, 11, 20, 13, 0),
        at(2025, 11, 24, 7, 0),
    ):
        for n in (1, 3, 15):
            end = cal.add_work_days(start, n)
            assert cal.work_days_between(start, end) == pytest.approx(n)


def test_between(cal: WorkCalendar) -> None:
    # Tue 30 Sep 16:00 → Thu 9 Oct 9:00: 1.5 h + 0.5 h across the holiday.
    assert cal.work_hours_between(at(2025, 9, 30, 16, 0), at(2025, 10, 9, 9, 0)) == 2.0
    assert cal.work_hours_between(at(2025, 10, 9, 9, 0), at(2025, 9, 30, 16, 0)) == -2.0
    # A whole working week is 5 working days.
    assert cal.work_days_between(at(2025, 11, 17, 8, 30), at(2025, 11, 21, 17, 30)) == 5.0
    # Fractional days use working hours: half a day from Mon 8:30 is 11:45.
    assert cal.add_work_days(at(2025, 11, 17, 8, 30), 0.5) == at(2025, 11, 17, 11, 45)


def test_2026_is_supported(cal: WorkCalendar, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.worktime.calendar"):
        assert not cal.is_workday(date(2026, 10, 1))  # National Day 2026
        assert cal.is_workday(date(2026, 11, 27))
    assert not caplog.records


def test_years_without_data_fall_back_to_weekdays(caplog: pytest.LogCaptureFixture) -> None:
    cal = WorkCalendar(Settings(_env_file=None), extra_holidays={date(2027, 1, 1)})  # type: ignore[call-arg]
    with caplog.at_level(logging.WARNING, logger="bot.worktime.calendar"):
        assert cal.is_workday(date(2027, 1, 4))  # Monday
        assert not cal.is_workday(date(2027, 1, 9))  # Saturday
        assert not cal.is_workday(date(2027, 1, 1))  # added by the deployment
        # A complex ticket submitted Mon 28 Dec 2026 runs into 2027: 29(1) 30(2) 31(3)
        # Jan 4(4) 5 6 7 8(8) 11–15(13) 18(14) 19(15) → Tue 19 Jan 2027 10:00.
        policy = DeadlinePolicy(Settings(_env_file=None), cal)  # type: ignore[call-arg]
        assert policy.due_at(at(2026, 12, 28, 10, 0), Urgency.COMPLEX) == at(2027, 1, 19, 10, 0)
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1
