"""Issue 15 item 2: a network or token failure at start is one line and a non-zero exit; a drop
of the link later is retried with backoff and logged once when it goes and once when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from pathlib import Path

import pytest

from bot.channels.simulator.fakeapi import FakeBotAPI
from tests.conftest import World


async def run_bot(tmp_path: Path, **env: str) -> tuple[int, str]:
    """`yimi-bot run` in a fresh directory (no .env) with `env`: exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env={**os.environ, "DATABASE_PATH": str(tmp_path / "yimi.db"), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, err.decode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lines(stderr: str) -> list[str]:
    """What a person reads: the log lines and messages, not the start-up banner of jieba."""
    return [line for line in stderr.splitlines() if line.strip() and "jieba" not in line]


async def test_no_network_at_start_is_one_line_and_exit_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/bot"
    code, err = await run_bot(tmp_path, BOT_TOKEN="123456:TEST-TOKEN", TELEGRAM_BASE_URL=url)
    assert code == 3
    assert "Traceback" not in err
    [line] = lines(err)
    assert "连不上 Telegram Bot API" in line and url in line
    assert "代理" in line and "TELEGRAM_BASE_URL" in line
    assert "TEST-TOKEN" not in err


async def test_a_refused_token_is_one_line_and_exit_2(tmp_path: Path) -> None:
    async with FakeBotAPI(token="123456:TEST-TOKEN") as api:
        code, err = await run_bot(
            tmp_path, BOT_TOKEN="123456:WRONG-TOKEN", TELEGRAM_BASE_URL=api.base_url
        )
    assert code == 2
    assert "Traceback" not in err
    [line] = lines(err)
    assert "拒绝了 BOT_TOKEN" in line and "@BotFather" in line
    assert "WRONG-TOKEN" not in err


async def test_a_drop_while_polling_is_logged_once_each_way(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    app, tg = world.app, world.telegram
    assert app is not None and app.updater is not None
    for _ in range(3):  # three failed polls in a row (a proxy answering 502)
        tg.fail_next.append(("getUpdates", 502, "Bad Gateway", None))
    caplog.set_level(logging.DEBUG)

    def on_poll_error(exc: Exception) -> None:  # what run_polling passes
        app.create_task(app.process_error(error=exc, update=None))

    await app.start()
    await app.updater.start_polling(poll_interval=0.05, error_callback=on_poll_error)
    try:
        for _ in range(200):
            if any("reachable again" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    finally:
        await app.updater.stop()
        await app.stop()
    polls = [name for name, _ in tg.calls if name == "getUpdates"]
    assert len(polls) >= 4  # retried until the link was back
    loud = [r for r in caplog.records if r.levelno >= logging.INFO and "Telegram" in r.getMessage()]
    assert [r.levelname for r in loud] == ["WARNING", "INFO"]
    assert "unreachable" in loud[0].getMessage() and "reachable again" in loud[1].getMessage()
    assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.WARNING]
