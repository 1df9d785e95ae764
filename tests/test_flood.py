"""One firm floods the bot: the others are served first, the flooder is told once, presses answered.

The real Application runs its update fetcher and update processor (`app.start()`); updates go
into its update queue as polling puts them (stored in the inbox first). Telegram is the
recording transport of tests/fakes.py, with a few milliseconds per call so that handlers
overlap as they do against the real Bot API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from telegram import Update

from bot.render import texts
from tests.conftest import FIRM_A, FIRM_B, World
from tests.fakes import FakeTelegram

POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"
FLOOD = 300
LIMIT = 16  # twice FLOOD_BURST (8): a report over 4,000 characters also gets "cut" notice


class SlowTelegram(FakeTelegram):
    """The recording fake, 3 ms per Bot API call."""

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.003)
        return await super().do_request(url, method, *args, **kwargs)


@pytest.fixture
async def running(world: World) -> AsyncIterator[World]:
    """Two registered firms, bound groups, and the application taking updates from its queue."""
    await world.stop()
    slow = SlowTelegram()
    slow.members = world.telegram.members
    world.telegram = world.updates.telegram = slow
    await world.start()
    await world.bind_all()
    await world.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await world.register(FIRM_B, "宏远铸造厂", "李娜", "13987654321")
    assert world.app is not None
    await world.app.start()
    world.services.delivery.start()
    yield world
    await world.app.stop()


async def put(w: World, data: dict[str, Any]) -> Update:
    assert w.app is not None
    update = Update.de_json(data, w.app.bot)
    await w.app.update_queue.put(update)
    return update


async def until(check: Callable[[], bool], seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def flood_updates(w: World) -> list[dict[str, Any]]:
    """70 % short texts, 20 % texts of 4,000 characters, 10 % presses of a stale button."""
    stale = next(m for m in w.telegram.chat(FIRM_A) if m.buttons())
    found = []
    for i in range(FLOOD):
        if i % 10 == 9:
            label = stale.buttons()[0]
            found.append(w.updates.callback(FIRM_A, FIRM_A, "张伟", stale, stale.data(label)))
        elif i % 10 in (7, 8):
            found.append(w.updates.message(FIRM_A, FIRM_A, "张伟", "设备" * 2000))
        else:
            found.append(w.updates.message(FIRM_A, FIRM_A, "张伟", f"第{i}条"))
    return found


def proposed(w: World, firm: int) -> bool:
    return any("确认提交" in b for m in w.telegram.chat(firm) for b in m.buttons())


async def test_a_flooding_firm_does_not_hold_up_another_and_is_told_once(running: World) -> None:
    w, tg = running, running.telegram
    before = len(tg.chat(FIRM_A))
    flood = flood_updates(w)
    for data in flood:
        await put(w, data)
    await put(w, w.updates.message(FIRM_B, FIRM_B, "李娜", POWER))
    await until(lambda: proposed(w, FIRM_B))
    # The other firm's proposal came while the flooder had had a handful of replies at most.
    assert len(tg.chat(FIRM_A)) - before <= LIMIT
    proposal = tg.last(FIRM_B)
    confirm = w.updates.callback(FIRM_B, FIRM_B, "李娜", proposal, proposal.data("✅ 确认提交"))
    press = await put(w, confirm)
    await until(lambda: any("工单编号" in m.text for m in tg.chat(FIRM_B)))
    assert w.app is not None
    await asyncio.wait_for(w.app.update_queue.join(), 60)
    # The flooder: a few replies and one notice, never a reply per message.
    replies = tg.chat(FIRM_A)[before:]
    assert len(replies) <= LIMIT
    assert [m.text for m in replies].count(texts.FLOOD_NOTICE) == 1
    # Every press was answered: the other firm's, and each of the flooder's stale ones.
    answered = {a["callback_query_id"] for a in tg.answers}
    presses = [d["callback_query"]["id"] for d in flood if "callback_query" in d]
    assert press.callback_query is not None and press.callback_query.id in answered
    assert set(presses) <= answered
    # Nothing is left for a replay: each update was handled or answered as over the limit.
    async with w.services.db.read() as repo:
        assert await repo.inbox.unhandled_updates() == []
        tickets = await repo.tickets.all_tickets()
    assert [t.reporter_id for t in tickets if t.number] == [f"telegram:{FIRM_B}"]


async def test_a_press_behind_its_chats_backlog_is_answered_before_it_is_handled(
    running: World,
) -> None:
    w, tg = running, running.telegram
    await put(w, w.updates.message(FIRM_B, FIRM_B, "李娜", POWER))
    await until(lambda: proposed(w, FIRM_B))
    proposal = tg.last(FIRM_B)
    calls = len(tg.calls)
    await put(w, w.updates.message(FIRM_B, FIRM_B, "李娜", "线路是去年洪水后修的"))
    confirm = w.updates.callback(FIRM_B, FIRM_B, "李娜", proposal, proposal.data("✅ 确认提交"))
    await put(w, confirm)
    await until(lambda: any("工单编号" in m.text for m in tg.chat(FIRM_B)))
    names = [name for name, _ in tg.calls[calls:]]
    # Answered on arrival: before the reply to the message ahead of it in the chat was sent.
    assert names.index("answerCallbackQuery") < names.index("sendMessage")
    assert names.count("answerCallbackQuery") == 1
