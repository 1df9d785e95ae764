"""The ticket loop on the channel-neutral core: what every channel must show, driven through the
real Workflow and delivery loop with a recording Sender (no chat platform)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.errors import NotAllowed, NotFound
from tests.neutral.harness import NUMBER, World, button, full_loop, in_group, person

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path)
    await w.open()
    yield w
    await w.close()


async def test_report_claim_resolve_rate(tmp_path: Path) -> None:
    seen = await full_loop(tmp_path)
    receipt, card = str(seen["receipt"]), str(seen["card"])
    assert "已提交" in receipt and NUMBER.search(receipt)
    number = NUMBER.search(receipt)
    assert number is not None and number.group(0) in card
    # The group card shows the firm and the problem, the contact only masked.
    assert "宏远铸造厂" in card and "变压器" in card
    assert "张*" in card and "138****5678" in card
    assert "13812345678" not in card and "张伟" not in card
    # The claimer gets the full contact privately; the firm gets the result; the card moved on.
    assert "13812345678" in str(seen["details"]) and "张伟" in str(seen["details"])
    assert "已协调电力公司更换变压器" in str(seen["result"])
    assert "已销号" in str(seen["card_after"])
    assert seen["state"] == "closed"


def test_the_neutral_loop_runs_with_no_chat_platform_loaded(tmp_path: Path) -> None:
    script = (
        "import asyncio, json, sys\n"
        "from pathlib import Path\n"
        "from tests.neutral.harness import full_loop\n"
        f"seen = asyncio.run(full_loop(Path({str(tmp_path)!r})))\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('telegram', 'aiohttp'))\n"
        "print(json.dumps({'state': seen['state'], 'loaded': loaded}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"state": "closed", "loaded": []}


async def test_only_the_teams_members_claim_and_other_firms_see_nothing(world: World) -> None:
    admin, member, coord = person("admin", admin=True), person("wang"), person("chen")
    firm, other_firm, stranger = person("zhang"), person("li"), person("zhao")
    await world.setup_groups(admin, member, coord)
    await world.register(firm, "宏远铸造厂", "张伟", "13812345678")
    await world.register(other_firm, "兴达纺织", "李娜", "13900001111")
    _, draft, _ = button(await world.say(firm, "变压器跳闸，生产线停了"), "确认")
    await world.s.workflow.confirm(firm, draft)
    await world.flush()
    _, ticket, _ = button(world.sender.chat(world.TECH)[-1], "签收")
    with pytest.raises(NotAllowed):
        await world.s.workflow.claim(in_group(stranger, world.TECH), ticket)
    number = NUMBER.search(world.receipt(firm))
    assert number is not None
    with pytest.raises(NotFound):
        await world.s.workflow.view(other_firm, number.group(0))
    assert (await world.s.workflow.view(firm, number.group(0)))[0].text.count(number.group(0))


async def test_user_text_is_stored_and_sent_as_typed(world: World) -> None:
    """No channel's escaping in the core: markup-looking input reaches every sender verbatim,
    and control characters cannot forge formatting."""
    admin, member, coord, firm = (
        person("admin", admin=True),
        person("wang"),
        person("chen"),
        person("zhang"),
    )
    await world.setup_groups(admin, member, coord)
    await world.register(firm, "<b>宏远</b> & 铸造", "张伟", "13812345678")
    hostile = "变压器<script>跳闸</script> & \x02伪造\x03 贷款"
    _, draft, _ = button(await world.say(firm, hostile), "确认")
    await world.s.workflow.confirm(firm, draft)
    await world.flush()
    card = world.sender.chat(world.TECH)[-1].text
    assert "<b>宏远</b> & 铸造" in card
    assert "<script>跳闸</script>" in card and "&lt;" not in card
    raw = [t for t in world.sender.raw if "script" in t]
    assert raw and all("\x02伪造" not in t for t in raw)


async def test_a_restart_keeps_drafts_and_delivers_what_was_queued(world: World) -> None:
    admin, member, coord, firm = (
        person("admin", admin=True),
        person("wang"),
        person("chen"),
        person("zhang"),
    )
    await world.setup_groups(admin, member, coord)
    await world.register(firm, "宏远铸造厂", "张伟", "13812345678")
    _, draft, _ = button(await world.say(firm, "变压器跳闸，生产线停了"), "确认")
    await world.close()
    await world.open()
    await world.s.workflow.confirm(firm, draft)
    await world.close()  # the card is queued, not sent
    assert world.sender.chat(world.TECH) == []
    await world.open()
    await world.flush()
    assert any("变压器" in s.text for s in world.sender.chat(world.TECH))
