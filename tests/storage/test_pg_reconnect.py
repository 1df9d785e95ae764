"""PostgreSQL drops the bot's connection (a server restart, a failover, a proxy's idle cut):
the write that hit it fails as a storage error and is kept, the next one connects again, and a
firm's report that arrived meanwhile becomes its ticket once."""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg
import pytest
from telegram import Update

from bot.storage.db import Database
from bot.storage.health import StorageUnavailable
from tests.conftest import FIRM_A, TECH_GROUP, World
from tests.fakes import TZ
from tests.postgres import POSTGRES

POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"


async def cut(url: str) -> int:
    """Terminate every other connection to the database of `url`; how many there were."""
    admin = await asyncpg.connect(url)
    try:
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    return len(rows)


async def test_a_lost_connection_is_a_storage_error_then_connects_again() -> None:
    url = await POSTGRES.fresh_database()
    db = await Database.connect(url)
    try:
        async with db.tx() as repo:
            await repo.followup.insert_audit(None, "before", {}, _now())
        # Cut in the middle of a transaction: it fails as a storage error, nothing half-written.
        with pytest.raises(StorageUnavailable):
            async with db.tx() as repo:
                await repo.followup.insert_audit(None, "during", {}, _now())
                assert await cut(url) == 1
                await repo.followup.insert_audit(None, "during, again", {}, _now())
        assert db.health.failing
        async with db.tx() as repo:  # connects again
            await repo.followup.insert_audit(None, "after", {}, _now())
        assert not db.health.failing
        async with db.read() as repo:
            rows = await repo.conn.execute_fetchall("SELECT action FROM audit_log ORDER BY id")
        assert [r[0] for r in rows] == ["before", "after"]
    finally:
        await db.close()


async def test_a_report_during_a_dropped_connection_becomes_one_ticket(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await POSTGRES.fresh_database()
    monkeypatch.setenv("DATABASE_URL", url)
    await world.stop()
    w = World(world.tmp_path, world.clock)
    await w.start()
    try:
        await w.bind_all()
        await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
        assert w.app is not None
        w.app.update_queue.retry_base = 0.02  # type: ignore[attr-defined]
        w.app.update_processor.retry_base = 0.02  # type: ignore[attr-defined]
        await w.app.start()
        await cut(url)
        await w.app.update_queue.put(
            Update.de_json(w.updates.message(FIRM_A, FIRM_A, "张伟", POWER), w.app.bot)
        )
        for _ in range(500):
            if "确认提交" in " ".join(w.telegram.last(FIRM_A).buttons()):
                break
            await asyncio.sleep(0.01)
        proposal = w.telegram.last(FIRM_A)
        await cut(url)
        data = w.updates.callback(FIRM_A, FIRM_A, "张伟", proposal, proposal.data("✅ 确认提交"))
        await w.app.update_queue.put(Update.de_json(data, w.app.bot))
        await asyncio.wait_for(w.app.update_queue.join(), 30)
        for _ in range(500):
            async with w.services.db.read() as repo:
                tickets = await repo.tickets.all_tickets()
            if tickets:
                break
            await asyncio.sleep(0.01)
        await w.flush()
        assert [t.number for t in tickets] == ["YM-20261127-0001"]
        assert "YM-20261127-0001" in w.telegram.find(TECH_GROUP, "YM-").text
        await w.app.stop()
    finally:
        await w.stop()


def _now() -> datetime:
    return datetime(2026, 11, 27, 9, 0, tzinfo=TZ)
