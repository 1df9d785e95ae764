"""`yimi-bot doctor`: each check's verdict on a real database and the fake Bot API."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from bot.channels.telegram.doctor import telegram_checks
from bot.doctor import Check, check_database, check_holidays
from tests.conftest import COORD_GROUP, FIN_GROUP, FIRM_A, TECH_GROUP, World
from tests.fakes import FakeClock
from tests.postgres import POSTGRES
from tests.test_burst import POWER, confirm_queued

ROOT = Path(__file__).resolve().parents[1]


def verdicts(checks: list[Check]) -> dict[str, bool]:
    return {c.name: c.ok for c in checks}


def doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`yimi-bot doctor` in a fresh process with this environment."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )


def test_a_deployment_with_no_channel_fails(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_PATH": str(tmp_path / "yimi.db"), "BOT_TOKEN": ""}
    done = doctor({k: v for k, v in env.items() if not k.startswith("WECOM_")})
    assert done.returncode == 1
    assert "[失败 FAIL] 渠道 channel：未配置任何渠道" in done.stdout
    assert "[通过 OK] 配置 settings" in done.stdout


def test_invalid_settings_are_one_failing_line(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_PATH": str(tmp_path / "yimi.db"), "DIGEST_TIME": "25:99"}
    done = doctor(env)
    assert done.returncode == 1
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith("[失败 FAIL] 配置 settings") and "DIGEST_TIME" in line


def test_holidays_name_the_uncovered_year_and_what_to_set(world: World) -> None:
    check = check_holidays(world.settings, date(2026, 12, 2))
    assert not check.ok and "2027" in check.line
    assert "EXTRA_HOLIDAYS" in check.line and "EXTRA_WORKDAYS" in check.line
    covered = world.settings.model_copy(update={"extra_holidays": [date(2027, 1, 1)]})
    assert check_holidays(covered, date(2026, 12, 2)).ok


async def test_database_checks_coordinators_and_the_outbox(world: World) -> None:
    before = verdicts(check_database(world.settings))
    assert before["数据库完整性 integrity"] and before["迁移 migrations"]
    assert not before["专班群 coordinators"]
    await world.bind_all()
    await world.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    assert verdicts(check_database(world.settings))["发送队列 outbox"]
    await confirm_queued(world, FIRM_A, "张伟", POWER)  # queued at the test clock, days ago
    after = check_database(world.settings)
    assert verdicts(after)["专班群 coordinators"]
    (outbox,) = [c for c in after if c.name == "发送队列 outbox"]
    assert not outbox.ok and "待发送" in outbox.line


async def test_every_bound_telegram_group_is_checked(world: World) -> None:
    await world.bind_all()
    tg = world.telegram
    found = verdicts(await telegram_checks(world.settings, request=tg))
    assert found == {
        "Telegram 令牌 token": True,
        "Telegram 群 coordinator": True,
        "Telegram 群 finance": True,
        "Telegram 群 tech_industry": True,
    }
    tg.privacy_mode = True  # a plain member with privacy mode on sees no replies
    tg.bot_status[FIN_GROUP] = "left"
    tg.gone.add(COORD_GROUP)
    checks = await telegram_checks(world.settings, request=tg)
    lines = {c.name: c for c in checks}
    assert not any(c.ok for name, c in lines.items() if name != "Telegram 令牌 token")
    assert "/setprivacy" in lines["Telegram 群 tech_industry"].line
    assert "不在群内" in lines["Telegram 群 finance"].line
    assert "无法访问" in lines["Telegram 群 coordinator"].line
    assert f"群 {TECH_GROUP}" in lines["Telegram 群 tech_industry"].line  # the group's title


async def test_a_refused_token_is_one_failing_line(world: World) -> None:
    world.telegram.fail_next.append(("getMe", 401, "Unauthorized", None))
    (check,) = await telegram_checks(world.settings, request=world.telegram)
    assert not check.ok and "BOT_TOKEN" in check.line and "TEST-TOKEN" not in check.line


async def test_database_checks_on_postgresql(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", await POSTGRES.fresh_database())
    world = World(tmp_path, clock)
    await world.start()
    try:
        before = verdicts(check_database(world.settings))
        assert before["数据库 database"] and before["迁移 migrations"]
        assert not before["专班群 coordinators"]
        await world.bind_all()
        await world.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
        await confirm_queued(world, FIRM_A, "张伟", POWER)  # queued at the test clock, days ago
        after = check_database(world.settings)
        assert verdicts(after)["专班群 coordinators"]
        (outbox,) = [c for c in after if c.name == "发送队列 outbox"]
        assert not outbox.ok and "待发送" in outbox.line
    finally:
        await world.stop()
    # A server that cannot be reached is one failing line, with the password left out.
    monkeypatch.setenv("DATABASE_URL", "postgresql://yimi:secret@127.0.0.1:1/none")
    unreachable = check_database(World(tmp_path, clock).settings)
    assert [c.ok for c in unreachable] == [False]
    assert "无法连接" in unreachable[0].line and "secret" not in unreachable[0].line
