"""`yimi-bot migrate-db`: a county's SQLite database moved into PostgreSQL, checked row for row;
the bot carries on there (same numbers, no id taken twice)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.models import TicketState
from bot.storage import transfer
from bot.storage.backup import RunLock
from bot.storage.sql import PostgresConnection
from bot.storage.transfer import TransferError, migrate_db, sqlite_path
from tests.neutral.harness import NUMBER, World, button, in_group, person
from tests.postgres import POSTGRES

WANG = in_group(person("wang"), World.TECH)


async def report(w: World, firm: str, text: str) -> int:
    proposal = await w.say(person(firm), text)
    _, draft, _ = button(proposal, "确认")
    await w.s.workflow.confirm(person(firm), draft)
    await w.flush()
    return draft


async def county_on_sqlite(folder: Path) -> dict[str, int]:
    """A county's month in small: two firms, a merge (the earlier ticket into the later one: a
    ticket that refers to a later row of its own table), a claim; returns the ticket ids."""
    w = await World.staffed(folder)
    try:
        await w.register(person("zhang"), "宏远铸造厂", "张伟", "13812345678")
        await w.register(person("li"), "绿源食品厂", "李娜", "13987654321")
        first = await report(w, "zhang", "暴雨后园区停电了，变压器跳闸，生产线全停")
        second = await report(w, "li", "园区又停电了，车间机器全停")
        async with w.s.db.read() as repo:
            a, b = await repo.tickets.get_ticket(first), await repo.tickets.get_ticket(second)
        assert a is not None and b is not None
        await w.s.workflow.merge(WANG, a.number or "", b.number or "")
        await w.s.workflow.claim(WANG, second)
        await w.flush()
        return {"merged": first, "main": second}
    finally:
        await w.close()


def rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {n: conn.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0] for n in names}
    finally:
        conn.close()


async def test_a_county_moves_to_postgresql_and_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    ids = await county_on_sqlite(tmp_path / "county")
    source = tmp_path / "county" / "yimi.db"
    before = rows(source)
    url = await POSTGRES.fresh_database()

    # One row per batch: the earlier ticket, merged into the later one, points into a batch
    # not yet copied when its own is.
    monkeypatch.setattr(transfer, "BATCH", 1)
    counts = await migrate_db(source, url)
    assert counts == before  # every table, every row (and compared row for row inside)
    assert counts["tickets"] == 2 and counts["ticket_events"] > 4 and counts["outbox"] > 4

    # Not twice: the target now holds data.
    with pytest.raises(TransferError, match="已有数据"):
        await migrate_db(source, url)

    # The bot on PostgreSQL carries on where the file left off.
    monkeypatch.setenv("DATABASE_URL", url)
    w = World(tmp_path / "after")
    await w.open()
    try:
        async with w.s.db.read() as repo:
            main = await repo.tickets.get_ticket(ids["main"])
            merged = await repo.tickets.get_ticket(ids["merged"])
        assert main is not None and merged is not None
        assert main.state == TicketState.IN_PROGRESS and main.claimed_by == person("wang").id
        assert merged.state == TicketState.MERGED and merged.merged_into == main.id
        await w.s.workflow.resolve(WANG, main.id, "已协调供电公司更换变压器，恢复供电")
        await w.flush()
        said = [s.text for s in w.sender.chat(person("li").id)]
        assert any("恢复供电" in t for t in said)  # the main's result reached its firm
        third = await report(w, "zhang", "厂里的电费发票开错了，能否重开")
        async with w.s.db.read() as repo:
            new = await repo.tickets.get_ticket(third)
        assert new is not None and third > ids["main"]  # no id taken twice
        # The day's numbering continues (its counter moved too): the third ticket is -0003.
        assert new.number is not None and NUMBER.fullmatch(new.number)
        assert new.number.endswith("-0003")
    finally:
        await w.close()


async def test_refused_while_the_bot_runs_and_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    await county_on_sqlite(tmp_path)
    source = tmp_path / "yimi.db"
    url = await POSTGRES.fresh_database()
    lock = RunLock(source)
    assert lock.acquire()
    try:
        with pytest.raises(TransferError, match="请先停止机器人"):
            await migrate_db(source, url)
    finally:
        lock.release()
    assert sqlite_path("sqlite:////tmp/x.db") == Path("/tmp/x.db")
    assert sqlite_path("sqlite:///data/yimi.db") == Path("data/yimi.db")
    assert main(["migrate-db", "--from", "sqlite:///x.db", "--to", "mysql://h/db"]) == 2
    # From the command line (asyncio.run of its own: run in a thread, this test has a loop).
    import asyncio

    code = await asyncio.to_thread(
        main, ["migrate-db", "--from", f"sqlite:///{source}", "--to", url]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "逐行核对" in out and "工单 2" in out


async def test_a_row_that_differs_after_the_copy_rolls_everything_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    await county_on_sqlite(tmp_path)
    url = await POSTGRES.fresh_database()
    real = PostgresConnection.executemany

    async def lossy(self: PostgresConnection, sql: str, batch: object) -> None:
        rows = list(batch)  # type: ignore[call-overload]
        if sql.startswith("INSERT INTO ticket_events"):
            rows = rows[:-1]  # one event lost on the way
        await real(self, sql, rows)

    monkeypatch.setattr(PostgresConnection, "executemany", lossy)
    with pytest.raises(TransferError, match="ticket_events 表核对不一致"):
        await migrate_db(tmp_path / "yimi.db", url)
    monkeypatch.undo()
    target = await PostgresConnection.open(url)
    try:
        for table in ("tickets", "users", "ticket_events"):
            assert (await target.execute_fetchall(f"SELECT COUNT(*) FROM {table}"))[0][0] == 0
    finally:
        await target.close()
