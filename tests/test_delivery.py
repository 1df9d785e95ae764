"""Delivery faults: 429, 5xx and timeouts are retried; unreachable chats are reported; nothing lost."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from telegram.error import TimedOut

from tests.conftest import (
    ADMIN,
    COORD_GROUP,
    FIRM_A,
    FIRM_B,
    MEMBER_TECH,
    TECH_GROUP,
    World,
)

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"


@pytest.fixture(autouse=True)
def timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns when a RetryAfter is built unless this opt-in is set; the sender takes both.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def ready(world: World) -> World:
    await world.bind_all()
    await world.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await world.register(FIRM_B, "绿源食品厂", "李娜", "13987654321", "大营镇")
    return world


def fail_chat(world: World, chat_id: int, times: int, fault: Callable[[], Any]) -> list[int]:
    """The next `times` sends to `chat_id` fail: `fault()` returns (code, body) or raises."""
    tg = world.telegram
    original = tg.do_request
    left = [times]

    async def do_request(url: str, method: str, request_data: Any = None, **kw: Any) -> Any:
        params = dict(request_data.parameters) if request_data else {}
        name = url.rsplit("/", 1)[-1]
        if left[0] > 0 and name.startswith("send") and int(params.get("chat_id", 0)) == chat_id:
            left[0] -= 1
            tg.calls.append((name, params))
            return fault()
        return await original(url, method, request_data, **kw)

    tg.do_request = do_request  # type: ignore[method-assign]
    return left


def error(code: int, text: str, retry: int | None = None) -> Callable[[], tuple[int, bytes]]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": text}
    if retry is not None:
        body["parameters"] = {"retry_after": retry}
    return lambda: (code, json.dumps(body).encode())


async def outbox(world: World) -> list[dict[str, Any]]:
    async with world.services.db.read() as repo:
        rows = await repo.conn.execute_fetchall("SELECT * FROM outbox ORDER BY id")
    return [dict(r) for r in rows]


async def confirm(world: World, firm: int, name: str, text: str) -> None:
    await world.say(firm, firm, name, text)
    await world.press(firm, firm, name, world.telegram.last(firm), "✅ 确认提交")


def cards(world: World, chat: int) -> list[str]:
    return [m.text for m in world.telegram.chat(chat) if "YM-" in m.text and "一米团" in m.text]


async def test_429_is_honoured_the_card_waits_and_arrives_once(ready: World) -> None:
    w = ready
    fail_chat(w, TECH_GROUP, 1, error(429, "Too Many Requests: retry after 7", 7))
    await confirm(w, FIRM_A, "张伟", POWER)
    assert cards(w, TECH_GROUP) == []
    card_row = next(r for r in await outbox(w) if r["kind"] == "card")
    assert card_row["status"] == "pending" and card_row["next_at"] == "2026-11-27T09:00:07+08:00"
    await w.flush()
    assert cards(w, TECH_GROUP) == []  # not before retry_after
    w.clock.advance(seconds=7)
    await w.flush()
    assert len(cards(w, TECH_GROUP)) == 1
    assert {r["status"] for r in await outbox(w)} == {"sent"}


async def test_5xx_and_timeouts_are_retried_with_growing_backoff(ready: World) -> None:
    w = ready
    faults = iter([error(502, "Bad Gateway"), error(500, "Internal Server Error")])

    def next_fault() -> Any:
        fault = next(faults, None)
        if fault is None:
            raise TimedOut("timed out")
        return fault()

    fail_chat(w, TECH_GROUP, 3, next_fault)
    await confirm(w, FIRM_A, "张伟", POWER)
    waits = []
    for _ in range(3):
        row = next(r for r in await outbox(w) if r["kind"] == "card")
        assert row["status"] == "pending" and cards(w, TECH_GROUP) == []
        waits.append(row["next_at"])
        w.clock.advance(seconds=2 ** (row["attempts"] - 1))
        await w.flush()
    assert waits == [
        "2026-11-27T09:00:01+08:00",
        "2026-11-27T09:00:03+08:00",
        "2026-11-27T09:00:07+08:00",
    ]
    assert len(cards(w, TECH_GROUP)) == 1
    assert {r["status"] for r in await outbox(w)} == {"sent"}


async def test_a_firm_that_blocked_the_bot_is_reported_to_the_coordinators(ready: World) -> None:
    w, tg = ready, ready.telegram
    await confirm(w, FIRM_A, "张伟", POWER)
    tg.blocked.add(FIRM_A)
    card = tg.find(TECH_GROUP, "YM-20261127-0001")
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "签收")
    note = tg.last(COORD_GROUP).text
    assert "无法送达" in note and "YM-20261127-0001" in note and "企业" in note
    async with w.services.db.read() as repo:
        ticket = await repo.tickets.get_ticket(1)
        events = await repo.tickets.events(1)
    assert ticket is not None and ticket.undelivered
    assert "undelivered" in [e.action for e in events]
    statuses = {r["status"] for r in await outbox(w)}
    assert "pending" not in statuses and "failed" in statuses


async def test_when_the_coordinators_group_is_unreachable_the_admins_are_told(
    ready: World,
) -> None:
    w, tg = ready, ready.telegram
    fail_chat(w, COORD_GROUP, 1, error(403, "Forbidden: bot was kicked from the supergroup chat"))
    await confirm(w, FIRM_B, "李娜", "你好，想咨询个事")  # unclear: goes to the coordinators
    assert "YM-" not in tg.texts(COORD_GROUP)
    alert = tg.last(ADMIN).text
    assert "无法送达" in alert and "YM-20261127-0001" in alert
    async with w.services.db.read() as repo:
        ticket = await repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.undelivered


async def test_a_member_who_never_started_the_bot_gets_the_details_after_start(
    ready: World,
) -> None:
    w, tg = ready, ready.telegram
    await confirm(w, FIRM_A, "张伟", POWER)
    tg.blocked.add(MEMBER_TECH)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", tg.find(TECH_GROUP, "YM-"), "签收")
    assert "私聊" in tg.last(TECH_GROUP).text
    assert tg.chat(MEMBER_TECH) == []
    waiting = [r for r in await outbox(w) if r["target"] == f"user:telegram:{MEMBER_TECH}"]
    assert waiting and {r["status"] for r in waiting} == {"waiting"}
    tg.blocked.discard(MEMBER_TECH)
    await w.say(MEMBER_TECH, MEMBER_TECH, "王工", "/start staff")
    await w.flush()
    assert "13812345678" in tg.find(MEMBER_TECH, "工单详情").text
    assert len([m for m in tg.chat(MEMBER_TECH) if "工单详情" in m.text]) == 1
    assert {r["status"] for r in await outbox(w)} == {"sent"}


async def test_an_immediate_reply_hit_by_flood_control_is_sent_later(ready: World) -> None:
    w, tg = ready, ready.telegram
    await w.say(FIRM_A, FIRM_A, "张伟", POWER)
    fail_chat(w, FIRM_A, 1, error(429, "Too Many Requests: retry after 3", 3))
    await w.press(FIRM_A, FIRM_A, "张伟", tg.last(FIRM_A), "✅ 确认提交")
    assert "工单编号" not in tg.texts(FIRM_A)  # the receipt met flood control ...
    w.clock.advance(seconds=3)
    await w.flush()
    receipts = [m for m in tg.chat(FIRM_A) if "工单编号" in m.text]
    assert len(receipts) == 1 and "YM-20261127-0001" in receipts[0].text  # ... and came later
