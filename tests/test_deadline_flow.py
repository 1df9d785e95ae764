"""Deadlines as a county office computes them, seen by the firm in its receipt and by the team
in its reminders (the calendar arithmetic itself is in test_worktime / test_deadlines)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import FIRM_A, TECH_GROUP, World
from tests.fakes import TZ
from tests.test_followup import tick
from tests.test_ticket_loop import report

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

TECH = "想了解一下研发费用加计扣除怎么申报"  # tech_industry, not urgent


@pytest.mark.parametrize(
    ("submitted", "deadline"),
    [
        # Friday before National Day 2025: +7 days is 3 October, a holiday; the next working day
        # is Thursday 9 October, and the deadline is the end of it.
        (datetime(2025, 9, 26, 10, 0, tzinfo=TZ), "2025-10-09 17:30"),
        # 17:20 on a Thursday: +7 days is the next Thursday at 17:20, a working day.
        (datetime(2026, 11, 26, 17, 20, tzinfo=TZ), "2026-12-03 17:20"),
        # Sunday 28 September 2025 was a make-up working day; +7 days lands in the holiday.
        (datetime(2025, 9, 28, 10, 0, tzinfo=TZ), "2025-10-09 17:30"),
    ],
)
async def test_the_receipt_shows_the_office_deadline(
    world: World, submitted: datetime, deadline: str
) -> None:
    w = world
    w.clock.current = submitted
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await report(w, FIRM_A, "张伟", TECH)
    assert f"办结时限：{deadline}" in w.telegram.find(FIRM_A, "工单编号").text


async def test_a_report_at_1720_is_chased_the_next_morning(world: World) -> None:
    w, tg = world, world.telegram
    w.clock.current = datetime(2026, 11, 26, 17, 20, tzinfo=TZ)
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    number = await report(w, FIRM_A, "张伟", TECH)
    w.clock.current = datetime(2026, 11, 26, 23, 0, tzinfo=TZ)
    assert await tick(w) == 0  # 10 working minutes so far
    w.clock.current = datetime(2026, 11, 27, 9, 19, tzinfo=TZ)
    assert await tick(w) == 0
    w.clock.current = datetime(2026, 11, 27, 9, 21, tzinfo=TZ)  # 10 min + 50 min: one hour
    assert await tick(w) == 1
    assert number in tg.last(TECH_GROUP).text and "1个工作小时" in tg.last(TECH_GROUP).text
    w.clock.current = datetime(2026, 11, 27, 10, 21, tzinfo=TZ)  # two working hours: the lead
    assert await tick(w) == 1
    assert "2个工作小时" in tg.last(TECH_GROUP).text
