"""The simulator without a browser: its own database (which the real bot refuses), its personas,
what its web server serves."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.channels.simulator.server import COORD_CHEN, GROUPS, PERSONAS, Simulator
from bot.config import Settings
from bot.core.models import TEAM_NAMES
from bot.storage.db import Database

ROOT = Path(__file__).resolve().parents[1]


def sim_settings(tmp_path: Path, **kw: object) -> Settings:
    values: dict[str, object] = {
        "database_path": tmp_path / "yimi.db",
        "simulator_database_path": tmp_path / "simulator.db",
        "towns": ["城关镇", "大营镇"],
        **kw,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def run_bot(database: Path) -> subprocess.CompletedProcess[str]:
    """`yimi-bot run` with a token, as after the simulator when BOT_TOKEN is set."""
    env = {
        **os.environ,
        "BOT_TOKEN": "123456:NOT-A-REAL-TOKEN",
        "DATABASE_PATH": str(database),
        # Should it get past the check, it must not reach the internet.
        "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=env,
    )


async def test_the_simulator_binds_its_groups_in_its_own_database(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path)
    sim = Simulator(settings, port=0)
    await sim.start()
    try:
        assert sim.health()["ok"], sim.error
    finally:
        await sim.stop()
    assert not settings.database_path.exists()  # the bot's database is not touched
    bound = sqlite3.connect(settings.simulator_database_path).execute(
        "SELECT count(*) FROM bindings"
    )
    assert bound.fetchone()[0] == 9

    # Then the user sets BOT_TOKEN with DATABASE_PATH at the simulator's file: one line, exit 2.
    done = run_bot(settings.simulator_database_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "模拟器的数据库" in lines[0] and "DATABASE_PATH" in lines[0]
    assert "Traceback" not in done.stderr


def test_the_default_paths_differ() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_path == Path("data/yimi.db")
    assert settings.simulator_database_path == Path("data/simulator.db")


def test_the_real_bot_starts_on_its_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def create() -> None:
        db = await Database.open(tmp_path / "yimi.db")  # a bot's database, with its schema
        await db.close()

    asyncio.run(create())
    started: list[Path] = []

    class App:
        def run_polling(self, **_: object) -> None:
            started.append(settings.database_path)

    settings = sim_settings(tmp_path, bot_token="123456:TEST")
    monkeypatch.setattr("bot.channels.telegram.app.build_application", lambda _, **kw: App())

    async def reachable(_: object) -> tuple[int, str]:  # getMe answered (no internet in tests)
        return 0, ""

    monkeypatch.setattr("bot.channels.telegram.connection.check_telegram", reachable)
    from bot.cli import _run

    assert _run(settings) == 0
    assert started == [tmp_path / "yimi.db"]


async def test_the_simulator_neither_uses_nor_resets_a_database_it_did_not_make(
    tmp_path: Path,
) -> None:
    production = tmp_path / "yimi.db"
    db = await Database.open(production)
    async with db.tx() as repo:
        await repo.users.bind(
            "telegram:-100500", "finance", "真的金融群", "telegram:1", datetime.now(UTC)
        )
    await db.close()
    sim = Simulator(sim_settings(tmp_path, simulator_database_path=production), port=0)
    await sim.start()
    try:
        assert sim.health()["ok"] is False
        assert "不是模拟器的数据库" in (sim.error or "")
    finally:
        await sim.stop()
    rows = sqlite3.connect(production).execute("SELECT chat_id FROM bindings").fetchall()
    assert rows == [("telegram:-100500",)]


def test_every_team_group_has_a_member_persona_besides_the_coordinator() -> None:
    staff = {p.id for p in PERSONAS if p.id >= 2000 and p.id != COORD_CHEN}
    teams = {g.team: g for g in GROUPS}
    assert set(TEAM_NAMES) <= set(teams)
    for team in TEAM_NAMES:
        members = set(teams[team].members) & staff
        assert members, f"no member persona in the {team} group"
        names = [p for p in PERSONAS if p.id in members]
        # The persona's label says where they are, as the page shows it.
        assert any(team_short(team) in p.role for p in names), (team, names)


def team_short(team: str) -> str:
    return {
        "tech_industry": "科技工信", "finance": "金融", "environment": "环保", "hr_social": "人社",
        "land": "土地", "agriculture": "农业", "rural": "乡村振兴", "publicity": "新闻宣传",
    }[team]  # fmt: skip


async def test_the_page_its_favicon_and_the_timezone_are_served(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path, timezone="Asia/Shanghai")
    sim = Simulator(settings, port=0)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(sim.url + "favicon.ico") as response:
                assert response.status == 200
                assert response.content_type == "image/vnd.microsoft.icon"
                assert (await response.read())[:4] == b"\x00\x00\x01\x00"
            async with session.get(sim.url) as response:
                assert 'rel="icon"' in await response.text()
            async with session.get(sim.url + "api/state") as response:
                state = await response.json()
        assert state["timezone"] == "Asia/Shanghai"
        assert {p["name"] for p in state["personas"]} >= {"刘工", "孙工"}
    finally:
        await sim.stop()
