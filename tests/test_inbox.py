"""The inbox: updates are stored before Telegram is told they arrived, and none is lost."""

from __future__ import annotations

import logging

import pytest
from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

from bot.inbox import InboxQueue
from tests.conftest import FIRM_A, TECH_GROUP, World

POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"


@pytest.fixture
async def ready(world: World) -> World:
    await world.bind_all()
    await world.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    return world


async def unhandled(world: World) -> list[int]:
    async with world.services.db.read() as repo:
        return [update_id for update_id, _ in await repo.unhandled_updates()]


def as_update(world: World, data: dict[str, object]) -> Update:
    assert world.app is not None
    return Update.de_json(data, world.app.bot)


async def test_an_update_is_stored_before_it_is_queued_and_queued_once(ready: World) -> None:
    w = ready
    assert w.app is not None
    queue = w.app.update_queue
    assert isinstance(queue, InboxQueue)
    update = as_update(w, w.updates.message(FIRM_A, FIRM_A, "张伟", POWER))
    await queue.put(update)
    assert await unhandled(w) == [update.update_id]
    # Telegram sends it again (the bot died before confirming): stored once, queued once.
    await queue.put(update)
    assert queue.qsize() == 1
    queued = await queue.get()
    assert isinstance(queued, Update)
    await w.app.process_update(queued)
    await w.flush()
    assert await unhandled(w) == []
    assert "跳闸" in w.telegram.last(FIRM_A).text


async def test_an_update_whose_handler_raises_is_marked_handled_and_logged(
    ready: World, caplog: pytest.LogCaptureFixture
) -> None:
    w = ready
    assert w.app is not None

    async def explode(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise RuntimeError("boom")

    w.app.add_handler(MessageHandler(filters.Regex("^炸$"), explode), group=-5)
    update = as_update(w, w.updates.message(FIRM_A, FIRM_A, "张伟", "炸"))
    await w.app.update_queue.put(update)
    await w.app.process_update(await w.app.update_queue.get())
    assert await unhandled(w) == []
    assert any(
        r.levelno == logging.ERROR and r.name == "bot.handlers.errors" for r in caplog.records
    )


async def test_updates_fetched_but_not_handled_are_handled_after_a_restart(ready: World) -> None:
    w, tg = ready, ready.telegram
    assert w.app is not None
    # Fetched (and so confirmed to Telegram by the next poll) but the bot dies before handling.
    first = as_update(w, w.updates.message(FIRM_A, FIRM_A, "张伟", POWER))
    second = as_update(w, w.updates.message(FIRM_A, FIRM_A, "张伟", "线路是去年洪水后修的"))
    await w.app.update_queue.put(first)
    await w.app.update_queue.put(second)
    assert await unhandled(w) == [first.update_id, second.update_id]
    await w.restart()  # a new Application; start_services replays the inbox
    await w.flush()
    assert await unhandled(w) == []
    proposal = tg.last(FIRM_A)
    assert "跳闸" in proposal.text and "洪水" in proposal.text
    await w.press(FIRM_A, FIRM_A, "张伟", proposal, "✅ 确认提交")
    assert "YM-20261127-0001" in tg.find(TECH_GROUP, "YM-").text
    # Replaying again changes nothing: the messages were taken once.
    await w.restart()
    await w.flush()
    async with w.services.db.read() as repo:
        tickets = await repo.all_tickets()
    assert len(tickets) == 1 and tickets[0].text.count("跳闸") == 1
