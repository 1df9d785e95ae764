"""A read-only database file: the bot names the file and the fix in one line, and creates nothing.

The bot runs as its own process (`yimi-bot run`) as a user who is not root (root writes
read-only files anyway). When the tests run as root, the process imports the bot as root (the
interpreter may live in root's home) and then becomes `nobody` before `main` runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.storage.db import Database

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
AS_NOBODY = f"""
import os, sys
import bot.channels.telegram.app, bot.cli, bot.storage.files, bot.doctor, importlib.readers
if os.geteuid() == 0:
    os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})
sys.exit(bot.cli.main(sys.argv[1:]))
"""


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the bot's (non-root) user owns, outside root's private pytest folders."""
    path = Path(tempfile.mkdtemp(prefix="yimi-ro-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def give(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)


def run_bot(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(db.parent),
        "BOT_TOKEN": "123456:TEST-TOKEN",
        "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",  # never reached
        "DATABASE_PATH": str(db),
        "LOG_LEVEL": "ERROR",
    }
    return subprocess.run(
        [sys.executable, "-c", AS_NOBODY, *(args or ("run",))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def made_read_only(folder: Path) -> Path:
    os.chmod(folder, 0o755)
    give(folder)
    db = folder / "yimi.db"

    async def make() -> None:
        await (await Database.open(db)).close()

    asyncio.run(make())
    for f in folder.iterdir():
        give(f)
    db.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return db


def test_a_read_only_database_is_named_with_the_fix_and_nothing_is_created(folder: Path) -> None:
    db = made_read_only(folder)
    before = sorted(p.name for p in folder.iterdir())
    result = run_bot(db)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(db) in lines[0] and f"chmod u+w {db}" in lines[0]
    assert "readonly database" not in result.stderr  # SQLite's own words, naming no file
    # A failed start leaves no read-only -wal or -shm behind: writable again, it starts.
    assert sorted(p.name for p in folder.iterdir()) == before


def test_read_only_wal_and_shm_left_by_an_earlier_start_are_named_too(folder: Path) -> None:
    db = made_read_only(folder)
    db.chmod(0o644)
    for suffix in ("-wal", "-shm"):
        leftover = Path(f"{db}{suffix}")
        leftover.write_bytes(b"")
        give(leftover)
        leftover.chmod(0o444)
    result = run_bot(db)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"{db}-wal" in line and f"{db}-shm" in line and str(db) + " " not in line


def test_doctor_reports_writability_and_free_space(folder: Path) -> None:
    db = made_read_only(folder)
    result = run_bot(db, "doctor")
    assert result.returncode == 1
    assert "可用空间 / free space" in result.stdout and "MB" in result.stdout
    assert f"chmod u+w {db}" in result.stdout
    db.chmod(0o644)
    result = run_bot(db, "doctor")
    assert "可写 / writable: yes" in result.stdout
    assert "[通过 OK] 数据库完整性 integrity" in result.stdout
    # The fixture's token points at a closed port: the doctor says so, and fails for it.
    assert result.returncode == 1 and "[失败 FAIL] Telegram 令牌 token" in result.stdout
