"""Backup and restore on PostgreSQL: PostgreSQL's documented path, `pg_dump` and `pg_restore`.

`pg_dump --format=custom` takes one consistent snapshot while the bots keep writing (it runs in
a repeatable-read transaction). `restore` is for a stopped deployment: every running bot holds a
shared advisory lock on its connection (bot.storage.sql.RUN_LOCK); restore takes it exclusively
or refuses, so no bot can start half-way through. It then empties the schema and loads the dump
in one transaction (psql --single-transaction), so nothing written after the backup survives
next to it, and a restore that fails leaves the database as it was. The password travels in
PGPASSWORD, never on a command line.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from bot.storage import pgserver
from bot.storage.backup import BackupError
from bot.storage.sql import RUN_LOCK, PostgresConnection, label


def _tool(name: str) -> str:
    """pg_dump / pg_restore: the newest installed (it must not be older than the server)."""
    folder = pgserver.binaries()
    found = str(folder / name) if folder and (folder / name).exists() else shutil.which(name)
    if not found:
        raise BackupError(
            f"找不到 {name}：请安装 PostgreSQL 客户端（Debian: postgresql-client）/ {name} not found"
        )
    return found


def _connection(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment that carries it (PGPASSWORD): a
    password on a command line is readable by every user of the machine (ps)."""
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password is None:
        return url, env
    env["PGPASSWORD"] = unquote(parts.password)
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host)), env


def _run(args: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600, check=False, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise BackupError(f"{Path(args[0]).name} 失败 / failed: {last}")


def pg_backup(url: str, out: Path) -> int:
    """A consistent dump of the database at `url` in `out` (written beside it first, then
    renamed: a failed backup leaves no file); its size in bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    dsn, env = _connection(url)
    try:
        _run([_tool("pg_dump"), "--format=custom", f"--file={partial}", f"--dbname={dsn}"], env)
        _run([_tool("pg_restore"), "--list", str(partial)], env)  # readable as a dump
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    return out.stat().st_size


async def pg_restore(source: Path, url: str) -> None:
    """Replace the database at `url` by the dump `source`; refused while a bot runs on it.

    In one transaction: the schema is emptied and the dump loaded together, so a dump that
    turns out unreadable half-way, a full disk or a lost connection leaves the database as it
    was."""
    if not source.is_file():
        raise BackupError(f"备份文件不存在：{source} / no such backup: {source}")
    script = source.with_name(source.name + ".restore.sql")
    await asyncio.to_thread(
        _run,
        [_tool("pg_restore"), "--no-owner", "--no-privileges", f"--file={script}", str(source)],
    )
    dsn, env = _connection(url)
    conn = await PostgresConnection.open(url)
    try:
        rows = await conn.execute_fetchall(f"SELECT pg_try_advisory_lock({RUN_LOCK})")
        if not rows[0][0]:
            raise BackupError(
                f"机器人正在运行，使用 {label(url)}：请先停止所有机器人进程再恢复"
                f" / a bot is running on {label(url)}: stop every bot process first"
            )
        await asyncio.to_thread(
            _run,
            [
                _tool("psql"),
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                "--command=DROP SCHEMA public CASCADE; CREATE SCHEMA public;",
                f"--file={script}",
                f"--dbname={dsn}",
            ],
            env,
        )
    finally:
        await conn.close()  # the lock goes with the connection
        script.unlink(missing_ok=True)
