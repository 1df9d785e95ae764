"""Backup (while the bot runs) and restore (while it is stopped) of the SQLite database.

A backup is SQLite's online backup API on a connection of its own: one step, so the copy is
one consistent snapshot of the database, whatever the bot commits meanwhile. The running bot
holds an exclusive `flock` on `<database>.lock` (released by the kernel when the process ends,
even by kill -9): restore refuses while someone holds it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO

from bot.storage.db import latest_version
from bot.storage.files import companions

logger = logging.getLogger(__name__)

# Tables every yimi-bot database has, whatever its migration.
_OWN_TABLES = {"tickets", "ticket_events", "outbox", "bindings", "users"}
_DAILY_PREFIX = "yimi-"


class BackupError(Exception):
    """A backup or restore refused or failed; the message is the one line to print."""


def latest_migration() -> int:
    """The highest migration number this version of the bot knows."""
    return latest_version()


def lock_path(db_path: Path) -> Path:
    return Path(f"{db_path}.lock")


class RunLock:
    """Held by a running bot: an exclusive flock on `<database>.lock`, with its pid inside."""

    def __init__(self, db_path: Path) -> None:
        self.path = lock_path(db_path)
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock; False (and nothing held) when another process has it."""
        if str(self.path) == ":memory:.lock":
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def running_pid(db_path: Path) -> int | None:
    """The pid of the bot running on this database (0 if unknown), or None when none runs."""
    probe = RunLock(db_path)
    if not probe.path.exists():
        return None
    if probe.acquire():
        probe.release()
        return None
    try:
        return int(probe.path.read_text(encoding="utf-8").strip() or 0)
    except (OSError, ValueError):
        return 0


def check_database(path: Path) -> int:
    """The migration of a yimi-bot database file that this bot can open; BackupError otherwise."""
    if not path.is_file():
        raise BackupError(f"文件不存在：{path} / no such file: {path}")
    with path.open("rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise BackupError(f"{path} 不是 SQLite 数据库 / {path} is not an SQLite database")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} 无法读取（{exc}）/ cannot read {path}: {exc}") from exc
    finally:
        conn.close()
    if not tables >= _OWN_TABLES or version < 1:
        raise BackupError(f"{path} 不是 yimi-bot 的数据库 / {path} is not a yimi-bot database")
    if version > latest_migration():
        raise BackupError(
            f"{path} 来自更新版本的机器人（迁移 {version}，本版本最高 {latest_migration()}）："
            f"请先升级机器人 / {path} has migration {version}, newer than this bot's "
            f"{latest_migration()}: upgrade the bot first"
        )
    if integrity != "ok":
        raise BackupError(f"{path} 已损坏（{integrity}）/ {path} is corrupt: {integrity}")
    return version


def backup(db_path: Path, out: Path) -> int:
    """Copy the database to `out` (one file, no -wal) while the bot may be writing; returns its
    size in bytes. Written next to `out` first, then renamed: a failed backup leaves no file."""
    if not db_path.is_file():
        raise BackupError(f"数据库不存在：{db_path} / no database at {db_path}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(db_path)
    try:
        source.execute("PRAGMA busy_timeout = 5000")
        target = sqlite3.connect(partial)
        try:
            source.backup(target)  # pages=-1: the whole database in one step, one snapshot
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"备份失败（{exc}）/ backup failed: {exc}") from exc
    finally:
        source.close()
    try:
        check_database(partial)
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    return out.stat().st_size


def restore(source: Path, db_path: Path, now: datetime) -> Path | None:
    """Put the backup `source` in place of the database of a stopped bot. The database it
    replaces is kept beside it (returned), with its -wal and -shm."""
    pid = running_pid(db_path)
    if pid is not None:
        who = f"（进程 {pid}）" if pid else ""
        pid_en = f" (pid {pid})" if pid else ""
        raise BackupError(
            f"机器人正在运行{who}，使用 {db_path}：请先停止机器人再恢复"
            f" / the bot is running on {db_path}{pid_en}: stop it first"
        )
    check_database(source)
    lock = RunLock(db_path)
    if not lock.acquire():  # a bot started meanwhile
        raise BackupError(f"机器人正在运行，使用 {db_path} / the bot is running on {db_path}")
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        incoming = db_path.with_name(db_path.name + ".restoring")
        incoming.unlink(missing_ok=True)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(incoming)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode = DELETE")
            finally:
                dst.close()
        finally:
            src.close()
        kept: Path | None = None
        if db_path.exists():
            kept = db_path.with_name(f"{db_path.name}.before-restore-{now:%Y%m%d-%H%M%S}")
            for f in companions(db_path):
                if f.exists():
                    f.replace(Path(str(f).replace(str(db_path), str(kept), 1)))
        incoming.replace(db_path)
        return kept
    finally:
        lock.release()


def daily_backup(
    db_path: Path, folder: Path, keep_days: int, today: date, *, url: str | None = None
) -> Path:
    """Today's backup in `folder` (yimi-YYYYMMDD.db; on PostgreSQL, `url`, a pg_dump file
    yimi-YYYYMMDD.dump), and backups older than `keep_days` deleted."""
    if url:
        from bot.storage.pgbackup import pg_backup  # it imports this module

        out = folder / f"{_DAILY_PREFIX}{today:%Y%m%d}.dump"
        pg_backup(url, out)
    else:
        out = folder / f"{_DAILY_PREFIX}{today:%Y%m%d}.db"
        backup(db_path, out)
    oldest = today - timedelta(days=keep_days)
    for old in [*folder.glob(f"{_DAILY_PREFIX}*.db"), *folder.glob(f"{_DAILY_PREFIX}*.dump")]:
        try:
            day = datetime.strptime(old.stem.removeprefix(_DAILY_PREFIX), "%Y%m%d").date()
        except ValueError:
            continue  # not one of ours
        if day < oldest:
            old.unlink(missing_ok=True)
            logger.info("old backup deleted: %s", old)
    logger.info("daily backup written: %s", out)
    return out
