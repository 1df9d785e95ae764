"""The inbox: updates are stored before Telegram is told they arrived, and none is lost."""

from __future__ import annotations

import asyncio
import logging

import pytest
from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

from bot.channels.telegram.inbox import InboxQueue
from tests.conftest import FIRM_A, MEMBER_TECH, MEMBER_TECH2, TECH_GROUP, World

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"


@pytest.fixture
async def ready(world: World) -> World:
    await world.bind_all()
    await world.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    return world


async def unhandled(world: World) -> list[int]:
    async with world.services.db.read() as repo:
        return [update_id for update_id, _ in await repo.inbox.unhandled_updates()]


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
        r.levelno == logging.ERROR and r.name == "bot.channels.telegram.handlers.errors"
        for r in caplog.records
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
        tickets = await repo.tickets.all_tickets()
    assert len(tickets) == 1 and tickets[0].text.count("跳闸") == 1


# -- point 3: exactly one ticket per report ------------------------------------------------


async def tickets(world: World) -> list[object]:
    async with world.services.db.read() as repo:
        return list(await repo.tickets.all_tickets())


async def test_a_redelivered_message_joins_the_draft_once(ready: World) -> None:
    w, tg = ready, ready.telegram
    data = w.updates.message(FIRM_A, FIRM_A, "张伟", POWER)
    await w.process(data)
    await w.process(data)  # Telegram sends the same update again (same chat and message id)
    again = dict(data, update_id=data["update_id"] + 1000)  # a new update, the same message
    await w.process(again)
    proposals = [m for m in tg.chat(FIRM_A) if "跳闸" in m.text]
    assert len(proposals) == 1
    await w.press(FIRM_A, FIRM_A, "张伟", proposals[0], "✅ 确认提交")
    found = await tickets(w)
    assert len(found) == 1
    async with w.services.db.read() as repo:
        ticket = await repo.tickets.get_ticket_by_number("YM-20261127-0001")
    assert ticket is not None and ticket.text.count("跳闸") == 1


async def test_confirm_pressed_twice_makes_one_ticket_and_says_so(ready: World) -> None:
    w, tg = ready, ready.telegram
    await w.say(FIRM_A, FIRM_A, "张伟", POWER)
    proposal = tg.last(FIRM_A)
    data = proposal.data("✅ 确认提交")
    press = w.updates.callback(FIRM_A, FIRM_A, "张伟", proposal, data)
    await w.process(press)
    assert proposal.buttons() == []  # the used keyboard is taken away
    await w.process(press)  # the same callback redelivered
    # pressed again from an old client that still shows the button
    await w.process(w.updates.callback(FIRM_A, FIRM_A, "张伟", proposal, data))
    assert len(await tickets(w)) == 1
    assert len([m for m in tg.chat(FIRM_A) if "工单编号" in m.text]) == 1
    assert "已经提交或取消" in tg.texts(FIRM_A)
    assert tg.texts(FIRM_A).count("工单编号") == 1
    assert len([m for m in tg.chat(TECH_GROUP) if "YM-" in m.text]) == 1


async def test_confirm_pressed_twice_at_once_makes_one_ticket(ready: World) -> None:
    w, tg = ready, ready.telegram
    assert w.app is not None
    await w.say(FIRM_A, FIRM_A, "张伟", POWER)
    proposal = tg.last(FIRM_A)
    data = proposal.data("✅ 确认提交")
    presses = [w.updates.callback(FIRM_A, FIRM_A, "张伟", proposal, data) for _ in range(2)]
    await asyncio.gather(*(w.app.process_update(as_update(w, p)) for p in presses))
    await w.flush()
    assert len(await tickets(w)) == 1
    assert len([m for m in tg.chat(TECH_GROUP) if "YM-" in m.text]) == 1
    assert "已经提交或取消" in tg.texts(FIRM_A)
    assert tg.texts(FIRM_A).count("工单编号") == 1


async def test_two_members_claim_at_once_one_wins_the_other_is_told_who(ready: World) -> None:
    w, tg = ready, ready.telegram
    assert w.app is not None
    await w.say(FIRM_A, FIRM_A, "张伟", POWER)
    await w.press(FIRM_A, FIRM_A, "张伟", tg.last(FIRM_A), "✅ 确认提交")
    card = tg.find(TECH_GROUP, "YM-20261127-0001")
    data = card.data("签收")
    first = w.updates.callback(TECH_GROUP, MEMBER_TECH, "王工", card, data)
    second = w.updates.callback(TECH_GROUP, MEMBER_TECH2, "赵工", card, data)
    await asyncio.gather(
        w.app.process_update(as_update(w, first)), w.app.process_update(as_update(w, second))
    )
    await w.flush()
    async with w.services.db.read() as repo:
        events = await repo.tickets.events(1)
        ticket = await repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.claimed_by == f"telegram:{MEMBER_TECH}"
    assert [e.action for e in events].count("claimed") == 1
    toast = next(
        a for a in tg.answers if a.get("callback_query_id") == second["callback_query"]["id"]
    )
    assert "王工" in toast.get("text", "") and "签收" in toast["text"]
    assert "王工" in card.text and card.buttons() == ["办结"]
