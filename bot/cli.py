"""yimi-bot run | simulate | doctor | backup | restore | classify | eval | lexicon suggest | export."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot import admin
from bot.classify import commands
from bot.config import Settings
from bot.logsetup import setup_logging

if TYPE_CHECKING:
    from bot.doctor import Check


def _run(settings: Settings) -> int:
    """`_start`, and a database that cannot be written said in one line (exit code 2)."""
    from bot.storage.files import StorageUnwritable
    from bot.storage.health import StorageUnavailable

    try:
        return _start(settings)
    except StorageUnwritable as exc:
        print(exc, file=sys.stderr)
        return 2
    except StorageUnavailable as exc:  # PostgreSQL not reachable at start: one line
        print(f"数据库无法连接 / cannot reach the database: {exc}", file=sys.stderr)
        return 2
    except sqlite3.OperationalError as exc:  # at start (a running bot waits such errors out)
        path = settings.database_path
        print(
            f"数据库 {path} 无法写入（{exc}）：请清理磁盘空间或检查该文件及其 -wal、-shm 的权限"
            f" / the database {path} refuses writes ({exc}): free disk space or fix permissions",
            file=sys.stderr,
        )
        return 2


def _wait_to_lead(settings: Settings) -> None:
    """On PostgreSQL several processes may run: this one goes on once it leads (at once when
    it is the only one); see bot.storage.lease."""
    if settings.database_dsn:
        from bot.classify.classifier import get_classifier
        from bot.storage.lease import holder_name, wait_to_lead

        get_classifier()  # loaded while standing by: a takeover starts that much sooner
        asyncio.run(wait_to_lead(settings.database_dsn, holder_name()))


def _start(settings: Settings) -> int:
    """Every configured channel on one database: Telegram (BOT_TOKEN), WeCom (WECOM_*), both;
    with neither, the local simulator."""
    try:
        wecom = settings.wecom()
        settings.counties()
    except ValueError as exc:
        print(f"配置错误：{exc}", file=sys.stderr)
        return 2
    from bot.doctor import check_counties

    wrong = check_counties(settings)
    if wrong is not None:
        print(f"配置错误：{wrong.line}", file=sys.stderr)
        return 2
    try:
        settings.token()
        telegram = True
    except ValueError:
        telegram = False
    if not telegram and wecom is None:
        return _run_simulator(settings)
    if _is_simulator_database(settings.database_path):
        print(
            f"DATABASE_PATH={settings.database_path} 是本地模拟器的数据库（模拟的群组和工单），"
            "不能用于正式运行：请把 DATABASE_PATH 指向另一个文件（默认 data/yimi.db）",
            file=sys.stderr,
        )
        return 2
    if not telegram:
        assert wecom is not None
        from bot.channels.wecom.app import run_wecom

        print(
            f"启动企业微信渠道：回调地址 http://{settings.web_host}:{settings.web_port}/wecom/callback",
            flush=True,
        )
        _log_local_failures(settings)
        _wait_to_lead(settings)
        asyncio.run(run_wecom(settings, wecom))
        return 0
    from bot.channels.telegram.app import build_application
    from bot.channels.telegram.connection import check_telegram

    code, problem = asyncio.run(check_telegram(settings))
    if code:  # one line on what is wrong and what to check, not a traceback
        print(problem, file=sys.stderr)
        return code
    _log_local_failures(settings)
    try:
        webhook = settings.webhook()
    except ValueError as exc:
        print(f"配置错误：{exc}", file=sys.stderr)
        return 2
    if wecom is None and (settings.database_dsn or webhook is not None):
        # Several processes share the work on PostgreSQL; by webhook, any process takes
        # updates (bot.channels.telegram.shared).
        from bot.channels.telegram.shared import run_shared

        run_shared(build_application(settings, shared=bool(settings.database_dsn)), settings)
        return 0
    _wait_to_lead(settings)
    app = build_application(settings, wecom=wecom)
    app.run_polling(allowed_updates=["message", "edited_message", "callback_query"])
    return 0


def _is_simulator_database(path: Path) -> bool:
    """Whether the file exists and the simulator marked it as its own."""
    if not path.exists():
        return False
    from bot.storage.db import Database

    async def check() -> bool:
        db = await Database.open(path)
        try:
            return await db.is_simulator()
        finally:
            await db.close()

    return asyncio.run(check())


def _run_simulator(settings: Settings) -> int:
    """No token: the local chat simulator (imported here only, never on Telegram)."""
    from bot.channels.simulator.server import run_simulator

    port = settings.sim_port
    print(
        f"未设置 BOT_TOKEN，启动本地聊天模拟器：http://127.0.0.1:{port}，"
        f"数据库 {settings.simulator_database_path}"
        "（要连接 Telegram，请在 .env 中设置 BOT_TOKEN=<BotFather 给的令牌>，参见 .env.example；"
        "微信 / 企业微信的模拟：yimi-bot simulate --wecom）",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_simulator(settings, port=port))
    return 0


def _simulate(settings: Settings, *, wecom: bool) -> int:
    """`yimi-bot simulate [--wecom]`: the simulator whatever is configured (Telegram-like chats,
    or firms in WeChat with teams in the WeCom app, the real WeCom edge on a fake WeCom)."""
    if not wecom:
        return _run_simulator(settings)
    from bot.channels.simulator.wecomsim import run_wecom_simulator, wecom_database_path

    port = settings.sim_port
    print(
        f"启动本地模拟器（微信 / 企业微信）：http://127.0.0.1:{port}，"
        f"数据库 {wecom_database_path(settings)}",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_wecom_simulator(settings, port=port))
    return 0


LOW_SPACE = 100 * 1024 * 1024  # bytes: below this `doctor` warns


def _doctor(settings: Settings) -> int:
    """The database's files, whether they can be written, and the free space (exit 1: a problem)."""
    from bot.storage.files import companions, free_bytes, unwritable

    path = settings.database_path
    print(f"数据库 / database: {path}")
    for f in companions(path):
        size = f"{f.stat().st_size:,} B" if f.exists() else "—"
        print(f"  {f.name}: {size}")
    free = free_bytes(path)
    problem = unwritable(path)
    ok = problem is None
    if free is None:
        print("  所在目录不存在（首次启动时创建）/ folder does not exist yet")
    else:
        print(f"  可用空间 / free space: {free / 1024 / 1024:,.0f} MB")
        if free < LOW_SPACE:
            ok = False
            print("  可用空间不足 100 MB：请清理磁盘 / less than 100 MB free: make room")
    print(f"  {problem}" if problem else "  可写 / writable: yes")
    checks = _checks(settings)
    for check in checks:
        print(check.render())
    ok = ok and all(check.ok for check in checks)
    print("全部通过 / all checks passed" if ok else "有检查未通过 / some checks failed")
    return 0 if ok else 1


def _checks(settings: Settings) -> list[Check]:
    """Every doctor check: the local ones, then the configured channels' (over the network)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot.channels.telegram.doctor import telegram_checks
    from bot.channels.wecom.doctor import wecom_checks
    from bot.doctor import Check, local_checks

    checks = [Check("配置 settings", True, "有效 / valid")]
    checks += local_checks(settings, datetime.now(ZoneInfo(settings.timezone)).date())
    try:
        telegram = bool(settings.token())
    except ValueError:
        telegram = False
    try:
        wecom = settings.wecom() is not None
    except ValueError:
        wecom = False

    async def remote() -> list[Check]:
        found = await telegram_checks(settings) if telegram else []
        return found + (await wecom_checks(settings) if wecom else [])

    return checks + asyncio.run(remote())


def _log_local_failures(settings: Settings) -> None:
    """At start: the failing cheap checks, one line each (they do not stop the start)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot.doctor import local_checks

    today = datetime.now(ZoneInfo(settings.timezone)).date()
    for check in local_checks(settings, today, integrity=False):
        if not check.ok:
            logging.getLogger(__name__).warning("doctor: %s", check.render())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="yimi-bot", description="一米团企业服务机器人")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (long polling)")
    simulate = sub.add_parser("simulate", help="the local chat simulator (browser page)")
    simulate.add_argument(
        "--wecom", action="store_true", help="firms in WeChat (微信客服), teams in the WeCom app"
    )
    sub.add_parser("doctor", help="check settings, channels, groups, holidays, database, outbox")
    backup = sub.add_parser("backup", help="online backup of the database (while the bot runs)")
    backup.add_argument("--out", type=Path, required=True)
    restore = sub.add_parser("restore", help="restore a backup (the bot must be stopped)")
    restore.add_argument("file", type=Path)
    move = sub.add_parser(
        "migrate-db", help="copy a SQLite database into an empty PostgreSQL one, checked"
    )
    move.add_argument("--from", dest="source", required=True, help="sqlite:///FILE")
    move.add_argument("--to", dest="target", required=True, help="postgresql://…")
    classify = sub.add_parser(
        "classify", help="classify sentences (arguments, or lines / JSON lines on stdin)"
    )
    classify.add_argument("texts", nargs="*", help="sentences to classify")
    classify.add_argument("--input", type=Path)
    train = sub.add_parser("train", help="train the learned model (needs the train extra)")
    train.add_argument("--out", type=Path, help="default: bot/classify/model.json")
    train.add_argument(
        "--search", action="store_true", help="choose C and the lexicon weight by CV first"
    )
    retrain = sub.add_parser(
        "retrain", help="train again with the corrections made in chat; shows changes first"
    )
    retrain.add_argument("--out", type=Path, help="default: bot/classify/model.json")
    retrain.add_argument("--apply", action="store_true", help="write the new model")
    evaluate = sub.add_parser("eval", help="evaluate on labelled JSON lines")
    evaluate.add_argument("file", type=Path)
    export = sub.add_parser("export", help="write the 问题台账 (.xlsx)")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--from", dest="start", help="first submission day (YYYY-MM-DD)")
    export.add_argument("--to", dest="end", help="last submission day (YYYY-MM-DD)")
    export.add_argument("--county", help="one county's tickets (its code in COUNTIES_FILE)")
    masking = export.add_mutually_exclusive_group()
    masking.add_argument(
        "--unmasked", action="store_true", help="full names, phones, credit codes (admins only)"
    )
    masking.add_argument("--masked", action="store_true", help="masked (the default)")
    adopt = sub.add_parser(
        "adopt-county", help="give what was stored before COUNTIES_FILE to one county"
    )
    adopt.add_argument("code", help="the county's code in COUNTIES_FILE")
    lexicon = sub.add_parser("lexicon", help="lexicon tools")
    lexicon.add_argument("action", choices=["suggest"])
    args = parser.parse_args(argv)

    if args.command in ("classify", "eval"):
        from bot.classify.evaluation import run_classify, run_eval

        if args.command == "eval":
            return run_eval(args.file, sys.stdout)
        if args.texts:
            return run_classify(args.texts, sys.stdout)
        if args.input is None:
            return run_classify(sys.stdin, sys.stdout)
        with args.input.open(encoding="utf-8") as stream:
            return run_classify(stream, sys.stdout)
    if args.command == "train":
        return commands.train(args.out, search=args.search)
    if args.command == "migrate-db":
        return admin.migrate_db(args.source, args.target)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        print(f"[失败 FAIL] 配置 settings：.env 中的设置无效 / invalid settings: {problems}")
        return 1 if args.command == "doctor" else 2
    setup_logging(settings)
    if args.command == "lexicon":
        return commands.suggest(settings)
    if args.command == "retrain":
        return commands.retrain(settings, args.out, apply=args.apply)
    if args.command == "doctor":
        return _doctor(settings)
    if args.command == "backup":
        return admin.backup(settings, args.out)
    if args.command == "restore":
        return admin.restore(settings, args.file)
    if args.command == "adopt-county":
        return admin.adopt_county_command(settings, args.code)
    if args.command == "simulate":
        return _simulate(settings, wecom=args.wecom)
    if args.command == "export":
        return admin.export(
            settings, args.out, args.start, args.end, masked=not args.unmasked, county=args.county
        )
    return _run(settings)


if __name__ == "__main__":
    sys.exit(main())
