"""The data commands of `yimi-bot`: export (问题台账), backup, restore, migrate-db, adopt-county.

Each prints one line of what it did or what is wrong, and returns the exit code."""

from __future__ import annotations

import asyncio
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    pass


def adopt_county_command(settings: Settings, code: str) -> int:
    """`yimi-bot adopt-county CODE` (stop the bot first, as for migrate-db)."""
    from bot.storage.adopt import adopt_county
    from bot.storage.backup import RunLock
    from bot.storage.db import Database

    try:
        county = settings.counties().get(code)
    except ValueError as exc:
        print(f"配置错误：{exc}", file=sys.stderr)
        return 2
    if county is None or not code:
        codes = ", ".join(c.code for c in settings.counties() if c.code)
        print(f"COUNTIES_FILE 中没有代码为 {code} 的县（区）：{codes or '未设置 COUNTIES_FILE'}")
        return 2
    lock = None if settings.database_dsn else RunLock(settings.database_path)
    if lock is not None and not lock.acquire():
        print("机器人正在运行：请先停止它 / stop the bot first", file=sys.stderr)
        return 2

    async def run() -> dict[str, int]:
        db = await Database.at(settings.database_path, settings.database_dsn)
        try:
            return await adopt_county(db, code)
        finally:
            await db.close()

    try:
        moved = asyncio.run(run())
    finally:
        if lock is not None:
            lock.release()
    print(
        f"已归入{county.name}：{moved['enterprises']} 家企业、{moved['tickets']} 件工单、"
        f"{moved['bindings']} 个群组、{moved['team_leads']} 位团队负责人"
    )
    if moved["kept"]:
        print(f"另有 {moved['kept']} 个群组未归入（{county.name}已绑定同一团队）：请先 /unbind")
        return 1
    return 0


def export(
    settings: Settings,
    out: Path,
    start: str | None,
    end: str | None,
    *,
    masked: bool,
    county: str | None = None,
) -> int:
    """The ledger from the command line: masked, as in the groups, unless --unmasked (an admin)."""
    from bot.core.ports import SystemClock
    from bot.reporting.service import Reports, parse_day
    from bot.storage.db import Database
    from bot.workflow.rights import NoMembership, Rights
    from bot.worktime.calendar import WorkCalendar
    from bot.worktime.deadlines import DeadlinePolicy

    if county is not None and settings.counties().get(county) is None:
        codes = ", ".join(c.code for c in settings.counties()) or "（未配置 COUNTIES_FILE）"
        print(f"没有代码为 {county} 的县（区）/ no county {county!r}: {codes}", file=sys.stderr)
        return 2
    days = [parse_day(value) if value else None for value in (start, end)]
    if any(value and day is None for value, day in zip((start, end), days, strict=True)):
        print("日期格式应为 YYYY-MM-DD / dates must be YYYY-MM-DD", file=sys.stderr)
        return 2

    async def export() -> int:
        db = await Database.at(settings.database_path, settings.database_dsn)
        calendar = WorkCalendar(settings)
        reports = Reports(
            db,
            settings,
            SystemClock(settings.timezone),
            calendar,
            DeadlinePolicy(settings, calendar),
            Rights(db, NoMembership(), settings.counties()),
        )
        try:
            _, rows = await reports.export(
                out,
                start=days[0],
                end=days[1],
                exporter_id=None,
                exporter_name=_cli_exporter(),
                exporter_is_admin=not masked,
                county=county,
            )
        finally:
            await db.close()
        return rows

    rows = asyncio.run(export())
    how = "已脱敏 / masked" if masked else "未脱敏 / unmasked"
    print(f"{out}: {rows} 条工单 / tickets（{how}）")
    return 0


def _cli_exporter() -> str:
    """Who exported, for the footer and the audit log: the command and the system user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "命令行 yimi-bot export"
    return f"命令行 yimi-bot export（系统用户 {user}）"


def backup(settings: Settings, out: Path) -> int:
    """An online backup of the database (the bot may be running)."""
    from bot.storage.backup import BackupError, backup
    from bot.storage.pgbackup import pg_backup
    from bot.storage.sql import label

    url = settings.database_dsn
    try:
        size = pg_backup(url, out) if url else backup(settings.database_path, out)
    except BackupError as exc:
        print(exc, file=sys.stderr)
        return 1
    source = label(url) if url else settings.database_path
    print(f"已备份 / backed up: {source} → {out}（{size:,} B）")
    return 0


def restore(settings: Settings, source: Path) -> int:
    """The backup `source` in place of the database; refused while the bot runs."""
    from datetime import datetime

    from bot.storage.backup import BackupError, restore
    from bot.storage.pgbackup import pg_restore
    from bot.storage.sql import label

    if settings.database_dsn:
        try:
            asyncio.run(pg_restore(source, settings.database_dsn))
        except BackupError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"已恢复 / restored: {source} → {label(settings.database_dsn)}")
        return 0
    try:
        kept = restore(source, settings.database_path, datetime.now())
    except BackupError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"已恢复 / restored: {source} → {settings.database_path}")
    if kept is not None:
        print(f"原数据库保留为 / the replaced database is kept as: {kept}")
    return 0


def migrate_db(source: str, target: str) -> int:
    """Copy a county's SQLite database into an empty PostgreSQL database, checked row by row."""
    from bot.storage.transfer import TransferError, migrate_db, sqlite_path

    if not target.startswith(("postgresql://", "postgres://")):
        print("--to 应为 postgresql://… / --to must be a postgresql:// URL", file=sys.stderr)
        return 2
    try:
        counts = asyncio.run(migrate_db(sqlite_path(source), target))
    except TransferError as exc:
        print(exc, file=sys.stderr)
        return 1
    rows = sum(counts.values())
    print(
        f"已迁移并逐行核对 / copied and checked row by row: {len(counts)} 张表，{rows:,} 行"
        f"（工单 {counts.get('tickets', 0):,}）→ {_no_password(target)}"
    )
    print("下一步：在 .env 设置 DATABASE_URL=… 后重启机器人 / next: set DATABASE_URL and restart")
    return 0


def _no_password(url: str) -> str:
    from bot.storage.sql import label

    return label(url)
