"""yimi-bot run | doctor | backup | restore | classify | eval | lexicon suggest | export."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.config import Settings
from bot.logsetup import setup_logging

if TYPE_CHECKING:
    from bot.classify.evaluation import Correction
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
        "（要连接 Telegram，请在 .env 中设置 BOT_TOKEN=<BotFather 给的令牌>，参见 .env.example）",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_simulator(settings, port=port))
    return 0


NEEDS_TRAIN_EXTRA = "训练需要 train 依赖：pip install -e '.[train]' ({})"


def _corrections(settings: Settings) -> list[Correction]:
    """The routings that coordinators and firms corrected in chat."""
    from bot.classify.evaluation import Correction
    from bot.storage.db import Database

    async def read() -> list[Correction]:
        db = await Database.at(settings.database_path, settings.database_dsn)
        try:
            async with db.read() as repo:
                rows = await repo.tickets.corrections()
        finally:
            await db.close()
        return [Correction(text=t, predicted=p, final=f) for t, p, f in rows]

    return asyncio.run(read())


def _suggest(settings: Settings) -> int:
    from bot.classify.evaluation import run_suggest

    return run_suggest(_corrections(settings), sys.stdout)


def _retrain(settings: Settings, out: Path | None, *, apply: bool) -> int:
    """Train on the training sets plus the corrections; show what changes before writing."""
    from bot.classify import training
    from bot.classify.classifier import Classifier
    from bot.classify.evaluation import load_items
    from bot.classify.model import DEFAULT_MODEL

    extra = [
        training.Example(c.text, c.final, "corrections")
        for c in _corrections(settings)
        if c.final != c.predicted
    ]
    print(f"{len(extra)} corrections made in chat become training examples")
    current = Classifier()
    base = current.with_model(None)
    meta = current.model.meta if current.model else {}
    try:
        model = training.fit(
            base,
            training.load_sets() + extra,
            c=float(meta.get("c", training.DEFAULT_C)),
            lexicon_weight=float(meta.get("lexicon_weight", training.DEFAULT_LEXICON_WEIGHT)),
        )
    except ImportError as exc:
        print(NEEDS_TRAIN_EXTRA.format(exc), file=sys.stderr)
        return 2
    new = base.with_model(model)
    print("on the blind probes (reported, never tuned on):")
    training.compare(current, new, load_items(training.DATA / training.BLIND_SET), sys.stdout)
    if extra:
        print("on the corrections themselves:")
        items = [{"id": n, "text": e.text, "labels": [e.label]} for n, e in enumerate(extra, 1)]
        training.compare(current, new, items, sys.stdout)
    if not apply:
        print("nothing written: run again with --apply to write the model")
        return 0
    target = out or DEFAULT_MODEL
    training.dump(model, target)
    print(f"written: {target}")
    return 0


def _export(
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


def _train(out: Path | None, *, search: bool) -> int:
    from bot.classify import training
    from bot.classify.classifier import Classifier
    from bot.classify.model import DEFAULT_MODEL

    try:  # scikit-learn is imported only when fitting
        training.run_train(
            Classifier(model=None), sys.stdout, path=out or DEFAULT_MODEL, search=search
        )
    except ImportError as exc:
        print(NEEDS_TRAIN_EXTRA.format(exc), file=sys.stderr)
        return 2
    return 0


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


def _backup(settings: Settings, out: Path) -> int:
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


def _restore(settings: Settings, source: Path) -> int:
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


def _migrate_db(source: str, target: str) -> int:
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="yimi-bot", description="一米团企业服务机器人")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (long polling)")
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
        return _train(args.out, search=args.search)
    if args.command == "migrate-db":
        return _migrate_db(args.source, args.target)
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
        return _suggest(settings)
    if args.command == "retrain":
        return _retrain(settings, args.out, apply=args.apply)
    if args.command == "doctor":
        return _doctor(settings)
    if args.command == "backup":
        return _backup(settings, args.out)
    if args.command == "restore":
        return _restore(settings, args.file)
    if args.command == "export":
        return _export(
            settings, args.out, args.start, args.end, masked=not args.unmasked, county=args.county
        )
    return _run(settings)


if __name__ == "__main__":
    sys.exit(main())
