"""Issue 13: related reports on the neutral channel: three firms of one town report a power
cut; the later cards show 可能相关 with the earlier numbers; the coordinators get one burst
alert; /related lists them; a loan question from another town is not among them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.errors import NotFound
from bot.core.ports import Actor
from bot.services import close_services
from tests.neutral.harness import NUMBER, World, button, in_group, person

TOWNS = ("道陵岗乡", "城关镇")  # index 0 and 1 of DEFAULT_TOWNS


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await World.staffed(tmp_path)
    yield w
    await w.close()


async def report(w: World, firm: Actor, enterprise: str, town: int, text: str) -> str:
    """A firm registers in a town, reports and confirms; the ticket number."""
    wf = w.s.workflow
    await wf.start(firm)
    for answer in (enterprise, "张伟", "13812345678"):
        await wf.private_message(firm, w.incoming(answer))
    await wf.registration_input(firm, town_index=town)
    await wf.registration_input(firm, skip=True)
    proposal = await w.say(firm, text)
    _, draft, _ = button(proposal, "确认")
    await wf.confirm(firm, draft)
    await w.flush()
    found = NUMBER.findall(w.receipt(firm))
    assert found
    return found[0]


POWER = (
    "厂里突然停电了，生产线全停，什么时候能来电？",
    "我们这边一上午没电了，车间机器都停了，麻烦问问供电所",
    "停电两个多小时了，冷库里的货快化了，请尽快恢复供电",
)


async def test_a_power_cut_in_one_town_is_one_problem(world: World) -> None:
    w = world
    numbers = []
    for i, text in enumerate(POWER):
        numbers.append(await report(w, person(f"firm{i}"), f"宏远{i}号厂", 0, text))
        w.clock.advance(minutes=10)
    loan = await report(
        w, person("loan"), "城关食品厂", 1, "想申请流动资金贷款，银行要抵押，有没有贴息政策"
    )
    cards = {
        n: next(s.text for s in w.sender.chat(w.TECH) if n in s.text.split("\n")[0])
        for n in numbers
    }
    assert "可能相关" not in cards[numbers[0]]
    assert numbers[0] in cards[numbers[1]] and "可能相关" in cards[numbers[1]]
    assert "同乡镇" in cards[numbers[1]]
    assert numbers[0] in cards[numbers[2]] and numbers[1] in cards[numbers[2]]
    for i, number in enumerate(numbers):  # nothing of the other firms on a card
        others = [f"宏远{j}号厂" for j in range(len(numbers)) if j != i]
        assert not any(name in cards[number] for name in others)
        assert "13812345678" not in cards[number] and "张伟" not in cards[number]
    # One burst alert, naming the town and the three tickets; not repeated by a fourth.
    alerts = [s.text for s in w.sender.chat(w.COORD) if "集中报告" in s.text]
    assert len(alerts) == 1
    assert "道陵岗乡 1 小时内 3 家报告" in alerts[0]
    assert all(n in alerts[0] for n in numbers)
    await report(w, person("firm3"), "宏远3号厂", 0, "停电了，什么时候来电，机器都停着")
    assert len([s for s in w.sender.chat(w.COORD) if "集中报告" in s.text]) == 1
    # /related for the coordinators lists the others with the reason, not the loan.
    [listed] = await w.s.workflow.related(in_group(person("chen"), w.COORD), numbers[0])
    assert numbers[1] in listed.text and numbers[2] in listed.text
    assert loan not in listed.text and "同乡镇" in listed.text
    [none] = await w.s.workflow.related(in_group(person("chen"), w.COORD), loan)
    assert numbers[0] not in none.text and "没有发现" in none.text


async def test_related_is_for_coordinators_and_the_team_holding_it(world: World) -> None:
    w = world
    first = await report(w, person("firm0"), "宏远0号厂", 0, POWER[0])
    # The team member who holds it may look; the firm and a stranger may not know it exists.
    [ok] = await w.s.workflow.related(in_group(person("wang"), w.TECH), first)
    assert first in ok.text
    with pytest.raises(NotFound):
        await w.s.workflow.related(person("firm0"), first)
    with pytest.raises(NotFound):
        await w.s.workflow.related(person("nobody"), "YM-20990101-0001")


async def test_the_index_and_the_burst_survive_a_restart(world: World) -> None:
    w = world
    numbers = [
        await report(w, person(f"firm{i}"), f"宏远{i}号厂", 0, t) for i, t in enumerate(POWER)
    ]
    assert len([s for s in w.sender.chat(w.COORD) if "集中报告" in s.text]) == 1
    await close_services(w.s)
    w.services = None
    await w.open()
    later = await report(w, person("firm9"), "宏远9号厂", 0, "还是停电，车间没电干不了活")
    card = next(s.text for s in w.sender.chat(w.TECH) if later in s.text.split("\n")[0])
    assert "可能相关" in card and any(n in card for n in numbers)
    # The burst was stored: the fourth report joins it without a second alert.
    assert len([s for s in w.sender.chat(w.COORD) if "集中报告" in s.text]) == 1
