"""COUNTIES_FILE (bot/core/counties.py): a file that is wrong is one clear line, at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.counties import load

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", "lists no [[county]]"),
        ('[[county]]\ncode = "Weishi"\nname = "尉氏县"\nprefix = "WS"\ntowns = ["城关镇"]', "code"),
        ('[[county]]\ncode = "weishi"\nprefix = "WS"\ntowns = ["城关镇"]', "name is missing"),
        ('[[county]]\ncode = "weishi"\nname = "尉氏县"\nprefix = "WS"\ntowns = []', "towns"),
        (
            '[[county]]\ncode = "a"\nname = "甲"\nprefix = "WS"\ntowns = ["镇"]\n'
            '[[county]]\ncode = "b"\nname = "乙"\nprefix = "WS"\ntowns = ["镇"]',
            "prefix 'WS' is used twice",
        ),
        (
            '[[county]]\ncode = "a"\nname = "甲"\nprefix = "A"\ntowns = ["镇"]\n'
            "[county.deadlines]\nclaim_hours = 3",
            "no setting 'claim_hours'",
        ),
        ('[[county]]\ncode = "a"\nname = "甲"\nprefix = "A"\ntowns = ["镇"]\nadmins = [5]', "ids"),
        ("[[county]\n", "cannot be read"),
    ],
)
def test_a_bad_counties_file_is_one_clear_line(tmp_path: Path, body: str, says: str) -> None:
    path = tmp_path / "counties.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError) as bad:
        load(path)
    assert says in str(bad.value) and "\n" not in str(bad.value)


def test_the_bot_refuses_to_start_on_a_bad_counties_file(tmp_path: Path) -> None:
    path = tmp_path / "counties.toml"
    path.write_text('[[county]]\ncode = "weishi"\nname = "尉氏县"\ntowns = ["城关镇"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "COUNTIES_FILE": str(path),
            "DATABASE_PATH": str(tmp_path / "yimi.db"),
            "BOT_TOKEN": "",
            "DATABASE_URL": "",
        },
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "COUNTIES_FILE" in line and "prefix" in line
    assert not (tmp_path / "yimi.db").exists()
