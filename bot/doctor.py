"""`yimi-bot doctor`: one line per check with a verdict; `make run` logs the local ones' failures.

Local checks read only the settings and the database file (cheap, no network): channel
configured, coordinators' group bound, holiday calendar, database integrity and migrations,
outbox backlog. The remote checks live with their channels: bot/channels/telegram/doctor.py
(getMe, getChat, getChatMember of the bot in every bound group) and bot/channels/wecom/doctor.py
(gettoken, every bound department or tag has members).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import chinese_calendar

from bot.config import Settings
from bot.core.counties import Counties
from bot.core.ids import channel_of
from bot.core.models import COORDINATOR, LEADERS
from bot.reporting.monitor import OLDEST_PENDING_LIMIT
from bot.storage.backup import latest_migration
from bot.storage.files import unwritable

T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    """One check's verdict and the line that says it (and what to do when it failed)."""

    name: str
    ok: bool
    line: str

    def render(self) -> str:
        return f"[{'通过 OK' if self.ok else '失败 FAIL'}] {self.name}：{self.line}"


def _channels(settings: Settings) -> tuple[bool, bool]:
    try:
        settings.token()
        telegram = True
    except ValueError:
        telegram = False
    settings.counties()  # a bad COUNTIES_FILE fails the settings check in one line
    return telegram, settings.wecom() is not None


def check_channels(settings: Settings) -> Check:
    try:
        telegram, wecom = _channels(settings)
    except ValueError as exc:  # WECOM_* set only in part
        return Check("配置 settings", False, str(exc))
    names = [n for n, on in (("Telegram", telegram), ("企业微信", wecom)) if on]
    if not names:
        return Check(
            "渠道 channel",
            False,
            "未配置任何渠道：请在 .env 设置 BOT_TOKEN 或全部 WECOM_* / no channel configured",
        )
    return Check("渠道 channel", True, "、".join(names))


def covered_years(settings: Settings, years: Iterable[int]) -> list[int]:
    """The years among `years` that neither chinesecalendar nor EXTRA_HOLIDAYS covers."""
    extra = {d.year for d in settings.extra_holidays}
    missing = []
    for year in years:
        try:
            chinese_calendar.is_holiday(date(year, 1, 1))
        except NotImplementedError:
            if year not in extra:
                missing.append(year)
    return missing


def check_holidays(settings: Settings, today: date) -> Check:
    missing = covered_years(settings, (today.year, today.year + 1))
    if not missing:
        return Check("节假日 holidays", True, f"{today.year}、{today.year + 1} 年已覆盖")
    years = "、".join(str(y) for y in missing)
    return Check(
        "节假日 holidays",
        False,
        f"chinesecalendar {chinese_calendar.__version__} 没有 {years} 年的数据：请按国务院办公厅"
        f"公布的放假安排在 .env 设置 EXTRA_HOLIDAYS（放假日）和 EXTRA_WORKDAYS（调休上班日），"
        f"如 EXTRA_HOLIDAYS={missing[0]}-01-01,{missing[0]}-10-01，或升级 chinesecalendar；"
        "否则这些年份按周一至周五计算工作日",
    )


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _postgres(settings: Settings, query: Callable[[Any], Awaitable[T]]) -> T:
    """Run `query` on a connection to DATABASE_URL (in a thread of its own when a loop runs)."""
    from bot.storage.sql import PostgresConnection

    async def run() -> T:
        conn = await PostgresConnection.open(settings.database_dsn or "")
        try:
            return await query(conn)
        finally:
            await conn.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _postgres_checks(settings: Settings) -> list[Check]:
    """DATABASE_URL: the server reachable, migrations, the coordinators' binding, the outbox."""
    from bot.storage.health import StorageUnavailable
    from bot.storage.sql import label

    async def read(conn: Any) -> tuple[int | None, object, tuple[Any, ...], int]:
        tables = await conn.execute_fetchall(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'yimi_schema'"
        )
        if not tables[0][0]:
            return None, None, (0, None), 0
        rows = await conn.execute_fetchall("SELECT version FROM yimi_schema")
        bound = await conn.execute_fetchall(
            "SELECT chat_id FROM bindings WHERE team_id = ?", (COORDINATOR,)
        )
        if rows and int(rows[0][0]) >= COUNTY_SCHEMA:
            used[:] = [tuple(r) for r in await conn.execute_fetchall(_COUNTIES_IN_USE)]
        outbox = await conn.execute_fetchall(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'"
        )
        failed = await conn.execute_fetchall("SELECT COUNT(*) FROM outbox WHERE status = 'failed'")
        version = int(rows[0][0]) if rows else 0
        return version, bound[0][0] if bound else None, tuple(outbox[0]), int(failed[0][0])

    used: list[tuple[Any, ...]] = []
    where = label(settings.database_dsn or "")
    try:
        version, bound, (pending_n, oldest), failed = _postgres(settings, read)
    except (StorageUnavailable, OSError) as exc:
        return [Check("数据库 database", False, f"PostgreSQL {where} 无法连接：{exc}")]
    out = [Check("数据库 database", True, f"PostgreSQL {where}")]
    if version is None:
        out.append(Check("迁移 migrations", True, "尚无表（首次启动时创建）"))
        return out
    latest = latest_migration()
    if version > latest:
        out.append(
            Check(
                "迁移 migrations", False, f"数据库为 {version}，高于本版本的 {latest}：请升级机器人"
            )
        )
    else:
        pending = "" if version == latest else f"（启动时将迁移到 {latest}）"
        out.append(Check("迁移 migrations", True, f"版本 {version}{pending}"))
    out += _county_checks(settings, used, f"已绑定 {bound}" if bound else None)
    out.append(_outbox_check(int(pending_n), oldest, failed))
    return out


def _outbox_check(pending_n: int, oldest: str | None, failed: int) -> Check:
    age = 0.0
    if oldest:
        age = (datetime.now().astimezone() - datetime.fromisoformat(oldest)).total_seconds()
    line = f"待发送 {pending_n} 条，最早的已等待 {age / 60:.0f} 分钟，发送失败 {failed} 条"
    return Check("发送队列 outbox", age <= OLDEST_PENDING_LIMIT, line)


def check_database(settings: Settings, *, integrity: bool = True) -> list[Check]:
    """Integrity (the full check only when asked: it reads the whole file), migrations, the
    coordinators' binding and the outbox."""
    if settings.database_dsn:
        return _postgres_checks(settings)
    path = settings.database_path
    if not path.exists():
        return [Check("数据库 database", False, f"{path} 不存在（首次启动时创建）")]
    problem = unwritable(path)
    if problem:  # opened now, SQLite would leave read-only -wal / -shm files behind
        return [Check("数据库 database", False, problem)]
    conn = _connect(path)
    out: list[Check] = []
    try:
        pragma = "integrity_check" if integrity else "quick_check"
        result = conn.execute(f"PRAGMA {pragma}").fetchone()[0]
        out.append(
            Check("数据库完整性 integrity", result == "ok", "ok" if result == "ok" else result)
        )
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        latest = latest_migration()
        if version > latest:
            out.append(
                Check(
                    "迁移 migrations",
                    False,
                    f"数据库为 {version}，高于本版本的 {latest}：请升级机器人",
                )
            )
        else:
            pending = "" if version == latest else f"（启动时将迁移到 {latest}）"
            out.append(Check("迁移 migrations", True, f"版本 {version}{pending}"))
        bound = conn.execute(
            "SELECT chat_id FROM bindings WHERE team_id = ?", (COORDINATOR,)
        ).fetchone()
        used = conn.execute(_COUNTIES_IN_USE).fetchall() if version >= COUNTY_SCHEMA else []
        out += _county_checks(settings, used, f"已绑定 {bound[0]}" if bound else None)
        pending_n, oldest = conn.execute(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'"
        ).fetchone()
        failed = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'failed'").fetchone()[0]
        out.append(_outbox_check(int(pending_n), oldest, int(failed)))
    except sqlite3.DatabaseError as exc:
        out.append(Check("数据库 database", False, f"{path} 无法读取：{exc}"))
    finally:
        conn.close()
    return out


COUNTY_SCHEMA = 10  # the migration that gave firms, tickets and bindings their county
# (kind, county, team or '', how many) of what the database holds per county
_COUNTIES_IN_USE = (
    "SELECT 'ticket', county, '', COUNT(*) FROM tickets GROUP BY county "
    "UNION ALL SELECT 'firm', county, '', COUNT(*) FROM enterprises GROUP BY county "
    "UNION ALL SELECT 'binding', county, team_id, 1 FROM bindings"
)


def _county_checks(
    settings: Settings, used: Iterable[tuple[Any, ...]], coordinators: str | None
) -> list[Check]:
    """The counties the database names against COUNTIES_FILE, and each county's coordinators'
    group. A county the file no longer lists, or rows of no county once there are several,
    would be numbered and routed wrongly: that check fails (and `yimi-bot run` refuses)."""
    try:
        counties = settings.counties()
    except ValueError as exc:
        return [Check("县（区） counties", False, str(exc))]
    rows = [(str(k), str(c), str(t), int(n)) for k, c, t, n in used]
    problem = county_problem(counties, rows)
    out: list[Check] = []
    if problem:
        out.append(Check("县（区） counties", False, problem))
    elif not counties.single:
        out.append(Check("县（区） counties", True, "、".join(c.name for c in counties)))
    if counties.single:
        out.append(
            Check("专班群 coordinators", True, coordinators)
            if coordinators
            else Check("专班群 coordinators", False, "未绑定：请在专班群发送 /bind coordinator")
        )
        return out
    bound = {c for k, c, t, _ in rows if k == "binding" and t == COORDINATOR}
    missing = [c for c in counties if c.code not in bound]
    out.append(
        Check(
            "专班群 coordinators",
            not missing,
            "各县（区）均已绑定"
            if not missing
            else "未绑定："
            + "；".join(f"{c.name}（在其专班群发送 /bind coordinator@{c.code}）" for c in missing),
        )
    )
    return out


def county_problem(counties: Counties, rows: Sequence[tuple[str, str, str, int]]) -> str | None:
    """What is wrong between COUNTIES_FILE and the counties the database holds
    ((kind, county, team, count) rows), or None."""
    named = {c.code for c in counties}
    unknown: dict[str, int] = {}
    orphans = {"ticket": 0, "firm": 0, "binding": 0}
    for kind, county, team, n in rows:
        if county and county not in named:
            unknown[county] = unknown.get(county, 0) + (n if kind == "ticket" else 0)
        elif not county and not counties.single and team != LEADERS:
            orphans[kind] += n
    if unknown:
        listed = "、".join(f"{code}（{n} 件工单）" for code, n in sorted(unknown.items()))
        where = "COUNTIES_FILE 未设置" if counties.single else "COUNTIES_FILE 中没有"
        return f"数据库中有县（区）{listed}，但{where}：请把它们写回 COUNTIES_FILE"
    if any(orphans.values()):
        code = counties.all[0].code
        return (
            f"数据库中有 {orphans['ticket']} 件工单、{orphans['firm']} 家企业、"
            f"{orphans['binding']} 个群组不属于任何县（区）（设置 COUNTIES_FILE 之前的数据）："
            f"请用 yimi-bot adopt-county <代码>（如 {code}）把它们归入一个县（区）"
        )
    return None


def check_counties(settings: Settings) -> Check | None:
    """The county check alone (for `yimi-bot run` before it starts), None when it passes or
    the database does not exist yet."""
    checks = check_database(settings, integrity=False)
    failed = [c for c in checks if c.name.startswith("县（区）") and not c.ok]
    return failed[0] if failed else None


def local_checks(settings: Settings, today: date, *, integrity: bool = True) -> list[Check]:
    """What needs no network."""
    return [
        check_channels(settings),
        check_holidays(settings, today),
        *check_database(settings, integrity=integrity),
    ]


def bound_groups(settings: Settings, channel: str) -> list[tuple[str, str]]:
    if settings.database_dsn:
        from bot.storage.health import StorageUnavailable

        async def read(conn: Any) -> list[tuple[str, str]]:
            try:
                rows = await conn.execute_fetchall(
                    "SELECT chat_id, team_id FROM bindings ORDER BY team_id"
                )
            except Exception:  # no tables yet
                return []
            return [(str(c), str(t)) for c, t in rows]

        try:
            found = _postgres(settings, read)
        except (StorageUnavailable, OSError):
            return []
        return [(c, t) for c, t in found if channel_of(c) == channel]
    path = settings.database_path
    if not path.exists():
        return []
    conn = _connect(path)
    try:
        rows = conn.execute("SELECT chat_id, team_id FROM bindings ORDER BY team_id").fetchall()
    except sqlite3.DatabaseError:
        return []
    finally:
        conn.close()
    return [(str(c), str(t)) for c, t in rows if channel_of(str(c)) == channel]
