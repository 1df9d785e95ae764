"""Benchmark: a province's deployment, 1,000,000 tickets across 20 counties, on SQLite and on
PostgreSQL, against a 1,000-ticket database of the same shape measured in the same run.

Run: ``.venv/bin/python bench/province.py [--tickets 1000000] [--small 1000] [--rounds 200]
[--backend both|sqlite|postgres]``. Prints figures (not a test). For each backend two databases
are seeded with bulk inserts (firms per county, every team, every state, the event log, merged
tickets, two years of submissions; PostgreSQL through COPY): the small one is the baseline.
Then, rounds taken in alternation on the two databases:

- the handling of one update through the real Workflow (services as ``yimi-bot run`` opens
  them, the real classifier): a firm's report, its confirmation, a member's claim, the 办结
  press and the result text; the delivery loop drains the outbox between rounds (not timed);
- ``/stats year`` as a coordinator's group of one county and the province's leaders' group
  send it (Reports.stats_for: every county side by side after the whole);
- the ledger (.xlsx) of one county-month as a coordinators' group exports it (Reports.export_for).

Database files and the throwaway server live in /tmp and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from ledger import NOW, generate
from pydantic import SecretStr
from seed import with_facts

from bot.classify.classifier import get_classifier
from bot.config import Settings
from bot.core.models import TEAM_NAMES, TicketState
from bot.core.ports import Actor, Incoming
from bot.delivery.outbox import ChannelLimits
from bot.render.keyboards import Reply, decode
from bot.services import Services, close_services, open_services
from bot.storage import pgserver
from bot.storage.db import Database
from bot.storage.rows import TICKET_COLUMNS, model_value, to_db, ts
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy

CHANNEL = "bench"
# Twenty counties of Henan (names only: the towns are made up).
COUNTY_NAMES = (
    ("weishi", "尉氏县", "WS"),
    ("qixian", "杞县", "QX"),
    ("tongxu", "通许县", "TX"),
    ("lankao", "兰考县", "LK"),
    ("zhongmou", "中牟县", "ZM"),
    ("xinzheng", "新郑市", "XZ"),
    ("dengfeng", "登封市", "DF"),
    ("gongyi", "巩义市", "GY"),
    ("xingyang", "荥阳市", "XY"),
    ("xinmi", "新密市", "XM"),
    ("changyuan", "长垣市", "CY"),
    ("huaxian", "滑县", "HX"),
    ("linzhou", "林州市", "LZ"),
    ("ruzhou", "汝州市", "RZ"),
    ("yongcheng", "永城市", "YC"),
    ("xiangcheng", "项城市", "XC"),
    ("gushi", "固始县", "GS"),
    ("dengzhou", "邓州市", "DZ"),
    ("luyi", "鹿邑县", "LY"),
    ("xincai", "新蔡县", "XCA"),
)
TOWN_KINDS = ("城关镇", "产业集聚区", "东区街道", "西区街道", "北关镇", "南曹乡")
TEAMS = list(TEAM_NAMES)
# Reports the classifier places in a team (checked at every round: the claim needs a team).
REPORTS = (
    "厂里变压器老是跳闸，生产线停了",
    "想申请一笔流动资金贷款，银行审批太慢",
    "排污许可证快到期了，续办需要什么材料",
    "招工难，急需对接一批技能工人",
    "项目用地指标一直没有落实",
)
POOL = 20_000  # generated tickets whose clock facts are computed; the rest repeat them


@dataclass
class Shape:
    """Firms per county and the other proportions of a database of `tickets` tickets."""

    tickets: int
    counties: int

    @property
    def firms(self) -> int:  # per county: about ten tickets a firm over the two years
        return max(5, min(5000, self.tickets // self.counties // 10))


def counties_file(folder: Path, n: int) -> Path:
    lines = []
    for code, name, prefix in COUNTY_NAMES[:n]:
        towns = ", ".join(f'"{name[:2]}{kind}"' for kind in TOWN_KINDS)
        lines += ["[[county]]", f'code = "{code}"', f'name = "{name}"', f'prefix = "{prefix}"']
        lines += [f"towns = [{towns}]", ""]
    path = folder / "counties.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# -- seeding -----------------------------------------------------------------------------------


def ticket_rows(
    shape: Shape, settings: Settings, policy: DeadlinePolicy, chunk: int = 50_000
) -> Iterator[tuple[list[list[Any]], list[list[Any]]]]:
    """(ticket rows, event rows) in chunks, ids growing with submission time, each county's
    tickets from its own firms, 2 % merged into an earlier ticket of their county."""
    rng = random.Random(11)
    counties = settings.counties().all
    pool = with_facts(generate(min(shape.tickets, POOL), 7, policy), policy)
    columns = ["id", *TICKET_COLUMNS]
    index = {c: i for i, c in enumerate(columns)}
    templates = [
        [to_db("id", t.id)] + [to_db(c, model_value(t, c, NOW)) for c in columns[1:]] for t in pool
    ]
    repeat = -(-shape.tickets // len(pool))
    serial: dict[tuple[str, str], int] = {}
    last_of_county: dict[str, int] = {}
    tickets: list[list[Any]] = []
    events: list[list[Any]] = []
    new_id = 0
    for template in templates:
        for _ in range(repeat):
            new_id += 1
            if new_id > shape.tickets:
                break
            county = counties[new_id % len(counties)]
            row = list(template)
            day = str(row[index["submitted_at"]])[:10].replace("-", "")
            key = (county.code, day)
            serial[key] = serial.get(key, 0) + 1
            firm = firm_id(counties.index(county), rng.randrange(shape.firms), shape)
            row[index["id"]] = new_id
            row[index["number"]] = f"YM-{county.prefix}-{day}-{serial[key]:04d}"
            row[index["county"]] = county.code
            row[index["enterprise_id"]] = firm
            row[index["reporter_id"]] = f"{CHANNEL}:firm-{firm}"
            row[index["channel"]] = CHANNEL
            main = last_of_county.get(county.code)
            if main is not None and row[index["state"]] != "cancelled" and rng.random() < 0.02:
                row[index["state"]] = TicketState.MERGED.value
                row[index["merged_into"]] = main
                row[index["team_id"]] = tickets_team(tickets, main, row[index["team_id"]])
            else:
                last_of_county[county.code] = new_id
            tickets.append(row)
            events += events_of(row, index)
            if len(tickets) >= chunk:
                yield tickets, events
                tickets, events = [], []
    counters = [[f"ticket:{c}:{d}", n] for (c, d), n in serial.items()]
    yield tickets, events
    yield [], counters


def tickets_team(recent: list[list[Any]], main: int, own: Any) -> Any:
    """The team of the main ticket when it is in this chunk (else the ticket's own)."""
    if recent and recent[0][0] <= main:
        return recent[main - recent[0][0]][TICKET_COLUMNS.index("team_id") + 1]
    return own


def firm_id(county: int, n: int, shape: Shape) -> int:
    return county * shape.firms + n + 1


def events_of(row: list[Any], index: dict[str, int]) -> list[list[Any]]:
    """The event log the workflow would have written for a ticket in its state."""
    tid, actor = row[index["id"]], row[index["reporter_id"]]
    state = row[index["state"]]
    first = "pending_claim" if row[index["team_id"]] else "pending_dispatch"
    out = [[tid, actor, "submitted", "draft", first, "{}", row[index["submitted_at"]]]]
    if row[index["claimed_at"]]:
        staff = row[index["claimed_by"]]
        out.append([tid, staff, "claimed", first, "in_progress", "{}", row[index["claimed_at"]]])
        if row[index["first_contact_at"]]:
            at = row[index["first_contact_at"]]
            out.append([tid, staff, "first_contact", "in_progress", "in_progress", "{}", at])
    if row[index["resolved_at"]]:
        result = '{"result": "已协调办理完毕"}'
        at = row[index["resolved_at"]]
        out.append([tid, row[index["claimed_by"]], "resolved", "in_progress", "pending_confirm"])
        out[-1] += [result, at]
    if state == "closed":
        out.append(
            [tid, actor, "rated", "pending_confirm", "closed", "{}", row[index["closed_at"]]]
        )
    if state == "merged":
        out.append([tid, None, "merged", first, "merged", "{}", row[index["submitted_at"]]])
    return out


def firm_rows(shape: Shape, settings: Settings) -> tuple[list[list[Any]], list[list[Any]]]:
    """Enterprises and their users (registered, one contact each) of every county."""
    rng = random.Random(5)
    now = ts(NOW)
    enterprises, users = [], []
    for ci, county in enumerate(settings.counties().all):
        for n in range(shape.firms):
            eid = firm_id(ci, n, shape)
            name = f"{county.name}{rng.choice('宏远兴达华丰鑫源金泰')}{eid}号实业有限公司"
            town = rng.choice(county.towns)
            enterprises.append([eid, name, None, town, "装备制造", now, county.code])
            contact = rng.choice("王李张刘陈杨赵黄") + rng.choice(("先生", "女士"))
            phone = f"13{rng.randrange(10**9):09d}"
            users.append([f"{CHANNEL}:firm-{eid}", contact, eid, contact, phone, now, now])
    return enterprises, users


ENTERPRISE_COLUMNS = ["id", "name", "credit_code", "town", "industry", "created_at", "county"]
USER_COLUMNS = [
    "id",
    "display_name",
    "enterprise_id",
    "contact_name",
    "phone",
    "created_at",
    "updated_at",
]
EVENT_COLUMNS = ["ticket_id", "actor_id", "action", "from_state", "to_state", "payload", "at"]


async def seed(
    db: Database, shape: Shape, settings: Settings, policy: DeadlinePolicy, analyze: bool = False
) -> int:
    """Bulk-load the database; how many events it holds."""
    enterprises, users = firm_rows(shape, settings)
    n_events = 0
    async with db.tx() as repo:
        conn = repo.conn
        raw = getattr(conn, "raw", None) if db.dialect != "sqlite" else None

        async def put(table: str, columns: list[str], rows: list[list[Any]]) -> None:
            if not rows:
                return
            if raw is not None:  # PostgreSQL: COPY
                await raw.copy_records_to_table(table, records=rows, columns=columns)
                return
            marks = ", ".join("?" * len(columns))
            await conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )

        await put("enterprises", ENTERPRISE_COLUMNS, enterprises)
        await put("users", USER_COLUMNS, users)
        columns = ["id", *TICKET_COLUMNS]
        chunks = list(ticket_rows(shape, settings, policy))
        for tickets, events in chunks[:-1]:
            await put("tickets", columns, tickets)
            await put("ticket_events", EVENT_COLUMNS, events)
            n_events += len(events)
        await put("counters", ["name", "value"], chunks[-1][1])
        await conn.ids_given("enterprises")
        await conn.ids_given("tickets")
        await conn.ids_given("ticket_events")
    if db.dialect != "sqlite" or analyze:
        # What autovacuum does soon after a bulk load. A bot's SQLite file is never analysed
        # (its planner has no statistics), so by default neither is the bench's.
        async with db.read() as repo:
            await repo.conn.execute("VACUUM ANALYZE" if db.dialect != "sqlite" else "ANALYZE")
    return n_events


# -- the deployment ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.current = NOW

    def now(self) -> datetime:
        return self.current


class QuietSender:
    """A channel that accepts everything at once (the figures are the bot's, not a network's)."""

    limits = ChannelLimits(group_limit=10**6, group_period=1.0, group_burst=10**6)

    def __init__(self) -> None:
        self.count = 0

    def is_group(self, chat_id: str) -> bool:
        return chat_id.startswith(f"{CHANNEL}:g-")

    async def send_text(
        self,
        chat_id: str,
        text: str,
        buttons: Any,
        *,
        reply_to: Any = None,
        force_reply: bool = False,
    ) -> str:
        self.count += 1
        return str(self.count)

    async def edit_text(self, chat_id: str, message_id: str, text: str, buttons: Any) -> None:
        return None

    async def send_media(self, chat_id: str, media: str, file_id: str, caption: Any) -> str:
        return await self.send_text(chat_id, "", None)

    async def send_upload(
        self, chat_id: str, filename: str, data: bytes, caption: Any, *, photo: bool
    ) -> str:
        return await self.send_text(chat_id, "", None)


@dataclass
class Members:
    groups: dict[str, set[str]] = field(default_factory=dict)

    async def is_member(self, chat_id: str, user_id: str) -> bool:
        return user_id in self.groups.get(chat_id, set())


def actor(name: str, chat: str | None = None, admin: bool = False) -> Actor:
    ident = f"{CHANNEL}:{name}"
    return Actor(id=ident, name=name, chat_id=chat or ident, private=chat is None, is_admin=admin)


def group(county: str, team: str) -> str:
    return f"{CHANNEL}:g-{county}-{team}"


@dataclass
class Deployment:
    """One database with the bot's services open on it, as `yimi-bot run` opens them."""

    label: str
    shape: Shape
    services: Services
    clock: Clock
    members: Members
    counties: list[str]
    msg: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def incoming(self, text: str) -> Incoming:
        self.msg += 1
        return Incoming(message_id=str(self.msg), text=text)

    async def setup(self) -> None:
        """Every county's team groups, coordinators and a member per team, and the province's
        leaders' group: bound and started through the workflow."""
        w = self.services.workflow
        admin = actor("admin", admin=True)
        for code in self.counties:
            for team in [*TEAMS, "coordinator"]:
                chat = group(code, team)
                member = f"m-{code}-{team}"
                self.members.groups[chat] = {f"{CHANNEL}:{member}"}
                await w.bind(actor("admin", chat, admin=True), team, f"{team}@{code}")
                await w.start(actor(member), "staff")
        leaders = f"{CHANNEL}:g-leaders"
        self.members.groups[leaders] = {f"{CHANNEL}:leader"}
        await w.bind(actor("admin", leaders, admin=True), "leaders", "leaders")
        del admin
        await self.flush()

    async def flush(self) -> None:
        while await self.services.delivery.run_once():
            pass

    async def timed(self, kind: str, call: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        result = await call
        self.latencies.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        return result

    async def one_round(self, k: int, rng: random.Random) -> None:
        """A firm reports, confirms; a member claims, presses 办结 and writes the result."""
        w = self.services.workflow
        code = self.counties[k % len(self.counties)]
        firm_no = firm_id(k % len(self.counties), rng.randrange(self.shape.firms), self.shape)
        firm = actor(f"firm-{firm_no}")
        self.clock.current += timedelta(seconds=7)
        text = REPORTS[k % len(REPORTS)]
        proposal: list[Reply] = await self.timed(
            "report", w.private_message(firm, self.incoming(text))
        )
        draft = button(proposal, "确认")
        await self.timed("confirm", w.confirm(firm, draft))
        async with self.services.db.read() as repo:
            ticket = await repo.tickets.get_ticket(draft)
        assert ticket is not None and ticket.team_id and ticket.county == code, ticket
        chat = group(code, ticket.team_id)
        member = actor(f"m-{code}-{ticket.team_id}", chat)
        await self.flush()
        self.clock.current += timedelta(seconds=30)
        await self.timed("claim", w.claim(member, ticket.id))
        await self.flush()
        await self.timed("resolve", w.ask_resolve(member, ticket.id))
        await self.timed("result", w.group_message(member, self.incoming("已协调办理完毕")))
        await self.flush()
        async with self.services.db.read() as repo:
            done = await repo.tickets.get_ticket(ticket.id)
        assert done is not None and done.state is TicketState.PENDING_CONFIRM, done


def button(replies: list[Reply], label: str) -> int:
    found = [b.data for r in replies for row in r.buttons or [] for b in row if label in b.text]
    assert found and found[0], f"no button {label!r}: {replies}"
    return decode(found[0]).ticket_id


# -- the run -----------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def median_of(k: int, fn: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(k):
        started = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def open_deployment(
    label: str, shape: Shape, folder: Path, url: str | None, cfile: Path, analyze: bool
) -> tuple[Deployment, dict[str, float]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_path=folder / f"{label}.db",
        database_url=SecretStr(url) if url else None,
        counties_file=cfile,
        outbox_poll_seconds=0.05,
        log_level="WARNING",
    )
    policy = DeadlinePolicy(settings, WorkCalendar(settings))
    figures: dict[str, float] = {}
    started = time.perf_counter()
    db = await Database.at(settings.database_path, settings.database_dsn)
    try:
        figures["events"] = await seed(db, shape, settings, policy, analyze)
    finally:
        await db.close()
    figures["seed"] = time.perf_counter() - started
    clock = Clock()
    members = Members()
    classifier = get_classifier()  # loaded once per process: not part of opening
    started = time.perf_counter()
    services = await open_services(
        settings, clock, classifier, {CHANNEL: QuietSender()}, {CHANNEL: members}
    )
    figures["open"] = time.perf_counter() - started
    codes = [c.code for c in settings.counties().all]
    dep = Deployment(label, shape, services, clock, members, codes)
    await dep.setup()
    return dep, figures


async def measure(backend: str, args: argparse.Namespace, folder: Path) -> list[str]:
    server = None
    urls: dict[str, str | None] = {"small": None, "big": None}
    if backend == "postgres":
        server = pgserver.start(folder / "pg")
        for name in urls:
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE province_{name}".encode())
            urls[name] = server.url(f"province_{name}")
    cfile = counties_file(folder, args.counties)
    shapes = {"small": Shape(args.small, args.counties), "big": Shape(args.tickets, args.counties)}
    deps: dict[str, Deployment] = {}
    seeded: dict[str, dict[str, float]] = {}
    try:
        for name, shape in shapes.items():
            deps[name], seeded[name] = await open_deployment(
                name, shape, folder, urls[name], cfile, args.analyze
            )
        return await compare(backend, deps, seeded, args, folder)
    finally:
        for dep in deps.values():
            await close_services(dep.services)
        if server is not None:
            server.stop()


async def reading_figures(dep: Deployment, folder: Path) -> dict[str, float]:
    """/stats year as one county's coordinators and the province's leaders send it; the ledger
    of the county's last full month as its coordinators export it."""
    reports = dep.services.reports
    county = dep.counties[0]
    coord = actor(f"m-{county}-coordinator", group(county, "coordinator"))
    leader = actor("leader", f"{CHANNEL}:g-leaders")
    out = folder / f"{dep.label}.xlsx"
    last = date(NOW.year, NOW.month, 1) - timedelta(days=1)
    first = last.replace(day=1)
    f: dict[str, float] = {}
    f["stats_county"] = await median_of(5, lambda: reports.stats_for(coord, "year"))
    f["stats_all"] = await median_of(5, lambda: reports.stats_for(leader, "year"))
    f["ledger"] = await median_of(3, lambda: reports.export_for(coord, out, start=first, end=last))
    _, rows = await reports.export_for(coord, out, start=first, end=last)
    f["ledger_rows"] = rows
    return f


async def compare(
    backend: str,
    deps: dict[str, Deployment],
    seeded: dict[str, dict[str, float]],
    args: argparse.Namespace,
    folder: Path,
) -> list[str]:
    rng = random.Random(3)
    for k in range(args.warmup + args.rounds):  # alternating: the same load on both
        for dep in deps.values():
            if k == args.warmup:
                dep.latencies.clear()
            await dep.one_round(k, rng)
    stats_figures = {name: await reading_figures(dep, folder) for name, dep in deps.items()}
    title = "SQLite (a file)" if backend == "sqlite" else "PostgreSQL (a throwaway server)"
    small, big = deps["small"], deps["big"]
    lines = [
        f"{title}: {big.shape.tickets:,} tickets ({int(seeded['big']['events']):,} events, "
        f"{big.shape.firms:,} firms a county) against {small.shape.tickets:,} "
        f"({small.shape.firms} firms a county), {len(big.counties)} counties",
        f"  seeded in {seeded['big']['seed']:.1f} s (baseline {seeded['small']['seed']:.1f} s);"
        f" services opened in {seeded['big']['open']:.2f} s "
        f"(baseline {seeded['small']['open']:.2f} s)",
        f"  {'':44}{'1,000,000' if big.shape.tickets == 1_000_000 else big.shape.tickets:>12}"
        f"{'baseline':>12}{'ratio':>8}  target",
    ]

    def row(label: str, value: float, base: float, target: str, unit: str = "ms") -> None:
        ratio = value / base if base else float("nan")
        lines.append(
            f"  {label:<44}{value:>9.1f} {unit}{base:>9.1f} {unit}{ratio:>7.2f}x  {target}"
        )

    every_b = [v for vs in big.latencies.values() for v in vs]
    every_s = [v for vs in small.latencies.values() for v in vs]
    for p in (50, 99):
        row(f"one update, all kinds, p{p}", pct(every_b, p), pct(every_s, p), "<= 1.2x")
    for kind in big.latencies:
        b, s = big.latencies[kind], small.latencies[kind]
        row(f"  {kind} p50 / p99", pct(b, 50), pct(s, 50), "")
        lines[-1] += f"   p99 {pct(b, 99):.1f} / {pct(s, 99):.1f} ms"
    sb, ss = stats_figures["big"], stats_figures["small"]
    row("/stats year, one county's coordinators", sb["stats_county"], ss["stats_county"], "<= 200")
    row("/stats year, all counties + comparison", sb["stats_all"], ss["stats_all"], "<= 200")
    row(
        f"ledger .xlsx, one county-month ({int(sb['ledger_rows'])} / {int(ss['ledger_rows'])})",
        sb["ledger"],
        ss["ledger"],
        "<= 1000",
    )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--counties", type=int, default=20, choices=range(1, 21))
    parser.add_argument("--rounds", type=int, default=200, help="rounds of 5 updates")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--backend", choices=("both", "sqlite", "postgres"), default="both")
    parser.add_argument(
        "--analyze", action="store_true", help="ANALYZE the SQLite files too (a bot never does)"
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = time.perf_counter()
    out: list[str] = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="yimi-province-", dir="/tmp") as tmp:
            out += await measure(backend, args, Path(tmp))
    print(f"yimi-bot province benchmark ({time.perf_counter() - started:.0f} s in all)")
    print("\n".join(out))


if __name__ == "__main__":
    asyncio.run(main())
