"""The database's disk fills up while the bot runs: nobody is left in silence, nothing is lost.

How the full disk is made: `FullDisk` wraps the Database's aiosqlite connection and, while
switched on, raises `sqlite3.OperationalError('database or disk is full')` at the connection
call the storage layer makes, where SQLite raises it when it cannot grow the WAL: at the COMMIT
of a transaction that wrote (its writes are rolled back), and at a write statement outside a
transaction (which commits by itself); reads, and transactions that only read, go through. `fill(except_inbox=True)`
lets the inbox's own INSERT pass: the disk fills between storing an update and handling it.
Everything else is real: the Application with its update fetcher and processor, the inbox, the
delivery loop, a SQLite file.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from telegram import Update

from bot.render import texts
from bot.storage.db import Database
from bot.storage.sql import SqliteConnection
from tests.conftest import COORD_GROUP, FIRM_A, FIRM_B, TECH_GROUP, World

POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"
WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
INBOX = re.compile(r"\s*INSERT INTO inbox\b", re.IGNORECASE)


class FullDisk:
    """The connection of a database whose disk is full (see the module docstring)."""

    def __init__(self, conn: Any) -> None:
        self._inner = conn
        self.full = False
        self.except_inbox = False
        self.refused = 0
        self._wrote = False  # the open transaction has written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _check(self, sql: str) -> None:
        command = sql.strip().upper()
        if command.startswith(("ROLLBACK", "BEGIN")):
            self._wrote = False
            return
        if command.startswith("COMMIT"):
            wrote, self._wrote = self._wrote, False
            if self.full and wrote:
                self.refused += 1
                raise sqlite3.OperationalError("database or disk is full")
            return
        if not self.full or not WRITE.match(sql) or (self.except_inbox and INBOX.match(sql)):
            return
        if self._inner.in_transaction:
            self._wrote = True
            return
        self.refused += 1
        raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._check(sql)
        return self._inner.execute(sql, params)

    def executemany(self, sql: str, params: Any) -> Any:
        self._check(sql)
        return self._inner.executemany(sql, params)

    def execute_insert(self, sql: str, params: Any = ()) -> Any:
        self._check(sql)
        return self._inner.execute_insert(sql, params)

    def fill(self, *, except_inbox: bool = False) -> None:
        self.full, self.except_inbox = True, except_inbox

    def free(self) -> None:
        self.full = False


@pytest.fixture
async def running(world: World) -> AsyncIterator[tuple[World, FullDisk]]:
    """Registered firms, bound groups, the application taking updates, a disk that can fill."""
    await world.bind_all()
    await world.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await world.register(FIRM_B, "宏远铸造厂", "李娜", "13987654321")
    assert world.app is not None
    db: Database = world.services.db
    conn = db._conn
    assert isinstance(conn, SqliteConnection)
    disk = FullDisk(conn.raw)
    conn.raw = disk  # type: ignore[assignment]
    # Retries come quickly in a test (production: from 0.5 s and 1 s, doubling).
    world.app.update_queue.retry_base = 0.02  # type: ignore[attr-defined]
    world.app.update_processor.retry_base = 0.02  # type: ignore[attr-defined]
    await world.app.start()
    yield world, disk
    disk.free()
    await world.app.stop()


async def until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def texts_in(w: World, chat: int) -> list[str]:
    return [m.text for m in w.telegram.chat(chat)]


async def unhandled(w: World) -> list[int]:
    async with w.services.db.read() as repo:
        return [update_id for update_id, _ in await repo.inbox.unhandled_updates()]


async def test_a_confirm_whose_commit_fails_is_kept_and_done_once_space_is_free(
    running: tuple[World, FullDisk],
) -> None:
    w, disk = running
    tg = w.telegram
    assert w.app is not None
    await w.say(FIRM_A, FIRM_A, "张伟", POWER)
    proposal = tg.last(FIRM_A)
    disk.fill(except_inbox=True)  # the press is stored; its handling cannot commit
    data = w.updates.callback(FIRM_A, FIRM_A, "张伟", proposal, proposal.data("✅ 确认提交"))
    await w.app.update_queue.put(Update.de_json(data, w.app.bot))
    query_id = data["callback_query"]["id"]
    await until(lambda: any(a["callback_query_id"] == query_id for a in tg.answers))
    (answer,) = [a for a in tg.answers if a["callback_query_id"] == query_id]
    assert answer.get("text") == texts.STORAGE_DOWN_TOAST
    await until(lambda: disk.refused >= 5)  # retried meanwhile, in vain
    # Not told "saved" and then forgotten: no generic error, the update still to be handled.
    assert texts.ERROR_GENERIC not in texts_in(w, FIRM_A)
    assert await unhandled(w) == [data["update_id"]]
    await until(lambda: any(texts.STORAGE_DOWN_STAFF[:10] in t for t in texts_in(w, COORD_GROUP)))
    disk.free()
    await until(lambda: not w.services.db.health.failing)
    await asyncio.wait_for(w.app.update_queue.join(), 30)
    await w.flush()
    assert [t for t in texts_in(w, FIRM_A) if "工单编号" in t]  # the receipt, after all
    assert "YM-20261127-0001" in tg.find(TECH_GROUP, "YM-").text
    assert await unhandled(w) == []
    assert [t for t in texts_in(w, COORD_GROUP) if texts.STORAGE_UP_STAFF in t]
    staff = [t for t in texts_in(w, COORD_GROUP) if "数据库" in t]
    assert len(staff) == 2  # told once that it failed, once that it recovered


async def test_updates_that_cannot_be_stored_wait_unconfirmed_and_their_sender_is_told_once(
    running: tuple[World, FullDisk],
) -> None:
    w, disk = running
    tg = w.telegram
    assert w.app is not None
    disk.fill()
    # As polling does: it puts each fetched update and confirms the batch once put returns.
    messages = [POWER, "线路是去年洪水后修的", "麻烦尽快"]
    puts = [
        asyncio.create_task(
            w.app.update_queue.put(
                Update.de_json(w.updates.message(FIRM_B, FIRM_B, "李娜", text), w.app.bot)
            )
        )
        for text in messages
    ]
    await until(lambda: texts.STORAGE_DOWN in texts_in(w, FIRM_B))
    await until(lambda: disk.refused >= 10)
    assert not any(p.done() for p in puts)  # nothing confirmed to Telegram
    assert texts_in(w, FIRM_B).count(texts.STORAGE_DOWN) == 1
    disk.free()
    await asyncio.wait_for(asyncio.gather(*puts), 30)  # polling goes on by itself
    await asyncio.wait_for(w.app.update_queue.join(), 30)
    proposal = tg.last(FIRM_B)
    assert "跳闸" in proposal.text and "洪水" in proposal.text and "尽快" in proposal.text
    assert await unhandled(w) == []


async def test_a_message_sent_while_its_record_cannot_be_written_is_not_sent_again(
    running: tuple[World, FullDisk],
) -> None:
    w, disk = running
    tg = w.telegram
    await w.say(FIRM_B, FIRM_B, "李娜", POWER)
    assert w.app is not None
    data = w.updates.callback(
        FIRM_B, FIRM_B, "李娜", tg.last(FIRM_B), tg.last(FIRM_B).data("✅ 确认提交")
    )
    await w.app.process_update(Update.de_json(data, w.app.bot))  # the receipt and card queued
    disk.fill()
    delivery = asyncio.create_task(w.services.delivery.run_once())
    await until(lambda: any("工单编号" in t for t in texts_in(w, FIRM_B)))
    await until(lambda: disk.refused >= 3)
    disk.free()
    await asyncio.wait_for(delivery, 30)
    await w.flush()
    assert len([t for t in texts_in(w, FIRM_B) if "工单编号" in t]) == 1
    assert len([m for m in tg.chat(TECH_GROUP) if "YM-20261127-0001" in m.text]) == 1
