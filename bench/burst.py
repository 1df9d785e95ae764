"""Burst benchmark: N firms report and confirm at once against the fake Bot API (real HTTP).

    .venv/bin/python bench/burst.py [--firms 500] [--quick] [--kill] [--postgres]

The real Application polls FakeBotAPI on 127.0.0.1 (100 ms per call, Telegram's limits
enforced: 30 messages/s overall, 20/min per group) and the real delivery loop sends the outbox.
Registrations and bindings are seeded into the database; the burst itself goes through
Telegram updates. Printed: time until every firm has its receipt and every team group shows
every ticket number (in a card or a batch card) against the bound the limits impose, receipts
and numbers lost or duplicated, peak RSS; then messages/s of the bot against a bare PTB echo
bot on the same fake, no latency, limits off. ``--kill`` runs the bot as its own process
(`python -m bot run`), SIGKILLs it mid-burst, starts it again on the same database and checks
that nothing is lost or sent twice. ``--postgres`` runs it all on a throwaway PostgreSQL server
(bot.storage.pgserver) instead of SQLite files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import re
import resource
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.channels.simulator.fakeapi import FakeBotAPI  # noqa: E402
from bot.channels.telegram.app import build_application  # noqa: E402
from bot.classify.classifier import DOMAIN_IDS, get_classifier  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core.ids import TELEGRAM, qualify, raw_of  # noqa: E402
from bot.core.ports import SystemClock  # noqa: E402
from bot.storage import pgserver  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.storage.lease import LEASE_SECONDS  # noqa: E402
from bot.storage.sql import PostgresConnection  # noqa: E402

TOKEN = "700000002:BURST-BENCH-TOKEN"
ADMIN = 9000
FIRM0 = 100_000
TEAMS = list(DOMAIN_IDS)
GROUP0 = -5000
COORD_GROUP = -5999
NUMBER = re.compile(r"YM-\d{8}-\d{4}")
LATENCY = 0.1
GLOBAL_RATE = 30.0  # messages per second, all chats
GROUP_RATE = 20.0 / 60.0  # messages per second in one group
BATCH = 100  # inline buttons per message: tickets one batch card may list


def tg(raw: int) -> str:
    """A Telegram id as the database keeps it."""
    return qualify(TELEGRAM, raw)


def team_texts() -> dict[str, list[str]]:
    """Report texts the classifier routes straight to each team (from the held-out probe)."""
    classifier = get_classifier()
    found: dict[str, list[str]] = defaultdict(list)
    for line in (ROOT / "tests/data/heldout_probe.jsonl").read_text().splitlines():
        item = json.loads(line)
        result = classifier.classify(item["text"])
        if result.routable and result.primary in TEAMS and result.primary == item["labels"][0]:
            found[result.primary].append(item["text"])
    missing = [t for t in TEAMS if not found[t]]
    if missing:
        raise SystemExit(f"no routable probe text for {missing}")
    return found


@dataclass
class Watch:
    """What the firms and groups see, from the fake's events (edits applied)."""

    api: FakeBotAPI
    confirm: bool = True
    pressed: set[int] = field(default_factory=set)
    receipts: Counter[int] = field(default_factory=Counter)
    receipt_numbers: dict[int, str] = field(default_factory=dict)
    proposals: set[int] = field(default_factory=set)
    group_texts: dict[int, dict[int, str]] = field(default_factory=lambda: defaultdict(dict))
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, event: Any) -> None:
        message = event.message
        if event.kind not in ("message", "edit") or not message or event.chat_id is None:
            return
        if message.get("from", {}).get("id") != self.api.bot_id:
            return
        chat, text = int(event.chat_id), str(message.get("text") or "")
        if chat < 0:
            self.group_texts[chat][int(message["message_id"])] = text
        elif event.kind == "message" and "工单编号" in text:
            self.receipts[chat] += 1
            found = NUMBER.search(text)
            if found:
                self.receipt_numbers[chat] = found.group()
        elif event.kind == "message" and chat not in self.pressed:
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == "✅ 确认提交":
                        self.proposals.add(chat)
                        if self.confirm:
                            self.pressed.add(chat)
                            self.api.press_button(
                                chat, chat, message["message_id"], button["callback_data"]
                            )
        self.changed.set()

    def numbers_in(self, group: int) -> Counter[str]:
        """Each ticket number's occurrences in the group's messages as they show now."""
        found: Counter[str] = Counter()
        for text in self.group_texts[group].values():
            # A card's own number leads each entry (可能相关 may name other tickets after it).
            found.update({m[0] for entry in text.split("\n\n") if (m := NUMBER.findall(entry))})
        return found

    def done(self, firms: list[int]) -> bool:
        """Every firm has a receipt, and its number shows in some team group."""
        if len(self.receipt_numbers) < len(firms):
            return False
        shown: set[str] = set()
        for group in self.group_texts:
            shown |= set(self.numbers_in(group))
        return all(self.receipt_numbers.get(f) in shown for f in firms)


class Bot:
    """The real bot polling the fake, as bot/channels/simulator/server.py runs it (run_polling's steps)."""

    def __init__(
        self, settings: Settings, *, rate_limit: bool = True, shared: bool = False
    ) -> None:
        self.app = build_application(settings, rate_limit=rate_limit, shared=shared)
        self.task: asyncio.Task[None] | None = None
        self.stop_event = asyncio.Event()

    async def start(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._run(ready))
        await ready

    async def _run(self, ready: asyncio.Future[None]) -> None:
        app = self.app
        await app.initialize()
        try:
            if app.post_init is not None:
                await app.post_init(app)
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0.0, timeout=10)
            await app.start()
            ready.set_result(None)
            await self.stop_event.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise
        finally:
            if self.stop_event.is_set():  # killed: no graceful shutdown
                await self._shutdown()

    async def _shutdown(self) -> None:
        app = self.app
        with contextlib.suppress(Exception):
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            if app.post_shutdown is not None:
                await app.post_shutdown(app)
            await app.shutdown()

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await self.task


class ProcessBot:
    """The bot as a separate `python -m bot run` process, so `kill` is a real SIGKILL."""

    def __init__(
        self,
        api: FakeBotAPI,
        db: Path,
        log: Path | None = None,
        *,
        webhook: bool = False,
        limits: bool = True,
    ) -> None:
        self.api = api
        self.db = db
        self.limits = limits  # False: the bot's own pacing off (TELEGRAM_RATE_LIMIT)
        self.log = log  # its standard error at INFO (else nothing is kept)
        self.proc: asyncio.subprocess.Process | None = None
        # By webhook: its own port behind the fake's "load balancer" (api.webhook_urls).
        self.port = free_port() if webhook else None
        if self.port is not None:
            api.webhook_urls.append(self.webhook_url)

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/webhook"

    async def start(self, *, wait_polling: bool = True) -> None:
        polls = len(self.api.calls_to("getUpdates"))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "BOT_TOKEN": self.api.token,
            "TELEGRAM_BASE_URL": self.api.base_url,
            "TELEGRAM_BASE_FILE_URL": self.api.base_file_url,
            "DATABASE_PATH": str(self.db),
            **({"DATABASE_URL": url} if (url := url_for(self.db)) else {}),
            "ADMIN_IDS": str(ADMIN),
            "OUTBOX_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "INFO" if self.log else "ERROR",
            "TELEGRAM_RATE_LIMIT": "true" if self.limits else "false",
        }
        if self.port is not None:
            env |= {
                "TELEGRAM_WEBHOOK_URL": self.webhook_url,  # the balancer's, in production
                "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "WEB_PORT": str(self.port),
            }
        with open(self.log or os.devnull, "ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 120
        while wait_polling and len(self.api.calls_to("getUpdates")) <= polls:  # polling began
            if self.port is not None and self.api.webhook:
                break  # by webhook: a process leads once it has set the webhook
            assert self.proc.returncode is None, f"the bot exited ({self.proc.returncode})"
            assert time.monotonic() < deadline, "the bot did not start polling in 120 s"
            await asyncio.sleep(0.05)

    async def started(self, commands: int) -> None:
        """Wait until the fake has seen `commands` setMyCommands calls (each bot makes two
        once its services are up)."""
        deadline = time.monotonic() + 120
        while len(self.api.calls_to("setMyCommands")) < commands:
            assert self.proc is not None and self.proc.returncode is None, "the bot exited"
            assert time.monotonic() < deadline, "the bots did not start in 120 s"
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; whatever was in flight is cut off."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self, within: float = 30.0) -> None:
        """SIGTERM; a process that has not stopped `within` seconds is killed (its log then
        lacks the last line, which the multi-process test asserts)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            print(f"bot process {self.proc.pid} did not stop within {within:.0f} s: killed")
            await self.kill()


WEBHOOK_SECRET = "burst-bench-webhook-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --postgres: one throwaway PostgreSQL server; each database file name gets a database there.
PG_SERVER: pgserver.Server | None = None
_PG_DATABASES: dict[Path, str] = {}


def url_for(db: Path) -> str | None:
    """The PostgreSQL URL standing in for the file `db` (None: SQLite at `db`)."""
    if PG_SERVER is None:
        return None
    if db not in _PG_DATABASES:
        name = "bench_" + re.sub(r"\W", "_", db.stem).lower() + f"_{len(_PG_DATABASES)}"
        with psycopg.connect(PG_SERVER.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        _PG_DATABASES[db] = PG_SERVER.url(name)
    return _PG_DATABASES[db]


def settings_for(api: FakeBotAPI, db: Path) -> Settings:
    url = url_for(db)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr(url) if url else None,
        bot_token=SecretStr(api.token),
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
        database_path=db,
        admin_ids=[ADMIN],
        outbox_poll_seconds=0.2,
        log_level="WARNING",
    )


async def seed(db_path: Path, firms: list[int]) -> None:
    """Registered firms, bound groups: straight into the database (setup is not measured)."""
    clock = SystemClock("Asia/Shanghai")
    db = await Database.at(db_path, url_for(db_path))
    now = clock.now()
    async with db.tx() as repo:
        for i, team in enumerate([*TEAMS, "coordinator"]):
            chat = COORD_GROUP if team == "coordinator" else GROUP0 - i
            await repo.users.bind(tg(chat), team, f"{team} 一米团", tg(ADMIN), now)
        for n, firm in enumerate(firms):
            await repo.users.upsert_user(tg(firm), f"企业{n}", None, now)
            enterprise = await repo.users.insert_enterprise(
                f"压测企业{n:04d}有限公司", None, "城关镇", now
            )
            await repo.users.update_user(
                tg(firm),
                now,
                enterprise_id=enterprise,
                contact_name=f"张{n:04d}",
                phone=f"138{n:08d}",
                private_started=1,
                reg_step=None,
            )
    await db.close()


def world(latency: float, limits: bool, firms: list[int]) -> FakeBotAPI:
    api = FakeBotAPI(token=TOKEN, latency=latency, enforce_limits=limits)
    api.add_user(ADMIN, "管理员")
    for firm in firms:
        api.add_user(firm, f"企业{firm - FIRM0}")
    for i, team in enumerate([*TEAMS, "coordinator"]):
        chat = COORD_GROUP if team == "coordinator" else GROUP0 - i
        api.add_group(chat, f"{team} 一米团", [ADMIN], admins=[ADMIN])
    return api


def bound(n: int, per_group: dict[int, int]) -> tuple[float, str]:
    """The least time Telegram's limits allow for what must be sent."""
    group_msgs = {g: math.ceil(k / BATCH) for g, k in per_group.items()}
    total = 2 * n + sum(group_msgs.values())
    global_part = total / GLOBAL_RATE
    # A group takes 20 at once, then one per 3 s.
    group_part = max((max(0, m - 20) / GROUP_RATE for m in group_msgs.values()), default=0.0)
    seconds = max(global_part, group_part) + 4 * LATENCY
    formula = (
        f"T = max((2·N + Σg ceil(n_g/{BATCH})) / {GLOBAL_RATE:.0f}/s, "
        f"max_g (m_g − 20)·3 s) + 4·latency = "
        f"({2 * n} + {sum(group_msgs.values())}) / 30 + 4×{LATENCY:.1f} = {seconds:.1f} s"
    )
    return seconds, formula


async def outbox_drained(db_path: Path, deadline: float) -> None:
    """Wait (until `deadline`) for the running bot to have nothing left to send."""
    url = url_for(db_path)
    while time.monotonic() < deadline:
        if url:
            pg = await PostgresConnection.open(url)
            try:
                rows = await pg.execute_fetchall(
                    "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'waiting')"
                )
            finally:
                await pg.close()
            left = int(rows[0][0])
        else:
            conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
            try:
                (left,) = conn.execute(
                    "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'waiting')"
                ).fetchone()
            finally:
                conn.close()
        if not left:
            return
        await asyncio.sleep(0.2)


async def burst(
    n: int,
    tmp: Path,
    kill_after: int | None = None,
    *,
    standby: bool = False,
    processes: int = 1,
    webhook: bool = False,
) -> dict[str, Any]:
    """`standby` (PostgreSQL only): a second process waits beside the first; the kill leaves
    the standby to take over instead of a restart. `processes` > 1 (PostgreSQL only): that
    many `yimi-bot run` processes share the work; the kill takes out the one polling and the
    others carry on (one of them polls next), no restart. `webhook`: updates come by webhook,
    the fake posting them round the processes as a load balancer would."""
    firms = [FIRM0 + i for i in range(n)]
    texts = team_texts()
    db_path = tmp / "burst.db"
    await seed(db_path, firms)
    api = world(0.0, True, firms)
    await api.start()
    watch = Watch(api)
    api.subscribe(watch)
    if processes > 1 and not url_for(db_path):
        raise SystemExit("--processes needs --postgres")
    bot: Bot | ProcessBot = (
        ProcessBot(api, db_path, webhook=webhook)
        if kill_after is not None or processes > 1 or webhook
        else Bot(settings_for(api, db_path), shared=url_for(db_path) is not None)
    )
    await bot.start()
    others = [
        ProcessBot(api, db_path, tmp / f"bot{k}.log", webhook=webhook) for k in range(1, processes)
    ]
    for other in others:
        await other.start(wait_polling=False)
    for other in others:
        await other.started(2 * processes)  # each sets the command menus once up
    second: ProcessBot | None = None
    if standby:
        assert kill_after is not None and url_for(db_path), "a standby needs --postgres --kill"
        second = ProcessBot(api, db_path)
        await second.start(wait_polling=False)
        await asyncio.sleep(3.0)  # up, and waiting for the lead
    takeover: float | None = None
    api.latency = LATENCY
    expected_team: dict[int, str] = {}
    start = time.monotonic()
    for i, firm in enumerate(firms):
        team = TEAMS[i % len(TEAMS)]
        expected_team[firm] = team
        pool = texts[team]
        api.send_text(firm, firm, pool[(i // len(TEAMS)) % len(pool)])
    restarted = False
    killed_at = None
    deadline = start + 600
    while not watch.done(firms) and time.monotonic() < deadline:
        if kill_after is not None and not restarted and len(watch.receipts) >= kill_after:
            assert isinstance(bot, ProcessBot)
            await bot.kill()
            killed_at = time.monotonic()
            if others:  # another one polls (or sets the webhook) next; they all carry on
                bot = others.pop(0)
                leads = "setWebhook" if webhook else "getUpdates"
                while not [c for c in api.calls_to(leads) if c.time > killed_at]:
                    assert time.monotonic() < killed_at + 60, "no process took the lead"
                    await asyncio.sleep(0.05)
                polls = [c.time for c in api.calls_to(leads) if c.time > killed_at]
                takeover = min(polls) - killed_at
            elif second is not None:  # the standby takes the lead by itself
                bot = second
                while not [c for c in api.calls if c.time > killed_at]:
                    await asyncio.sleep(0.05)
                # Its first Bot API call (getMe as it starts the application): it leads.
                takeover = min(c.time for c in api.calls if c.time > killed_at) - killed_at
            else:
                bot = ProcessBot(api, db_path)
                await bot.start()
            restarted = True
        watch.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.changed.wait(), 1.0)
    elapsed = time.monotonic() - start
    # Let stragglers (duplicates) show before counting, and what the burst caused beyond the
    # receipts and cards (the coordinators' alert of related reports) leave.
    await asyncio.sleep(1.0)
    await outbox_drained(db_path, time.monotonic() + 15.0)
    await bot.stop()
    for other in others:
        await other.stop()
    db = await Database.at(db_path, url_for(db_path))
    async with db.read() as repo:
        tickets = await repo.tickets.all_tickets()
        counts = await repo.outbox.outbox_counts()
        bindings = {b.team_id: int(raw_of(b.chat_id)) for b in await repo.users.list_bindings()}
    await db.close()
    await api.stop()
    per_group: dict[int, int] = Counter(bindings[t.team_id or ""] for t in tickets)
    seconds, formula = bound(n, per_group)
    per_firm = Counter(t.reporter_id for t in tickets)
    lost_receipts = sum(1 for f in firms if watch.receipts[f] == 0)
    dup_receipts = sum(watch.receipts[f] - 1 for f in firms if watch.receipts[f] > 1)
    lost_cards = dup_cards = misrouted = 0
    for t in tickets:
        group = bindings.get(t.team_id or "")
        seen = watch.numbers_in(group)[t.number or ""] if group is not None else 0
        lost_cards += seen == 0
        dup_cards += max(0, seen - 1)
        misrouted += t.team_id != expected_team.get(int(raw_of(t.reporter_id)))
    group_messages = sum(len(watch.group_texts[g]) for g in watch.group_texts)
    shares = []  # what each process that stopped cleanly did (its last log line)
    for k in range(1, processes):
        found = re.findall(
            r"(\d+) stored updates handled here, (\d+) messages sent",
            (tmp / f"bot{k}.log").read_text(),
        )
        shares.append((int(found[-1][0]), int(found[-1][1])) if found else None)
    return {
        "firms": n,
        "shares": shares,
        "webhook_posts": Counter(status for _, _, status in api.webhook_posts),
        "elapsed": elapsed,
        "bound": seconds,
        "formula": formula,
        "tickets": len(tickets),
        "firms_with_2_tickets": sum(1 for c in per_firm.values() if c > 1),
        "lost_receipts": lost_receipts,
        "dup_receipts": dup_receipts,
        "lost_cards": lost_cards,
        "dup_cards": dup_cards,
        "misrouted": misrouted,
        "group_messages": group_messages,
        "outbox": counts,
        "restarted": restarted,
        "takeover_seconds": takeover,
        # Sends the fake accepted in the last round trip before the kill: the only messages whose
        # acceptance the bot may not have recorded, so the most a restart can send twice.
        "in_flight_at_kill": (
            sum(
                1
                for c in api.calls
                if c.method.lower().startswith("send")
                and c.status == 200
                and killed_at - LATENCY - 0.25 <= c.time <= killed_at
            )
            if killed_at is not None
            else 0
        ),
        "429s": sum(1 for c in api.calls if c.status == 429),
        "calls": len(api.calls),
    }


async def throughput_ours(n: int, tmp: Path, *, rate_limit: bool) -> float:
    """Reports per second answered by our bot (draft proposals), no latency, fake's limits off.

    With `rate_limit` the bot's own limiter keeps it under Telegram's 30 messages/s, as in
    production; without it the figure is the bot's processing capacity.
    """
    firms = [FIRM0 + i for i in range(n)]
    db_path = tmp / f"throughput-{rate_limit}.db"
    await seed(db_path, firms)
    api = world(0.0, False, firms)
    await api.start()
    watch = Watch(api, confirm=False)
    api.subscribe(watch)
    settings = settings_for(api, db_path)
    bot = Bot(settings, rate_limit=rate_limit, shared=url_for(db_path) is not None)
    await bot.start()
    text = team_texts()["tech_industry"][0]
    start = time.monotonic()
    for firm in firms:
        api.send_text(firm, firm, text)
    while len(watch.proposals) < n:
        watch.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.changed.wait(), 1.0)
    rate = n / (time.monotonic() - start)
    await bot.stop()
    await api.stop()
    return rate


async def throughput_processes(n: int, tmp: Path, processes: int) -> float:
    """The same as throughput_ours with `processes` `yimi-bot run` processes on one
    PostgreSQL database (each its own process, the bot's pacing off)."""
    firms = [FIRM0 + i for i in range(n)]
    db_path = tmp / f"throughput-{processes}p.db"
    await seed(db_path, firms)
    api = world(0.0, False, firms)
    await api.start()
    watch = Watch(api, confirm=False)
    api.subscribe(watch)
    bots = [ProcessBot(api, db_path, limits=False) for _ in range(processes)]
    await bots[0].start()
    for other in bots[1:]:
        await other.start(wait_polling=False)
    for other in bots[1:]:
        await other.started(2 * processes)
    text = team_texts()["tech_industry"][0]
    start = time.monotonic()
    for firm in firms:
        api.send_text(firm, firm, text)
    while len(watch.proposals) < n:
        watch.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.changed.wait(), 1.0)
    rate = n / (time.monotonic() - start)
    for bot in bots:
        await bot.stop()
    await api.stop()
    return rate


async def throughput_echo(n: int) -> float:
    """The same messages answered by a bare python-telegram-bot echo bot on the same fake."""
    firms = [FIRM0 + i for i in range(n)]
    api = world(0.0, False, firms)
    await api.start()
    replies: Counter[int] = Counter()
    changed = asyncio.Event()

    def on_event(event: Any) -> None:
        if event.kind == "message" and event.message["from"]["id"] == api.bot_id:
            replies[int(event.chat_id)] += 1
            changed.set()

    api.subscribe(on_event)

    async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message is not None and update.effective_message.text:
            await update.effective_message.reply_text(update.effective_message.text)

    app = (
        ApplicationBuilder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=10)
        await app.start()
        start = time.monotonic()
        for firm in firms:
            api.send_text(firm, firm, "厂里变压器老是跳闸")
        while len(replies) < n:
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 1.0)
        rate = n / (time.monotonic() - start)
        await app.updater.stop()
        await app.stop()
    await api.stop()
    return rate


def table(rows: list[tuple[str, str, str]]) -> str:
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="100 firms, short throughput run")
    parser.add_argument("--kill", action="store_true", help="kill the bot mid-burst and restart")
    parser.add_argument(
        "--postgres", action="store_true", help="on a throwaway PostgreSQL server, not SQLite"
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        help="with --postgres --kill: a second process takes over instead of a restart",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="with --postgres: N processes share the work, side by side with one process on "
        "SQLite and on PostgreSQL in the same run (--kill: also with the poller SIGKILLed)",
    )
    parser.add_argument(
        "--webhook", action="store_true", help="with --processes: updates by webhook"
    )
    args = parser.parse_args()
    global PG_SERVER
    if args.processes > 1 and not args.postgres:
        parser.error("--processes needs --postgres")
    if args.postgres:
        PG_SERVER = pgserver.start(Path(tempfile.mkdtemp(prefix="yimi-bench-pg-")) / "pg")
    try:
        await (_side_by_side(args) if args.processes > 1 else _main(args))
    finally:
        if PG_SERVER is not None:
            PG_SERVER.stop()


async def _side_by_side(args: argparse.Namespace) -> None:
    """One process on SQLite, one on PostgreSQL, N on PostgreSQL (and N with the poller
    killed), the same burst and the same throughput runs, in one run."""
    global PG_SERVER
    server = PG_SERVER
    n, k, p = (100 if args.quick else args.firms), (200 if args.quick else 1000), args.processes
    logging.basicConfig(level=logging.ERROR)
    columns: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        runs: list[tuple[str, bool, int, int | None]] = [
            ("1 process, SQLite", False, 1, None),
            ("1 process, PostgreSQL", True, 1, None),
            (f"{p} processes, PostgreSQL", True, p, None),
        ]
        if args.kill:
            runs.append((f"{p} processes, poller SIGKILLed", True, p, n // 3))
        for index, (name, postgres, processes, kill) in enumerate(runs):
            PG_SERVER = server if postgres else None
            where = base / f"burst{index}"
            where.mkdir()
            result = await burst(
                n, where, kill_after=kill, processes=processes, webhook=args.webhook
            )
            columns.append((name, result))
            print(f"{name}: {result['elapsed']:.1f} s, bound {result['bound']:.1f} s", flush=True)
        echo = await throughput_echo(k)
        PG_SERVER = None
        sqlite_rate = await throughput_ours(k, base, rate_limit=False)
        PG_SERVER = server
        pg_rate = await throughput_ours(k, base, rate_limit=False)
        one_process = await throughput_processes(k, base, 1)
        many = await throughput_processes(k, base, p)
    PG_SERVER = server
    header = ("measure", *(name for name, _ in columns), "target")
    rows: list[tuple[str, ...]] = [header]

    def row(label: str, cell: Any, target: str = "") -> None:
        rows.append((label, *(cell(r) for _, r in columns), target))

    row("time until all receipts + all cards", lambda r: f"{r['elapsed']:.1f} s")
    row("bound from the rate limits", lambda r: f"{r['bound']:.1f} s")
    row("ratio to the bound", lambda r: f"{r['elapsed'] / r['bound']:.2f}", "≤ 1.2")
    row(
        "tickets (firms with 2 tickets)",
        lambda r: f"{r['tickets']} ({r['firms_with_2_tickets']})",
        f"{n} (0)",
    )
    row("receipts lost / duplicated", lambda r: f"{r['lost_receipts']} / {r['dup_receipts']}")
    row("numbers lost / duplicated in groups", lambda r: f"{r['lost_cards']} / {r['dup_cards']}")
    row("sends in flight at the kill", lambda r: str(r["in_flight_at_kill"]))
    row(
        "another process polling after the kill",
        lambda r: "-" if r["takeover_seconds"] is None else f"{r['takeover_seconds']:.1f} s",
    )
    row(
        "stored updates handled / sent by the survivors",
        lambda r: " ".join(f"{s[0]}/{s[1]}" for s in r["shares"] if s) or "-",
    )
    row("429 answers from the fake", lambda r: str(r["429s"]))
    width = [max(len(r[i]) for r in rows) for i in range(len(header))]
    print("\n".join("  ".join(c.ljust(width[i]) for i, c in enumerate(r)).rstrip() for r in rows))
    print(f"\nbound: {columns[0][1]['formula']}")
    print(f"\nthroughput, {k} reports, no latency, fake's limits and the bot's pacing off:")
    print(f"  bare PTB echo bot, same fake, same run   {echo:.0f} msg/s")
    print(
        f"  1 process, SQLite (in the bench process) {sqlite_rate:.0f} msg/s, {sqlite_rate / echo:.2f}x"
    )
    print(f"  1 process, PostgreSQL (in the bench)     {pg_rate:.0f} msg/s, {pg_rate / echo:.2f}x")
    print(
        f"  1 process, PostgreSQL (its own process)  {one_process:.0f} msg/s, {one_process / echo:.2f}x"
    )
    print(f"  {p} processes, PostgreSQL                  {many:.0f} msg/s, {many / echo:.2f}x")


async def _main(args: argparse.Namespace) -> None:
    n = 100 if args.quick else args.firms
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        result = await burst(
            n, Path(tmp), kill_after=n // 3 if args.kill else None, standby=args.standby
        )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        k = 200 if args.quick else 1000
        echo = await throughput_echo(k)
        ours = await throughput_ours(k, Path(tmp), rate_limit=False)
        limited = await throughput_ours(k, Path(tmp), rate_limit=True)
    ratio = result["elapsed"] / result["bound"]
    rows = [
        ("measure", "value", "target"),
        ("firms reporting at once", str(n), ""),
        ("database", "PostgreSQL" if PG_SERVER else "SQLite", ""),
        ("killed and restarted mid-burst", "yes" if result["restarted"] else "no", ""),
        ("  sends in flight at the kill", str(result["in_flight_at_kill"]), ""),
        (
            "  standby leading after the kill (its first Bot API call)",
            "-" if result["takeover_seconds"] is None else f"{result['takeover_seconds']:.1f} s",
            f"≤ {LEASE_SECONDS:.0f} s",
        ),
        ("time until all receipts + all cards", f"{result['elapsed']:.1f} s", ""),
        ("bound from the rate limits", f"{result['bound']:.1f} s", ""),
        ("ratio to the bound", f"{ratio:.2f}", "≤ 1.2"),
        (
            "tickets (firms with 2 tickets)",
            f"{result['tickets']} ({result['firms_with_2_tickets']})",
            f"{n} (0)",
        ),
        (
            "receipts lost / duplicated",
            f"{result['lost_receipts']} / {result['dup_receipts']}",
            "0 / 0",
        ),
        (
            "ticket numbers lost / duplicated in groups",
            f"{result['lost_cards']} / {result['dup_cards']}",
            "0 / 0",
        ),
        ("tickets routed to another team", str(result["misrouted"]), "0"),
        ("messages in the 8 team groups", str(result["group_messages"]), ""),
        ("429 answers from the fake", str(result["429s"]), ""),
        (
            "outbox rows by status",
            " ".join(f"{k}={v}" for k, v in sorted(result["outbox"].items())),
            "all sent",
        ),
        ("peak RSS (bot + fake + driver)", f"{rss:.0f} MB", ""),
        (f"throughput, {k} reports, no latency, no limiter", f"{ours:.0f} msg/s", ""),
        ("  the same with our limiter on", f"{limited:.0f} msg/s", "Telegram: 30/s"),
        ("bare PTB echo bot, same fake, same run", f"{echo:.0f} msg/s", ""),
        ("ours / echo", f"{ours / echo:.2f}", "≥ 0.5"),
    ]
    print(table(rows))
    print(f"\nbound: {result['formula']}")


if __name__ == "__main__":
    asyncio.run(main())
