"""Issue 15 item 4: greetings, emoji and key mashes never become reports; coordinators close a
report as 无效 or 重复 with a reason the firm sees, counted apart in stats and the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.errors import NotAllowed, WrongState
from bot.core.models import CloseType, Ticket, TicketState
from bot.render import texts
from bot.reporting.ledger import LEDGER_COLUMNS, TEAM_COLUMNS, ledger_sheets
from bot.reporting.stats import Metrics, compute
from tests.neutral.harness import START, World, button, in_group, person


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await World.staffed(tmp_path)
    yield w
    await w.close()


async def no_drafts(w: World, firm_id: str) -> bool:
    async with w.s.db.read() as repo:
        return await repo.tickets.get_draft(firm_id) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好", texts.GREETING_GUIDE),
        ("您好，在吗？", texts.GREETING_GUIDE),
        ("😭😭😭🙏", texts.ASK_DESCRIPTION),
        ("asdfghjkl", texts.ASK_DESCRIPTION),
        ("。。。？？", texts.ASK_DESCRIPTION),
    ],
)
async def test_nothing_to_report_gets_a_guide_and_no_draft(
    world: World, text: str, expected: str
) -> None:
    firm = person("zhang")
    await world.register(firm, "宏远铸造厂", "张伟", "13812345678")
    replies = await world.say(firm, text)
    assert [r.text for r in replies] == [expected]
    assert not any(r.buttons for r in replies)  # nothing to confirm
    assert await no_drafts(world, firm.id)
    # A real description afterwards is a report as before, without the greeting in it.
    proposal = await world.say(firm, "厂里变压器老是跳闸，生产线停了")
    _, draft, _ = button(proposal, "确认")
    async with world.s.db.read() as repo:
        ticket = await repo.tickets.get_ticket(draft)
    assert ticket is not None and ticket.text == "厂里变压器老是跳闸，生产线停了"


async def test_a_thank_you_after_a_photo_joins_the_draft(world: World) -> None:
    firm = person("zhang")
    await world.register(firm, "宏远铸造厂", "张伟", "13812345678")
    incoming = world.incoming("", attachment=("photo", "PHOTO-1"))
    await world.s.workflow.private_message(firm, incoming)
    replies = await world.say(firm, "谢谢")
    assert "请确认您的问题" in replies[-1].text and "附件：1 个" in replies[-1].text


async def test_a_greeting_before_registering_starts_registration_without_a_draft(
    world: World,
) -> None:
    firm = person("li")
    replies = await world.say(firm, "你好")
    assert "企业名称" in replies[-1].text and "已暂存" not in replies[-1].text
    assert await no_drafts(world, firm.id)


async def discarded(world: World, kind: str, reason: str) -> int:
    firm, coord = person("zhang"), in_group(person("chen"), World.COORD)
    await world.register(firm, "宏远铸造厂", "张伟", "13812345678")
    _, draft, _ = button(await world.say(firm, "我想问问营业执照年报怎么弄"), "确认")
    await world.s.workflow.confirm(firm, draft)
    await world.flush()
    card = world.sender.chat(World.COORD)[-1]
    label = "无效" if kind == "invalid" else "重复"
    action, ticket_id, arg = button(card, label)
    assert (action, ticket_id, arg) == ("discard", draft, kind)
    with pytest.raises(NotAllowed):  # a team member is not a coordinator
        await world.s.workflow.ask_discard(in_group(person("wang"), World.TECH), ticket_id, arg)
    asked = await world.s.workflow.ask_discard(coord, ticket_id, arg)
    assert "原因" in asked[0].text and asked[0].force_reply
    done = await world.say(coord, reason)
    assert f"已按“{label}”关闭" in done[0].text
    await world.flush()
    return ticket_id


async def test_coordinators_close_a_report_as_invalid_and_the_firm_sees_why(
    world: World,
) -> None:
    ticket_id = await discarded(world, "invalid", "测试消息，没有具体问题")
    told = world.sender.chat("test:zhang")[-1].text
    assert "按“无效”处理" in told and "测试消息，没有具体问题" in told
    async with world.s.db.read() as repo:
        ticket = await repo.tickets.get_ticket(ticket_id)
        tickets = await repo.tickets.tickets_submitted_between(None, None)
    assert ticket is not None
    assert ticket.state == TicketState.CANCELLED and ticket.close_type == CloseType.INVALID
    card = world.sender.chat(World.COORD)[-1]
    assert card.buttons == [] and "已撤销" in card.text
    # A second press finds the ticket closed.
    with pytest.raises(WrongState):
        await world.s.workflow.ask_discard(
            in_group(person("chen"), World.COORD), ticket_id, "invalid"
        )
    stats = stats_of(world, tickets)
    assert (stats.invalid, stats.duplicate, stats.cancelled, stats.valid) == (1, 0, 1, 0)
    sheets = ledger_sheets(
        tickets,
        {},
        now=START + timedelta(hours=1),
        exporter_name="陈调度",
        exporter_is_admin=False,
        calendar=world.s.workflow.calendar,
        policy=world.s.workflow.policy,
    )
    row = dict(zip(LEDGER_COLUMNS, sheets[0].rows[0], strict=True))
    assert row["是否解决"] == "无效" and "无效件" in str(row["备注"])
    assert "测试消息" in str(row["办理结果"])
    total = dict(zip(TEAM_COLUMNS, sheets[-1].rows[-1], strict=True))
    assert (total["交办总量"], total["无效件"], total["重复件"]) == (0, 1, 0)


async def test_a_duplicate_is_counted_apart_in_stats_from_the_database(world: World) -> None:
    await discarded(world, "duplicate", "与 YM-20261127-0001 是同一停电问题")
    told = world.sender.chat("test:zhang")[-1].text
    assert "按“重复”处理" in told and "同一停电问题" in told
    world.clock.advance(minutes=1)  # the week ends now: the ticket is inside it
    digest = await world.s.reports.digest("week")  # the SQL aggregates
    assert digest.period.overall.duplicate == 1 and digest.period.overall.invalid == 0
    assert "重复 1 件" in await world.s.reports.stats_text(None, "week")


def stats_of(world: World, tickets: list[Ticket]) -> Metrics:
    """The ticket-by-ticket computation."""
    period = compute(
        tickets,
        START - timedelta(days=1),
        START + timedelta(days=1),
        now=START + timedelta(hours=1),
        policy=world.s.workflow.policy,
    )
    return period.overall
