"""Settings from the environment, and what the bot says when the token is missing."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from bot.config import Settings
from bot.worktime.calendar import WorkCalendar


def test_lists_and_extra_days_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", "12, 34")
    monkeypatch.setenv("TOWNS", "城关镇,大营镇")
    monkeypatch.setenv("EXTRA_HOLIDAYS", "2027-01-01")
    monkeypatch.setenv("EXTRA_WORKDAYS", "2027-01-09")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.admin_ids == [12, 34]
    assert settings.towns == ["城关镇", "大营镇"]
    calendar = WorkCalendar(settings)
    assert not calendar.is_workday(date(2027, 1, 1))  # a Friday, declared a holiday
    assert calendar.is_workday(date(2027, 1, 9))  # a Saturday, declared a make-up day


def test_run_without_a_token_says_what_to_set_and_never_loads_telegram_code(
    tmp_path: Path,
) -> None:
    # classify must not import the chat side at all (cold start, and the WeCom channel later).
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bot.cli, bot.classify.evaluation; "
            "print(sorted(m for m in sys.modules if m.startswith(('telegram', 'bot.channels.simulator'))))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert done.stdout.strip() == "[]"
    # The Telegram path (the application and its handlers) never loads the simulator.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bot.channels.telegram.app; "
            "print(sorted(m for m in sys.modules if m.startswith('bot.channels.simulator')))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert done.stdout.strip() == "[]"
    from bot.cli import main

    settings_env = {"DATABASE_PATH": str(tmp_path / "x.db")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in settings_env.items():
            mp.setenv(key, value)
        mp.delenv("BOT_TOKEN", raising=False)
        mp.setattr("bot.cli._run_simulator", lambda settings: 7)
        assert main(["run"]) == 7


def test_low_confidence_sends_reports_to_the_coordinators() -> None:
    from bot.classify.classifier import get_classifier
    from bot.workflow.base import team_of

    result = get_classifier().classify("厂里变压器老是跳闸")
    assert team_of(result, 0.0) == "tech_industry"
    assert team_of(result, 1.01) is None  # LOW_CONFIDENCE above any confidence: all to 专班
    assert team_of(get_classifier().classify("你好"), 0.0) is None
