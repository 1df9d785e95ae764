"""Backup in the middle of a burst, restore into a stopped bot, and the restored bot carries on."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from bot.channels.telegram.app import schedule_jobs
from bot.storage.backup import BackupError, backup, check_database, daily_backup, restore
from tests.conftest import TECH_GROUP, World
from tests.fakes import FakeClock
from tests.test_burst import NUMBER, POWER, cards_in, confirm_queued

ROOT = Path(__file__).resolve().parents[1]
FIRMS = [(700 + i, f"第{i}机械厂", f"厂长{i}", f"1381234{i:04d}") for i in range(12)]


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


@pytest.fixture
async def firms(world: World) -> World:
    await world.bind_all()
    for firm, enterprise, contact, phone in FIRMS:
        await world.register(firm, enterprise, contact, phone)
    return world


async def test_backup_mid_burst_is_consistent_and_the_restored_bot_carries_on(
    firms: World, tmp_path: Path
) -> None:
    w = firms
    out = tmp_path / "backups" / "mid-burst.db"
    for firm, _, contact, _ in FIRMS[:4]:
        await confirm_queued(w, firm, contact, POWER)
    await w.flush()
    for firm, _, contact, _ in FIRMS[4:8]:  # their cards and receipts wait in the outbox
        await confirm_queued(w, firm, contact, POWER)
    # The backup runs on its own connection while the last four firms confirm.
    reports = [confirm_queued(w, firm, contact, POWER) for firm, _, contact, _ in FIRMS[8:]]
    await asyncio.gather(asyncio.to_thread(backup, w.settings.database_path, out), *reports)
    assert not Path(f"{out}-wal").exists()
    assert check_database(out) >= 1

    tickets = rows(out, "SELECT id, number, state FROM tickets WHERE state != 'draft'")
    assert 8 <= len(tickets) <= len(FIRMS)
    assert rows(out, "PRAGMA foreign_key_check") == []
    for ticket_id, number, state in tickets:
        assert state == "pending_claim" and NUMBER.fullmatch(str(number))
        events = rows(
            out,
            "SELECT to_state FROM ticket_events WHERE to_state IS NOT NULL "
            f"AND ticket_id = {ticket_id} ORDER BY id",
        )
        assert events and events[-1][0] == state, number  # its events came with it
        outbox = rows(out, f"SELECT kind, target FROM outbox WHERE ticket_id = {ticket_id}")
        assert any(kind == "card" for kind, _ in outbox), number  # and the card for the team
    backed_up = {str(n) for _, n, _ in tickets}
    waiting = rows(out, "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'waiting')")
    assert waiting[0][0] > 0  # the backup caught messages not yet delivered

    # Restore into the stopped bot: only what the backup holds, and nothing of it lost.
    await w.stop()
    kept = restore(out, w.settings.database_path, datetime(2026, 11, 27, 10, 0))
    assert kept is not None and kept.exists()
    seen = len(cards_in(w, TECH_GROUP))
    await w.start()
    await w.flush()  # the waiting outbox is delivered by the restored bot
    sent_numbers = {n for m in cards_in(w, TECH_GROUP)[seen:] for n in NUMBER.findall(m.text)}
    pending_before = {
        str(n)
        for (n,) in rows(
            out,
            "SELECT DISTINCT t.number FROM outbox o JOIN tickets t ON t.id = o.ticket_id "
            "WHERE o.kind = 'card' AND o.status = 'pending'",
        )
    }
    assert pending_before <= sent_numbers
    assert rows(w.settings.database_path, "SELECT status FROM outbox WHERE status != 'sent'") == []
    # The firms whose reports came after the backup report again; numbering carries on.
    async with w.services.db.read() as repo:
        count_before = len(await repo.tickets.open_tickets())
    assert count_before == len(backed_up)
    firm, _, contact, _ = FIRMS[-1]
    await confirm_queued(w, firm, contact, POWER)
    await w.flush()
    async with w.services.db.read() as repo:
        newest = await repo.tickets.open_tickets()
    new_numbers = {t.number for t in newest} - backed_up
    assert len(new_numbers) == 1
    assert any("工单编号" in m.text for m in w.telegram.chat(firm))


async def test_restore_is_refused_while_the_bot_runs(world: World, tmp_path: Path) -> None:
    out = tmp_path / "b.db"
    backup(world.settings.database_path, out)
    with pytest.raises(BackupError, match=f"正在运行（进程 {os.getpid()}）"):
        restore(out, world.settings.database_path, datetime(2026, 11, 27, 10, 0))
    await world.stop()
    assert restore(out, world.settings.database_path, datetime(2026, 11, 27, 10, 0))


async def test_restore_refuses_files_that_are_not_a_yimi_bot_database(
    world: World, tmp_path: Path
) -> None:
    await world.stop()
    target = world.settings.database_path
    text = tmp_path / "notes.txt"
    text.write_text("not a database", encoding="utf-8")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
    newer = tmp_path / "newer.db"
    backup(target, newer)
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = target.read_bytes()
    now = datetime(2026, 11, 27, 10, 0)
    with pytest.raises(BackupError, match="不是 SQLite"):
        restore(text, target, now)
    with pytest.raises(BackupError, match="不是 yimi-bot"):
        restore(other, target, now)
    with pytest.raises(BackupError, match="更新版本"):
        restore(newer, target, now)
    with pytest.raises(BackupError, match="不存在"):
        restore(tmp_path / "missing.db", target, now)
    assert target.read_bytes() == before  # nothing replaced


async def test_daily_backup_keeps_backup_keep_days(world: World, tmp_path: Path) -> None:
    folder = tmp_path / "daily"
    folder.mkdir()
    for day in ("20261101", "20261112", "20261120"):
        (folder / f"yimi-{day}.db").write_bytes(b"old")
    (folder / "keep-me.db").write_bytes(b"not ours")
    out = daily_backup(world.settings.database_path, folder, 14, date(2026, 11, 27))
    assert out.name == "yimi-20261127.db" and check_database(out) >= 1
    assert sorted(p.name for p in folder.iterdir()) == [
        "keep-me.db",
        "yimi-20261120.db",
        "yimi-20261127.db",
    ]


def test_backup_and_restore_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "yimi.db"
    env = {**os.environ, "DATABASE_PATH": str(db), "BOT_TOKEN": ""}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env=env,
        )

    missing = cli("backup", "--out", str(tmp_path / "b.db"))
    assert missing.returncode == 1 and "数据库不存在" in missing.stderr
    from bot.storage.db import Database

    async def make() -> None:
        await (await Database.open(db)).close()

    asyncio.run(make())
    done = cli("backup", "--out", str(tmp_path / "b.db"))
    assert done.returncode == 0 and "已备份" in done.stdout
    back = cli("restore", str(tmp_path / "b.db"))
    assert back.returncode == 0 and "已恢复" in back.stdout and "before-restore" in back.stdout
    bad = cli("restore", str(db) + "-nothing")
    assert bad.returncode == 1 and "不存在" in bad.stderr


async def test_the_daily_backup_is_a_job_of_the_bot_when_backup_dir_is_set(
    world: World, clock: FakeClock, tmp_path: Path
) -> None:
    assert world.app is not None and world.app.job_queue is not None
    off = world.settings
    schedule = schedule_jobs(world.app, off, world.services)
    assert schedule is not None and "backup" not in [j.name for j in schedule.jobs]  # off
    on = off.model_copy(update={"backup_dir": tmp_path / "daily", "backup_keep": 3})
    world.services.settings = on
    schedule = schedule_jobs(world.app, on, world.services)
    assert schedule is not None and "backup" in [j.name for j in schedule.jobs]
    *_, job = world.app.job_queue.get_jobs_by_name("scheduled work")  # the one with `on`
    await job.callback(None)  # type: ignore[arg-type]
    # Friday 09:00, past 03:00: a database new to the job starts with the next slot.
    assert not (tmp_path / "daily").exists()
    clock.advance(hours=18, minutes=5)  # Saturday 03:05
    await job.callback(None)  # type: ignore[arg-type]
    assert check_database(tmp_path / "daily" / "yimi-20261128.db") >= 1
    await job.callback(None)  # type: ignore[arg-type]
    assert len(list((tmp_path / "daily").iterdir())) == 1
