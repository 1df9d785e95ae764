"""What a new user hit (issue 15): cancelled drafts in /my, stale registration buttons, a second
办结 press, the rating not shown after rating."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.errors import BadInput
from bot.render import texts
from tests.neutral.harness import World, button, in_group, person


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await World.staffed(tmp_path)
    yield w
    await w.close()


async def claimed(w: World) -> tuple[int, object]:
    firm, member = person("zhang"), person("wang")
    await w.register(firm, "宏远铸造厂", "张伟", "13812345678")
    _, draft, _ = button(await w.say(firm, "变压器跳闸，生产线停了"), "确认")
    await w.s.workflow.confirm(firm, draft)
    await w.flush()
    _, ticket, _ = button(w.sender.chat(w.TECH)[-1], "签收")
    await w.s.workflow.claim(in_group(member, w.TECH), ticket)
    return ticket, member


async def test_my_does_not_list_a_draft_cancelled_before_submission(world: World) -> None:
    firm = person("zhang")
    await world.register(firm, "宏远铸造厂", "张伟", "13812345678")
    _, draft, _ = button(await world.say(firm, "变压器跳闸"), "取消")
    cancelled = await world.s.workflow.cancel_draft(firm, draft)
    assert texts.DRAFT_CANCELLED in cancelled[0].text
    mine = await world.s.workflow.my_tickets(firm)
    assert [r.text for r in mine] == [texts.MY_NONE]


async def test_a_town_button_pressed_after_registering_asks_nothing_again(world: World) -> None:
    firm = person("zhang")
    await world.register(firm, "宏远铸造厂", "张伟", "13812345678")
    with pytest.raises(BadInput) as refused:
        await world.s.workflow.registration_input(firm, town_index=1)
    assert refused.value.reply == texts.STALE_BUTTON
    assert "企业名称" not in refused.value.reply


async def test_a_second_resolve_press_asks_nothing_new(world: World) -> None:
    ticket, member = await claimed(world)
    acting = in_group(member, world.TECH)  # type: ignore[arg-type]
    first = await world.s.workflow.ask_resolve(acting, ticket)
    assert "办理结果" in first[0].text
    with pytest.raises(BadInput) as second:
        await world.s.workflow.ask_resolve(acting, ticket)
    assert second.value.reply == texts.AWAITING_ALREADY
    # The first prompt still stands: the next text is the result.
    await world.say(acting, "已更换变压器")
    await world.flush()
    assert any("已更换变压器" in s.text for s in world.sender.chat("test:zhang"))


async def test_the_firm_sees_what_it_chose(world: World) -> None:
    ticket, member = await claimed(world)
    acting = in_group(member, world.TECH)  # type: ignore[arg-type]
    await world.s.workflow.ask_resolve(acting, ticket)
    await world.say(acting, "已更换变压器")
    rated = await world.s.workflow.rate(person("zhang"), ticket, "basic")
    assert "您的评价：基本满意" in rated[0].text
