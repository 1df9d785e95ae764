"""The clock on real tickets: reminders once each and in order, across restarts; extensions."""

from __future__ import annotations

import pytest

from tests.conftest import (
    ADMIN,
    COORD,
    COORD_GROUP,
    FIRM_A,
    MEMBER_TECH,
    TECH_GROUP,
    World,
)
from tests.dbread import query
from tests.fakes import Sent
from tests.test_ticket_loop import POWER, report

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")


async def claimed(w: World, text: str) -> tuple[str, Sent]:
    """A registered firm reports `text`; 王工 of 科技工信 claims it. The number and the card."""
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    number = await report(w, FIRM_A, "张伟", text)
    card = w.telegram.find(TECH_GROUP, number)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "签收")
    return number, card


async def tick(world: World) -> int:
    count = await world.services.followup.tick()
    await world.flush()
    return count


async def test_unclaimed_reminders_fire_once_in_order_and_survive_restart(world: World) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await w.say(TECH_GROUP, ADMIN, "管理员", "/lead")  # the admin is the team lead here
    assert "团长" in tg.last(TECH_GROUP).text
    number = await report(w, FIRM_A, "张伟", "厂里的数控机床要做技术改造，想了解政策")
    assert await tick(w) == 0
    w.clock.advance(hours=1, minutes=1)  # 10:01, one working hour
    assert await tick(w) == 1
    assert "1个工作小时无人签收" in tg.last(TECH_GROUP).text
    assert await tick(w) == 0  # not again
    await w.restart()
    assert await tick(w) == 0  # not again after a restart either
    w.clock.advance(hours=1)  # 11:01: two working hours → the team lead
    assert await tick(w) == 1
    lead_note = tg.last(TECH_GROUP).text
    assert "2个工作小时" in lead_note and f"tg://user?id={ADMIN}" in lead_note
    w.clock.advance(days=3)  # Monday 11:01: one working day since submission
    await tick(w)
    assert "超过1个工作日无人签收" in tg.texts(COORD_GROUP)
    keys = [row[0] for row in query(w.settings, "SELECT key FROM reminders_sent ORDER BY at")]
    assert keys[:3] == ["claim_1h", "claim_2h_lead", "claim_1d_coord"]
    assert number in tg.texts(COORD_GROUP)


async def test_yellow_then_red_edits_the_card_and_morning_list(world: World) -> None:
    w, tg = world, world.telegram
    number, card = await claimed(w, "想问问研发费用加计扣除怎么申报")
    w.clock.advance(days=6)  # past 80 % of 7 days
    await tick(w)
    assert "🟡" in card.text and "黄牌预警" in card.text
    w.clock.advance(days=2)
    await tick(w)
    assert "🔴" in card.text and "红牌超期" in card.text
    assert f"{number}（科技工信服务一米团，责任人 王工）已超期" in tg.texts(COORD_GROUP)
    w.clock.advance(days=3)  # Monday 2026-12-07
    await w.services.followup.send_overdue_report()
    await w.flush()
    overdue = tg.last(COORD_GROUP).text
    assert "超期工单" in overdue and number in overdue and "王工" in overdue


async def test_extension_approved_moves_deadline_and_tells_firm(world: World) -> None:
    w, tg = world, world.telegram
    number, card = await claimed(w, "想问问研发费用加计扣除怎么申报")
    old_due = card.text.split("时限：")[1][:16]
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/extend {number} 30 需要等省里批复")
    assert "最多10" in tg.last(TECH_GROUP).text
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/extend {number} 3 需要等省里批复")
    assert "已提交专班审批" in tg.last(TECH_GROUP).text
    request = tg.find(COORD_GROUP, "延期申请")
    await w.press(COORD_GROUP, MEMBER_TECH, "王工", request, "批准")
    assert "只有专班" in tg.answers[-1]["text"]
    await w.press(COORD_GROUP, COORD, "调度员", request, "批准")
    new_due = card.text.split("时限：")[1][:16]
    assert new_due > old_due
    assert "办理时限调整为" in tg.last(FIRM_A).text and "省里批复" in tg.last(FIRM_A).text
    await w.press(COORD_GROUP, COORD, "调度员", request, "批准")
    assert "已经处理过" in tg.answers[-1]["text"]


async def test_no_evaluation_closes_after_five_working_days(world: World) -> None:
    w, tg = world, world.telegram
    _, card = await claimed(w, POWER)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "办结")
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "已修复")
    w.clock.advance(days=8)
    await tick(w)
    assert "已销号" in card.text
    assert "未评价" in tg.texts(COORD_GROUP)


async def test_long_term_item_approved_and_its_feedback_cycle_reminded(world: World) -> None:
    w, tg = world, world.telegram
    number, card = await claimed(w, "生产线技术改造要分三期做，想申请技改补贴")
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/longterm {number} 分三期实施，需按季度跟踪")
    request = tg.find(COORD_GROUP, "长期跟踪申请")
    await w.press(COORD_GROUP, COORD, "调度员", request, "批准")
    assert "长期跟踪" in card.text
    assert "长期跟踪" in tg.last(FIRM_A).text
    w.clock.advance(days=29)
    await tick(w)
    assert "本周期尚未反馈" not in tg.texts(TECH_GROUP)
    w.clock.advance(days=2)  # one 30-day cycle without a progress note
    await tick(w)
    assert "本周期尚未反馈进展" in tg.last(TECH_GROUP).text
    assert "红牌" not in card.text  # a long-term item on its cycle is not overdue
