"""Issue 15 item 16: a warning a later one has overtaken is not sent, and the team group is told
when its ticket turns red."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.models import TicketState
from bot.worktime.deadlines import ReminderKind, ReminderTarget
from tests.builders import make_policy, make_ticket
from tests.conftest import COORD_GROUP, FIRM_A, TECH_GROUP, World
from tests.test_ticket_loop import report

TZ = ZoneInfo("Asia/Shanghai")


def test_yellow_is_not_due_once_the_ticket_is_red() -> None:
    policy = make_policy()
    submitted = datetime(2025, 11, 17, 9, 0, tzinfo=TZ)  # Monday
    ticket = make_ticket(policy, 1, submitted, state=TicketState.PENDING_CLAIM)
    after = policy.reminders_due(ticket, datetime(2025, 11, 25, 9, 0, tzinfo=TZ), {"claim_1h"})
    keys = [r.key for r in after]
    assert "yellow" not in keys and "red" in keys
    # Before the deadline the yellow warning still comes, once.
    before = policy.reminders_due(ticket, datetime(2025, 11, 23, 9, 0, tzinfo=TZ), set())
    assert [r.kind for r in before].count(ReminderKind.YELLOW) == 1


def test_the_group_reminder_is_not_sent_when_the_lead_is_already_due() -> None:
    policy = make_policy()
    ticket = make_ticket(
        policy, 1, datetime(2025, 11, 17, 9, 0, tzinfo=TZ), state=TicketState.PENDING_CLAIM
    )
    due = policy.reminders_due(ticket, datetime(2025, 11, 17, 11, 30, tzinfo=TZ), set())
    assert [(r.key, r.target) for r in due] == [("claim_2h_lead", ReminderTarget.LEAD)]


async def test_after_a_stop_over_yellow_and_red_the_group_hears_red_only(world: World) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    number = await report(w, FIRM_A, "张伟", "厂里的数控机床要做技术改造，想了解政策")
    card = tg.find(TECH_GROUP, number)
    w.clock.current += timedelta(days=9)  # the bot was stopped while it turned yellow and red
    await w.services.followup.tick()
    await w.flush()
    assert "🔴" in card.text
    group = [m for m in tg.chat(TECH_GROUP) if m is not card and number in m.text]
    assert not [m for m in group if "🟡" in m.text or "80%" in m.text]
    red = [m for m in group if "🔴" in m.text and "已超期" in m.text]
    assert len(red) == 1 and red[0].reply_to == card.message_id
    assert f"{number}（科技工信服务一米团，责任人 （未签收））已超期" in tg.texts(COORD_GROUP)


async def test_a_ticket_turning_red_on_time_is_told_to_its_group(world: World) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    number = await report(w, FIRM_A, "张伟", "厂里的数控机床要做技术改造，想了解政策")
    w.clock.current += timedelta(days=6)
    await w.services.followup.tick()
    await w.flush()
    assert any("🟡" in m.text and number in m.text for m in tg.chat(TECH_GROUP))
    w.clock.current += timedelta(days=2)
    await w.services.followup.tick()
    await w.flush()
    assert "🔴" in tg.last(TECH_GROUP).text and "已超期" in tg.last(TECH_GROUP).text
