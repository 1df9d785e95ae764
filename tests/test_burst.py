"""Bursts: cards queued for one group leave as one batch card; a restart mid-burst loses nothing."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest
from telegram import Update

from bot.delivery.outbox import GroupPace
from tests.conftest import FIN_GROUP, MEMBER_TECH, TECH_GROUP, World
from tests.fakes import Sent

POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"
LOAN = "企业流动资金紧张，想申请贴息贷款，银行要求抵押"
FIRMS = [
    (111, "恒达机械有限公司", "张伟", "13812345678"),
    (112, "宏远铸造厂", "李娜", "13987654321"),
    (113, "天成纺织有限公司", "王强", "13700001234"),
    (114, "金穗面业", "赵敏", "13600005678"),
]
NUMBER = re.compile(r"YM-\d{8}-\d{4}")


@pytest.fixture(autouse=True)
def timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def firms(world: World) -> World:
    await world.bind_all()
    for firm, enterprise, contact, phone in FIRMS:
        await world.register(firm, enterprise, contact, phone)
    return world


async def confirm_queued(w: World, firm: int, name: str, text: str) -> None:
    """A firm reports and confirms; delivery has not run yet (the cards queue up)."""
    assert w.app is not None
    for update in (
        w.updates.message(firm, firm, name, text),
        None,
    ):
        if update is None:
            draft = w.telegram.last(firm)
            update = w.updates.callback(firm, firm, name, draft, draft.data("✅ 确认提交"))
        await w.app.process_update(Update.de_json(update, w.app.bot))


def own_numbers(text: str) -> list[str]:
    """The numbers of the tickets a card lists (each entry's first; 可能相关 names others)."""
    return [found[0] for entry in text.split("\n\n") if (found := NUMBER.findall(entry))]


def cards_in(w: World, chat: int) -> list[Sent]:
    return [m for m in w.telegram.chat(chat) if NUMBER.search(m.text) and "一米团" in m.text]


def outbox_rows(w: World) -> list[dict[str, Any]]:
    conn = sqlite3.connect(w.settings.database_path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM outbox ORDER BY id")]
    conn.close()
    return rows


async def test_cards_queued_for_one_group_leave_as_one_batch_card(firms: World) -> None:
    w = firms
    for firm, _, contact, _ in FIRMS:
        await confirm_queued(w, firm, contact, POWER)
    await w.flush()
    cards = cards_in(w, TECH_GROUP)
    assert len(cards) == 1
    batch = cards[0]
    entries = batch.text.split("\n\n")[1:5]
    assert own_numbers(batch.text) == [f"YM-20261127-000{i}" for i in range(1, 5)]
    # One town, one problem: each later entry names the earlier tickets (issue 13).
    assert "可能相关" not in entries[0]
    assert "可能相关：YM-20261127-0001" in entries[1]
    assert "可能相关" in entries[3] and "等" in entries[3]
    assert "4 件新工单" in batch.text and "宏远铸造厂" in batch.text and "城关镇" in batch.text
    assert "变压器" in batch.text
    # Masked contacts only: no full name, no full phone number.
    assert "张**" in batch.text and "138****5678" in batch.text
    for _, _, contact, phone in FIRMS:
        assert phone not in batch.text and contact not in batch.text
    assert batch.buttons() == ["签收 1", "签收 2", "签收 3", "签收 4"]
    rows = [r for r in outbox_rows(w) if r["kind"] == "card"]
    assert {r["status"] for r in rows} == {"sent"}
    assert {r["message_id"] for r in rows} == {str(batch.message_id)}
    for firm, *_ in FIRMS:  # every firm has its receipt, once
        assert len([m for m in w.telegram.chat(firm) if "工单编号" in m.text]) == 1


async def test_a_single_ticket_still_gets_its_own_card(firms: World) -> None:
    w = firms
    await confirm_queued(w, 111, "张伟", POWER)
    await w.flush()
    (card,) = cards_in(w, TECH_GROUP)
    assert card.buttons() == ["签收", "退回"] and "件新工单" not in card.text


async def test_claim_in_a_batch_claims_that_ticket_and_redraws_the_list(firms: World) -> None:
    w, tg = firms, firms.telegram
    for firm, _, contact, _ in FIRMS[:3]:
        await confirm_queued(w, firm, contact, POWER)
    await w.flush()
    (batch,) = cards_in(w, TECH_GROUP)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", batch, "签收 2")
    assert batch.edits >= 1
    assert batch.buttons() == ["签收 1", "签收 3"]
    entries = batch.text.split("\n\n")[1:4]
    assert "YM-20261127-0002</b>　办理中" in entries[1] and "责任人：王工" in entries[1]
    assert "待签收" in entries[0] and "待签收" in entries[2]
    assert "已由" in tg.last(112).text and "王工" in tg.last(112).text
    assert not any("签收" in m.text and "已由" in m.text for m in tg.chat(111))
    async with w.services.db.read() as repo:
        states = [t.state.value for t in await repo.tickets.get_tickets([1, 2, 3])]
    assert states == ["pending_claim", "in_progress", "pending_claim"]
    # A second press on the same button is told who has it; nothing changes.
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", batch, "签收 1")
    assert batch.buttons() == ["签收 3"]


async def test_batches_never_mix_groups(firms: World) -> None:
    w = firms
    await confirm_queued(w, 111, "张伟", POWER)
    await confirm_queued(w, 112, "李娜", LOAN)
    await confirm_queued(w, 113, "王强", POWER)
    await w.flush()
    (tech,) = cards_in(w, TECH_GROUP)
    (fin,) = cards_in(w, FIN_GROUP)
    assert own_numbers(tech.text) == ["YM-20261127-0001", "YM-20261127-0003"]
    assert NUMBER.findall(fin.text) == ["YM-20261127-0002"] and fin.buttons() == ["签收", "退回"]


async def test_cards_behind_a_429_wait_and_leave_together_in_order(firms: World) -> None:
    w = firms
    from tests.test_delivery import error, fail_chat

    fail_chat(w, TECH_GROUP, 1, error(429, "Too Many Requests: retry after 5", 5))
    await w.flush()
    await confirm_queued(w, 111, "张伟", POWER)
    await w.flush()  # the first card meets flood control
    for firm, _, contact, _ in FIRMS[1:]:
        await confirm_queued(w, firm, contact, POWER)
    await w.flush()
    assert cards_in(w, TECH_GROUP) == []  # the later cards do not overtake the first
    w.clock.advance(seconds=5)
    await w.flush()
    (batch,) = cards_in(w, TECH_GROUP)
    assert own_numbers(batch.text) == [f"YM-20261127-000{i}" for i in range(1, 5)]
    assert {r["status"] for r in outbox_rows(w)} == {"sent"}


async def test_a_relay_about_a_batched_ticket_replies_to_the_batch_card(firms: World) -> None:
    w, tg = firms, firms.telegram
    for firm, _, contact, _ in FIRMS[:2]:
        await confirm_queued(w, firm, contact, POWER)
    await w.flush()
    (batch,) = cards_in(w, TECH_GROUP)
    await w.say(112, 112, "李娜", "/withdraw YM-20261127-0002")
    note = tg.find(TECH_GROUP, "撤回")
    assert note.reply_to == batch.message_id
    assert "已撤销" in batch.text.split("\n\n")[2] and batch.buttons() == ["签收 1"]


def test_group_pace_never_exceeds_twenty_a_minute() -> None:
    pace = GroupPace()
    now, sent = 0.0, []
    while now < 300:
        now += pace.delay(-1, now)
        pace.record(-1, now)
        sent.append(now)
        now += 0.01
    for i, at in enumerate(sent):
        assert len([t for t in sent[i:] if t < at + 60]) <= 20
    assert sent[5] < 1  # a few at once
    assert len(sent) >= 5 * 14  # then spread over the minute


async def test_a_reply_to_a_batch_card_asks_which_ticket(firms: World) -> None:
    w, tg = firms, firms.telegram
    for firm, _, contact, _ in FIRMS[:2]:
        await confirm_queued(w, firm, contact, POWER)
    await w.flush()
    (batch,) = cards_in(w, TECH_GROUP)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", batch, "签收 1")
    before = len(tg.chat(111)) + len(tg.chat(112))
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "明天上门", reply_to=batch.message_id)
    assert "/reply 工单编号" in tg.last(TECH_GROUP).text
    assert len(tg.chat(111)) + len(tg.chat(112)) == before  # nothing went to a guessed firm
