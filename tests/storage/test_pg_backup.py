"""Backup and restore on PostgreSQL (pg_dump / pg_restore): a backup taken in the middle of a
burst is consistent; restore is refused while a bot runs; the restored bot carries on."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.storage.backup import BackupError
from bot.storage.pgbackup import pg_backup, pg_restore
from tests.dbread import query
from tests.neutral.harness import World, button, person
from tests.postgres import POSTGRES

FIRMS = [f"firm{i}" for i in range(8)]


async def report(w: World, firm: str, text: str) -> None:
    proposal = await w.say(person(firm), text)
    _, draft, _ = button(proposal, "确认")
    await w.s.workflow.confirm(person(firm), draft)


def consistent(w: World) -> int:
    """Every ticket in the database has its submission event and its card in the outbox, and
    the day's counter is at least its highest number; returns how many tickets there are."""
    tickets = query(w.settings, "SELECT id, number FROM tickets WHERE state != 'draft'")
    for ticket_id, _ in tickets:
        events = query(
            w.settings, "SELECT action FROM ticket_events WHERE ticket_id = ?", (ticket_id,)
        )
        assert events, f"ticket {ticket_id} without events"
        cards = query(
            w.settings, "SELECT id FROM outbox WHERE ticket_id = ? AND kind = 'card'", (ticket_id,)
        )
        assert cards, f"ticket {ticket_id} without its card"
    if tickets:
        highest = max(int(n.rsplit("-", 1)[1]) for _, n in tickets)
        (counter,) = query(w.settings, "SELECT MAX(value) FROM counters")
        assert counter[0] >= highest
    return len(tickets)


async def test_backup_mid_burst_restore_refused_while_running_then_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await POSTGRES.fresh_database()
    monkeypatch.setenv("DATABASE_URL", url)
    out = tmp_path / "backup.dump"
    w = await World.staffed(tmp_path / "bot")
    try:
        for i, firm in enumerate(FIRMS):
            await w.register(person(firm), f"第{i}机械厂", "张伟", f"1381234{i:04d}")
        await report(w, FIRMS[0], "厂区停电了，变压器跳闸，生产线停了")
        # The backup runs while the other firms report (pg_dump takes one snapshot).
        burst = asyncio.gather(*(report(w, f, "园区又停电了，车间机器全停") for f in FIRMS[1:]))
        size = await asyncio.to_thread(pg_backup, url, out)
        await burst
        await w.flush()
        assert size > 0 and out.is_file() and not out.with_name(out.name + ".partial").exists()
        assert consistent(w) == len(FIRMS)
        with pytest.raises(BackupError, match="机器人正在运行"):
            await pg_restore(out, url)
    finally:
        await w.close()

    await pg_restore(out, url)
    w = World(tmp_path / "bot")
    await w.open()
    try:
        backed_up = consistent(w)
        assert 1 <= backed_up <= len(FIRMS)  # what the snapshot held, each ticket whole
        await report(w, FIRMS[0], "园区路灯不亮，晚上货车进出很危险")
        await w.flush()
        (number,) = query(w.settings, "SELECT number FROM tickets ORDER BY id DESC LIMIT 1")
        assert re.fullmatch(rf"YM-\d{{8}}-{backed_up + 1:04d}", number[0])
        assert consistent(w) == backed_up + 1
    finally:
        await w.close()


async def test_backup_and_restore_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await POSTGRES.fresh_database()
    monkeypatch.setenv("DATABASE_URL", url)
    w = await World.staffed(tmp_path)
    await w.register(person("zhang"), "宏远铸造厂", "张伟", "13812345678")
    await report(w, "zhang", "厂区停电了，变压器跳闸，生产线停了")
    await w.close()
    out = tmp_path / "cli.dump"
    assert await asyncio.to_thread(main, ["backup", "--out", str(out)]) == 0
    assert "已备份" in capsys.readouterr().out and "secret" not in url
    query(w.settings, "DELETE FROM outbox")  # something changes after the backup
    assert await asyncio.to_thread(main, ["restore", str(out)]) == 0
    assert "已恢复" in capsys.readouterr().out
    assert query(w.settings, "SELECT COUNT(*) FROM outbox")[0][0] > 0
    assert await asyncio.to_thread(main, ["restore", str(tmp_path / "none.dump")]) == 1


async def test_a_restore_that_fails_half_way_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await POSTGRES.fresh_database()
    monkeypatch.setenv("DATABASE_URL", url)
    w = await World.staffed(tmp_path)
    for i, firm in enumerate(FIRMS):
        await w.register(person(firm), f"第{i}机械厂", "张伟", f"1381234{i:04d}")
        await report(w, firm, "厂区停电了，变压器跳闸，生产线停了")
    await w.close()
    good = tmp_path / "good.dump"
    pg_backup(url, good)
    broken = tmp_path / "broken.dump"
    broken.write_bytes(good.read_bytes()[:-2000])  # a copy cut short
    before = query(w.settings, "SELECT COUNT(*) FROM tickets")[0][0]
    with pytest.raises(BackupError):
        await pg_restore(broken, url)
    assert query(w.settings, "SELECT COUNT(*) FROM tickets")[0][0] == before == len(FIRMS)


def test_the_password_never_appears_on_a_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []
    real = subprocess.run

    def run(args: list[str], **kw: Any) -> Any:
        seen.append((list(args), dict(kw.get("env") or {})))
        return real(args, **kw)

    monkeypatch.setattr(subprocess, "run", run)
    server = POSTGRES.get()
    url = server.url().replace("yimi@", "yimi:s3cr%40t@")  # trusted: any password is accepted
    pg_backup(url, tmp_path / "x.dump")
    assert seen and all("s3cr" not in " ".join(args) for args, _ in seen)
    assert all(env.get("PGPASSWORD") == "s3cr@t" for _, env in seen)
