"""What a person watching `make run` reads at INFO: lifecycle lines, no scheduler chatter, no HTML."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import World

ROOT = Path(__file__).resolve().parents[1]

EMIT = """
import logging
from bot.config import Settings
from bot.logsetup import setup_logging
setup_logging(Settings(_env_file=None))
run = logging.getLogger("apscheduler.executors.default")
run.info('Running job "follow-up tick (trigger: interval[0:01:00])"')
run.info('Job "follow-up tick" executed successfully')
logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot123:SECRET/getMe")
logging.getLogger("bot.workflow.intake").info("ticket YM-1 submitted, team finance, chat 7")
logging.getLogger("bot.workflow.intake").debug("report text: hello")
"""


def _emit(level: str, timezone: str = "Asia/Shanghai") -> str:
    env = {**os.environ, "LOG_LEVEL": level, "TIMEZONE": timezone, "TZ": "UTC"}
    done = subprocess.run(
        [sys.executable, "-c", EMIT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
        env=env,
    )
    return done.stderr


def test_info_keeps_lifecycle_lines_and_drops_the_scheduler_runs() -> None:
    out = _emit("INFO")
    assert "ticket YM-1 submitted" in out
    assert "Running job" not in out and "executed successfully" not in out
    assert "Run time of job was missed" in out  # its warnings still show
    assert "SECRET" not in out
    assert "report text" not in out


def test_debug_shows_the_scheduler_runs_but_never_the_token() -> None:
    out = _emit("DEBUG")
    assert "Running job" in out and "executed successfully" in out
    assert "report text: hello" in out
    assert "SECRET" not in out


def test_log_times_are_in_the_configured_timezone(tmp_path: Path) -> None:
    # TZ=UTC for the process, as on a server: the lines still read in TIMEZONE.
    shanghai = _emit("INFO", "Asia/Shanghai").splitlines()[0]
    utc = _emit("INFO", "UTC").splitlines()[0]
    hours = int(shanghai.split()[1][:2]) - int(utc.split()[1][:2])
    assert hours % 24 == 8


async def test_the_start_line_is_plain_text(world: World, caplog: pytest.LogCaptureFixture) -> None:
    await world.bind_all()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await world.restart()
    started = [r.getMessage() for r in caplog.records if "yimi-bot started" in r.getMessage()]
    assert started == [
        "yimi-bot started; groups bound: coordinator telegram:-1009, finance telegram:-1002, "
        "tech_industry telegram:-1001"
    ]
    for record in caplog.records:
        if record.levelno >= logging.INFO:
            assert "<b>" not in record.getMessage() and "</" not in record.getMessage()
