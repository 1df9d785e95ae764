"""Issue 15 item 3: a co-handling (协办) team gets its own card, follows progress and the result,
answers the lead with notes; the lead team claims, talks to the firm and resolves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.errors import NotAllowed
from bot.render import texts
from tests.neutral.harness import CHANNEL, World, button, in_group, person

FIN = f"{CHANNEL}:group-fin"
LOAN = "变压器老跳闸，想贷款买新设备"  # 科技工信 leads, 金融 co-handles


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await World.staffed(tmp_path)
    w.sender.groups.add(FIN)
    w.members.groups[FIN] = {person("qian").id}
    await w.s.workflow.bind(in_group(person("admin", admin=True), FIN), "金融群", "finance")
    await w.s.workflow.start(person("qian"), "staff")
    yield w
    await w.close()


async def submitted(w: World) -> tuple[int, str]:
    firm = person("zhang")
    await w.register(firm, "宏远铸造厂", "张伟", "13812345678")
    proposal = await w.say(firm, LOAN)
    assert "协办：金融服务一米团" in proposal[0].text
    _, ticket, _ = button(proposal, "确认")
    await w.s.workflow.confirm(firm, ticket)
    await w.flush()
    async with w.s.db.read() as repo:
        found = await repo.tickets.get_ticket(ticket)
    assert found is not None and found.number is not None
    return ticket, found.number


async def test_the_co_handling_team_gets_its_own_read_only_card(world: World) -> None:
    w = world
    ticket, number = await submitted(w)
    lead_card = w.sender.chat(w.TECH)[-1]
    assert [label for label, _ in lead_card.buttons] == ["签收", "退回"]
    [co_card] = w.sender.chat(FIN)
    assert number in co_card.text and "本团为协办" in co_card.text
    assert "主办：科技工信服务一米团" in co_card.text and co_card.buttons == []
    qian = in_group(person("qian"), FIN)
    with pytest.raises(NotAllowed):  # the lead team claims, not the co-handling team
        await w.s.workflow.claim(qian, ticket)
    await w.s.workflow.claim(in_group(person("wang"), w.TECH), ticket)
    await w.flush()
    assert "责任人：wang" in co_card.text  # the co card follows the ticket
    assert "办理中" in co_card.text


async def test_co_notes_reach_the_lead_not_the_firm_and_the_result_reaches_both(
    world: World,
) -> None:
    w = world
    ticket, number = await submitted(w)
    wang, qian = in_group(person("wang"), w.TECH), in_group(person("qian"), FIN)
    await w.s.workflow.claim(wang, ticket)
    await w.flush()
    co_card = w.sender.chat(FIN)[0]
    # A reply to the co card is a note for the lead team.
    incoming = w.incoming("设备更新可申请技改贴息贷款，材料清单已发主办", reply_to=co_card.id)
    done = await w.s.workflow.group_message(qian, incoming)
    assert "已记录协办意见" in done[0].text
    # /progress in the co-handling group does the same.
    done = await w.s.workflow.progress(qian, number, "银行下周一可以上门")
    assert "已记录协办意见" in done[0].text
    await w.flush()
    lead_group = [s.text for s in w.sender.chat(w.TECH)]
    assert any("协办单位 金融服务一米团" in t and "技改贴息" in t for t in lead_group)
    assert any("银行下周一" in t for t in lead_group)
    firm_saw = " ".join(s.text for s in w.sender.chat("test:zhang"))
    assert "技改贴息" not in firm_saw and "银行下周一" not in firm_saw
    assert "协办·金融" in co_card.text and "银行下周一" in co_card.text
    # The co-handling team may look the ticket up, not resolve it.
    view = await w.s.workflow.view(qian, number)
    assert number in view[0].text
    with pytest.raises(NotAllowed):
        await w.s.workflow.ask_resolve(qian, ticket)
    # The lead resolves: the firm rates it, the co-handling team is told the result.
    await w.s.workflow.ask_resolve(wang, ticket)
    await w.say(wang, "已更换变压器，贴息贷款已申报")
    await w.flush()
    told = w.sender.chat(FIN)[-1].text
    assert told == texts.CO_RESOLVED.format(
        number=number, lead="科技工信服务一米团", result="已更换变压器，贴息贷款已申报"
    )
    assert "结果：已更换变压器" in co_card.text
    assert any("请评价" in s.text for s in w.sender.chat("test:zhang"))
