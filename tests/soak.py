"""A county's month on the test clock: the soak driver shared by bench/soak.py and tests/test_soak.py.

The real Telegram Application (Bot API replaced at the transport by a recording fake), its
handlers, the workflow, a real SQLite file, the real classifier, the real delivery code and the
jobs the application registers in PTB's job queue, run on a clock the driver moves: firms
report over working hours, members claim (some late), talk with the firm, resolve; firms confirm
and rate; some tickets are returned and rerouted. Every few minutes of the clock the job queue's
jobs whose time has passed are run (their own triggers decide when: `VirtualJobs`), and the
outbox is delivered. The bot is restarted twice, over the morning list's time and over the
Friday digest's time, as a deployment would be.

What `Soak.check()` verifies: each daily job fired once per slot (morning lists = working days,
digests = Fridays, backups = days), each reminder once per ticket and as the plan implies
(claim reminders by how late the claim was, red for a late 办结, no-evaluation closes), nothing
lost (every report answered, every confirmation a ticket with a receipt and a card), no phone
number or contact name in a group, and every figure of each weekly digest equal to the same
figure computed from the ledger export of the digest's period.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import re
import resource
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from openpyxl import load_workbook
from telegram import Update
from telegram.ext import Application

from bot.channels.telegram.app import (
    build_application,
    schedule_jobs,
    start_services,
    stop_services,
)
from bot.classify.classifier import DOMAIN_IDS, get_classifier
from bot.config import Settings
from bot.core.models import TEAM_NAMES, TicketState
from bot.delivery.outbox import GroupPace
from bot.reporting.digest import pct
from bot.reporting.ledger import write_ledger
from bot.services import Services
from tests.fakes import TZ, FakeClock, FakeTelegram, Sent, Updates

ROOT = Path(__file__).resolve().parents[1]
ADMIN = 900
FIRM0 = 10_000
COORDS = (30_001, 30_002)
TEAMS = list(DOMAIN_IDS)
COORD_GROUP, LEADERS_GROUP = -3000, -3001
NUMBER = re.compile(r"YM-\d{8}-\d{4}")
TAG = re.compile(r"<[^>]+>")
STEP = timedelta(minutes=5)
TOWNS = ["城关镇", "大营镇", "尉氏县产业集聚区", "张市镇", "十八里镇"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def group_of(team: str) -> int:
    return -2000 - TEAMS.index(team)


def members_of(team: str) -> tuple[int, int]:
    base = 20_000 + 10 * TEAMS.index(team)
    return base + 1, base + 2


@dataclass(frozen=True)
class Plan:
    """How big the soak is."""

    start: date  # a Monday
    days: int
    firms: int
    reports: int
    seed: int = 14
    restarts: bool = True


MONTH = Plan(date(2026, 9, 21), 30, 300, 2000)  # National Day week inside: holidays, 调休
WEEK = Plan(date(2026, 11, 23), 7, 50, 300)


def report_texts() -> list[str]:
    """Realistic report texts (the project's labelled sets)."""
    texts = []
    for name in ("reports.jsonl", "heldout_probe.jsonl", "heldout_probe2.jsonl"):
        for line in (ROOT / "tests/data" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(str(json.loads(line)["text"]))
    return texts


class SoakTelegram(FakeTelegram):
    """The recording fake, indexed for the driver: which message carries which ticket's button.

    Its own memory stays flat over a month, so the RSS measured is the bot's: counts instead of
    the list of every call, no copy of each request's parameters, and of each chat's messages
    those that had buttons (cards, results to rate: edited later) until the driver is done with
    their ticket, and the last `KEEP`.
    """

    KEEP = 50

    def __init__(self) -> None:
        super().__init__()
        self.by_button: dict[tuple[int, str], Sent] = {}
        self.keys_of: dict[str, set[tuple[int, str]]] = defaultdict(set)  # ticket id → keys
        # (chat, message id) that had buttons → the tickets they were for (batch cards: many)
        self.live: dict[tuple[int, int], set[str]] = defaultdict(set)
        self.method_counts: Counter[str] = Counter()
        self.watchers: list[Callable[[str, int, Sent], None]] = []

    async def do_request(self, url: str, method: str, request_data: Any = None, **kw: Any) -> Any:
        result = await super().do_request(url, method, request_data, **kw)
        name, params = self.calls.pop()
        self.answers.clear()
        self.method_counts[name] += 1
        if name.startswith(("send", "edit")) and result[0] == 200 and "chat_id" in params:
            chat = int(params["chat_id"])
            sent = self._find(chat, name, params)
            if sent is not None:
                sent.params = {}
                for row in (sent.markup or {}).get("inline_keyboard", []):
                    for button in row:
                        data = button.get("callback_data")
                        if data:
                            key = (chat, ":".join(data.split(":")[:3]))
                            self.by_button[key] = sent
                            self.live[(chat, sent.message_id)].add(key[1].rsplit(":", 1)[-1])
                            self.keys_of[key[1].rsplit(":", 1)[-1]].add(key)
                for watch in self.watchers:
                    watch(name, chat, sent)
                self._prune(chat)
        return result

    def _prune(self, chat: int) -> None:
        messages = self.messages[chat]
        if len(messages) > 2 * self.KEEP:
            old, recent = messages[: -self.KEEP], messages[-self.KEEP :]
            kept = [m for m in old if (chat, m.message_id) in self.live]
            self.messages[chat] = kept + recent

    def _find(self, chat: int, name: str, params: dict[str, Any]) -> Sent | None:
        if name.startswith("edit"):
            mid = int(params["message_id"])
            return next((m for m in reversed(self.messages[chat]) if m.message_id == mid), None)
        return self.messages[chat][-1] if self.messages[chat] else None

    def button(self, chat: int, action: str, ticket_id: int) -> Sent | None:
        """The latest message in `chat` with a button for `action` on ticket `ticket_id`."""
        return self.by_button.get((chat, f"v1:{action}:{ticket_id}"))

    def forget(self, ticket_id: int) -> None:
        """A ticket the driver is done with: its buttons are no longer looked up."""
        for key in self.keys_of.pop(str(ticket_id), set()):
            sent = self.by_button.pop(key, None)
            if sent is not None:
                tickets = self.live.get((key[0], sent.message_id), set())
                tickets.discard(str(ticket_id))
                if not tickets:
                    self.live.pop((key[0], sent.message_id), None)


class VirtualJobs:
    """Runs the application's PTB jobs on the test clock, by each job's own trigger.

    PTB's job queue (APScheduler) follows the wall clock; here each job's trigger is asked
    when it next fires after the test clock's time, and the job is run once the clock has
    passed that (several passed fire times coalesce into one run, as APScheduler does).
    """

    def __init__(self, app: Application, clock: FakeClock) -> None:  # type: ignore[type-arg]
        self.app = app
        self.clock = clock
        assert app.job_queue is not None
        self.jobs = list(app.job_queue.jobs())
        now = clock.now()
        self.next: dict[str, datetime | None] = {}
        for job in self.jobs:
            trigger = job.job.trigger
            if isinstance(trigger, IntervalTrigger):
                self.next[job.name or ""] = now + trigger.interval
            else:
                self.next[job.name or ""] = trigger.get_next_fire_time(None, now)
        self.runs: Counter[str] = Counter()

    async def run_due(self) -> None:
        now = self.clock.now()
        for job in self.jobs:
            name = job.name or ""
            due = self.next[name]
            if due is None or due > now:
                continue
            trigger = job.job.trigger
            if isinstance(trigger, IntervalTrigger):
                while due <= now:
                    due += trigger.interval
                self.next[name] = due
            else:
                self.next[name] = trigger.get_next_fire_time(due, now + timedelta(seconds=1))
            self.runs[name] += 1
            await job.callback(None)  # type: ignore[arg-type]


class ErrorLog(logging.Handler):
    """Counts ERROR records (a failed job, a crashed handler) while the soak runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}"[:300])


@dataclass
class Firm:
    user: int
    enterprise: str
    contact: str
    phone: str
    town: str


@dataclass
class Track:
    """What the driver did to one ticket, and so what the rules make the bot do."""

    number: str
    ticket_id: int
    firm: Firm
    team: str | None
    claim_kind: str = "prompt"  # prompt | late | very_late | escalated | returned
    claimer: int | None = None
    contacted: bool = False
    resolves: int = 0
    rated: str | None = None
    returned: bool = False


@dataclass
class DigestCheck:
    """One weekly digest as the coordinators saw it, against the ledger of its period."""

    at: datetime
    compared: int
    differences: list[str]


@dataclass
class Figures:
    """What the soak measured."""

    reports_sent: int = 0
    drafts_cancelled: int = 0
    tickets: int = 0
    receipts: int = 0
    updates: int = 0
    steps: int = 0
    restarts: int = 0
    job_runs: Counter[str] = field(default_factory=Counter)
    morning_lists: Counter[str] = field(default_factory=Counter)  # date → lists sent
    digests: Counter[str] = field(default_factory=Counter)  # date → digests to coordinators
    leader_digests: Counter[str] = field(default_factory=Counter)
    backups: set[str] = field(default_factory=set)
    digest_checks: list[DigestCheck] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    db_mb: float = 0.0


def rss_mb() -> float:
    """Resident set size now (Linux /proc), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Soak:
    """The month (or week) and everything needed to check it afterwards."""

    def __init__(self, plan: Plan, tmp: Path) -> None:
        self.plan = plan
        self.tmp = tmp
        self.rng = random.Random(plan.seed)
        self.clock = FakeClock(datetime.combine(plan.start, time(7, 0), tzinfo=TZ))
        self.end = datetime.combine(plan.start + timedelta(days=plan.days), time(0), tzinfo=TZ)
        self.telegram = SoakTelegram()
        self.telegram.watchers.append(self._seen)
        self.updates = Updates(self.telegram)
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            bot_token="123456:SOAK-TOKEN",
            database_path=tmp / "soak.db",
            admin_ids=[ADMIN],
            towns=TOWNS,
            backup_dir=tmp / "backups",
            backup_keep=3,
        )
        self.app: Application | None = None  # type: ignore[type-arg]
        self.jobs: VirtualJobs | None = None
        self.queue: list[tuple[datetime, int, Callable[[], Awaitable[None]]]] = []
        self._seq = itertools.count()
        self.firms: list[Firm] = []
        self.tracks: dict[int, Track] = {}
        self.figures = Figures()
        self.errors = ErrorLog()
        self.privacy_leaks: list[str] = []
        self.placeholders: list[str] = []
        self.answered: Counter[int] = Counter()  # firm → replies to its reports
        self.texts = report_texts()
        self._digest_pending: list[datetime] = []
        self._firms_by_phone: dict[str, Firm] = {}
        self.downtimes: list[tuple[datetime, datetime]] = []
        self.claims_held = 0  # claims not judged: the bot was down between dispatch and 签收
        self.claims_judged = 0
        self.reminder_kinds: Counter[str] = Counter()
        for team in TEAMS:
            self.telegram.members[group_of(team)] = {*members_of(team), ADMIN}
        self.telegram.members[COORD_GROUP] = {*COORDS, ADMIN}
        self.telegram.members[LEADERS_GROUP] = {ADMIN}

    # -- the application -------------------------------------------------------------------

    @property
    def services(self) -> Services:
        assert self.app is not None
        found = self.app.bot_data["services"]
        assert isinstance(found, Services)
        return found

    async def start(self) -> None:
        """The application as post_init starts it, with the job queue run by `VirtualJobs`."""
        self.app = build_application(
            self.settings, request=self.telegram, clock=self.clock, rate_limit=False
        )
        await self.app.initialize()
        services = await start_services(
            self.app, self.settings, self.clock, get_classifier(), start_delivery=False
        )
        # Telegram's 20 messages a minute per group is wall-clock time: a month of cards sent in
        # minutes would sleep on it. The clock here is the test's, so the pace is lifted.
        services.delivery.paces["telegram"] = GroupPace(limit=10**9, burst=10**9)
        schedule_jobs(self.app, self.settings, services)
        self.jobs = VirtualJobs(self.app, self.clock)

    async def stop(self) -> None:
        if self.app is not None:
            if self.jobs is not None:
                self.figures.job_runs.update(self.jobs.runs)
            await stop_services(self.app)
            await self.app.shutdown()
            self.app = None
            self.jobs = None

    async def process(self, update: dict[str, Any]) -> None:
        assert self.app is not None
        self.figures.updates += 1
        await self.app.process_update(Update.de_json(update, self.app.bot))
        await self.flush()

    async def flush(self) -> None:
        """Deliver the outbox until nothing is due (the delivery code's own rounds)."""
        for _ in range(100):
            if await self.services.delivery.run_once() == 0:
                return
        raise AssertionError("outbox did not drain")

    async def say(self, chat: int, user: int, name: str, text: str, **kw: Any) -> None:
        await self.process(self.updates.message(chat, user, name, text, **kw))

    async def press(self, chat: int, user: int, name: str, message: Sent, data: str) -> None:
        await self.process(self.updates.callback(chat, user, name, message, data))

    # -- what people see -------------------------------------------------------------------

    def _seen(self, method: str, chat: int, sent: Sent) -> None:
        text = sent.text
        if "{" in TAG.sub("", text) and re.search(r"\{[A-Za-z_]+\}", text):
            self.placeholders.append(text[:120])
        if method.startswith("edit"):
            return
        day = self.clock.now().date().isoformat()
        if chat == COORD_GROUP and text.startswith("<b>🔴 超期工单"):
            self.figures.morning_lists[day] += 1
        if "周报" in text.split("\n", 1)[0]:
            if chat == COORD_GROUP:
                self.figures.digests[day] += 1
                self._digest_pending.append(self.clock.now())
            elif chat == LEADERS_GROUP:
                self.figures.leader_digests[day] += 1
        if chat < 0:
            plain = TAG.sub("", text)
            for firm in self._firms_by_phone.values():
                if firm.phone in plain or firm.contact in plain:
                    self.privacy_leaks.append(f"{chat}: {plain[:80]}")
        elif chat >= FIRM0 and chat < FIRM0 + 100_000:
            self.answered[chat] += 1

    # -- set-up: groups, leads, firms ------------------------------------------------------

    async def set_up(self) -> None:
        await self.start()
        for team in TEAMS:
            await self.say(group_of(team), ADMIN, "管理员", f"/bind {team}")
            lead = members_of(team)[0]
            await self.say(group_of(team), lead, self._name(lead), "/lead")
            for member in members_of(team):
                await self.say(member, member, self._name(member), "/start staff")
        await self.say(COORD_GROUP, ADMIN, "管理员", "/bind coordinator")
        await self.say(LEADERS_GROUP, ADMIN, "管理员", "/bind leaders")
        for n in range(self.plan.firms):
            firm = Firm(
                FIRM0 + n,
                f"尉氏县{self.rng.choice('恒宏天金绿华盛顺兴隆')}{n:03d}号实业有限公司",
                f"{SURNAMES[n % len(SURNAMES)]}{'伟娜强敏军静磊洋勇艳'[n // 20 % 10]}{n:03d}",
                f"139{n:08d}",
                TOWNS[n % len(TOWNS)],
            )
            self.firms.append(firm)
            self._firms_by_phone[firm.phone] = firm
            await self._register(firm)

    async def _register(self, f: Firm) -> None:
        await self.say(f.user, f.user, f.contact, "/start")
        await self.say(f.user, f.user, f.contact, f.enterprise)
        await self.say(f.user, f.user, f.contact, f.contact)
        await self.say(f.user, f.user, f.contact, f.phone)
        towns = self.telegram.last(f.user)
        await self.press(f.user, f.user, f.contact, towns, towns.data(f.town))
        skip = self.telegram.last(f.user)
        await self.press(f.user, f.user, f.contact, skip, skip.data("跳过"))

    @staticmethod
    def _name(user: int) -> str:
        if user in COORDS:
            return f"调度员{user % 10}"
        return f"团员{user % 1000:03d}"

    # -- the plan ----------------------------------------------------------------------------

    def at(self, when: datetime, action: Callable[[], Awaitable[None]]) -> None:
        heapq.heappush(self.queue, (when, next(self._seq), action))

    def working_moment(self, day: date) -> datetime:
        """A moment in the office hours of `day` (a few reports come in the evening)."""
        if self.rng.random() < 0.05:
            minute = self.rng.randrange(18 * 60 + 30, 22 * 60)
        elif self.rng.random() < 0.55:
            minute = self.rng.randrange(8 * 60 + 30, 12 * 60)
        else:
            minute = self.rng.randrange(14 * 60 + 30, 17 * 60 + 30)
        return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=TZ)

    def plan_reports(self, calendar_is_workday: Callable[[date], bool]) -> None:
        """~N reports spread over the working days (and a few on days off)."""
        days = [self.plan.start + timedelta(days=i) for i in range(self.plan.days)]
        weights = [1.0 if calendar_is_workday(d) else 0.08 for d in days]
        # Reports stop two working days before the end, so most tickets can run their course.
        last = self.end - timedelta(days=2)
        for _ in range(self.plan.reports):
            day = self.rng.choices(days, weights)[0]
            when = self.working_moment(day)
            if when >= last:
                when -= timedelta(days=3)
            firm = self.rng.choice(self.firms)
            text = self.rng.choice(self.texts)
            self.at(when, lambda f=firm, t=text: self.report(f, t))

    def later(self, hours: float) -> datetime:
        """`hours` working hours from now on the bot's working calendar."""
        return self.services.workflow.calendar.add_work_hours(self.clock.now(), hours)

    # -- what people do ----------------------------------------------------------------------

    async def report(self, firm: Firm, text: str) -> None:
        self.figures.reports_sent += 1
        before = self.answered[firm.user]
        await self.say(firm.user, firm.user, firm.contact, text)
        assert self.answered[firm.user] > before, f"report of {firm.user} not answered: {text}"
        proposal = self.telegram.last(firm.user)
        if "✅ 确认提交" not in proposal.buttons():
            return  # answered with a question (no draft): nothing to confirm
        if self.rng.random() < 0.03:
            self.figures.drafts_cancelled += 1
            await self.press(firm.user, firm.user, firm.contact, proposal, proposal.data("✖️ 取消"))
            return
        if self.rng.random() < 0.05:
            await self.say(firm.user, firm.user, firm.contact, "补充一下：情况比较急，麻烦尽快")
            proposal = self.telegram.last(firm.user)
        await self.press(firm.user, firm.user, firm.contact, proposal, proposal.data("✅ 确认提交"))
        receipt = self.telegram.last(firm.user)
        found = NUMBER.search(receipt.text)
        assert found and "工单编号" in receipt.text, receipt.text
        self.figures.receipts += 1
        async with self.services.db.read() as repo:
            ticket = await repo.tickets.get_ticket_by_number(found.group())
        assert ticket is not None
        track = Track(found.group(), ticket.id, firm, ticket.team_id)
        self.tracks[ticket.id] = track
        if ticket.state is TicketState.PENDING_DISPATCH:
            self.at(self.later(self.rng.uniform(0.2, 0.8)), lambda: self.route(track))
        else:
            self.plan_claim(track)

    async def route(self, track: Track, avoid: str | None = None) -> None:
        """A coordinator routes an unclear (or returned) ticket to a team."""
        team = self.rng.choice([t for t in TEAMS if t != avoid])
        coord = self.rng.choice(COORDS)
        card = self.telegram.button(COORD_GROUP, "dispatch", track.ticket_id)
        if card is not None and avoid is None:
            await self.press(
                COORD_GROUP, coord, self._name(coord), card, f"v1:dispatch:{track.ticket_id}:{team}"
            )
        else:
            await self.say(
                COORD_GROUP, coord, self._name(coord), f"/dispatch {track.number} {team}"
            )
        track.team = team
        self.plan_claim(track, after_return=avoid is not None)

    def plan_claim(self, track: Track, *, after_return: bool = False) -> None:
        r = self.rng.random()
        if after_return:
            kind, hours = "prompt", self.rng.uniform(0.1, 0.8)
        elif r < 0.05 and not track.returned:
            track.returned = True
            self.at(self.later(self.rng.uniform(0.1, 0.8)), lambda: self.give_back(track))
            track.claim_kind = "returned"
            return
        elif r < 0.72:
            kind, hours = "prompt", self.rng.uniform(0.1, 0.8)
        elif r < 0.86:
            kind, hours = "late", self.rng.uniform(1.2, 1.8)
        elif r < 0.95:
            kind, hours = "very_late", self.rng.uniform(2.3, 5.5)
        else:
            kind, hours = "escalated", self.rng.uniform(7.0, 9.0)
        if not after_return:
            track.claim_kind = kind
        self.at(self.later(hours), lambda: self.claim(track))

    async def give_back(self, track: Track) -> None:
        """退回: the team says it is not theirs; the coordinators reroute it."""
        assert track.team is not None
        group, member = group_of(track.team), members_of(track.team)[1]
        card = self.telegram.button(group, "return", track.ticket_id)
        assert card is not None, f"no card for {track.number} in {track.team}"
        await self.press(group, member, self._name(member), card, f"v1:return:{track.ticket_id}")
        await self.say(group, member, self._name(member), "经核实不属于本团职责范围，请专班改派")
        old = track.team
        self.at(self.later(self.rng.uniform(0.2, 0.6)), lambda: self.route(track, avoid=old))

    async def claim(self, track: Track) -> None:
        assert track.team is not None
        group = group_of(track.team)
        member = self.rng.choice(members_of(track.team))
        card = self.telegram.button(group, "claim", track.ticket_id)
        assert card is not None, f"no 签收 button for {track.number} in {track.team}"
        await self.press(group, member, self._name(member), card, f"v1:claim:{track.ticket_id}")
        track.claimer = member
        if self.rng.random() < 0.9:
            self.at(self.later(self.rng.uniform(0.3, 4.0)), lambda: self.contact(track))
        r = self.rng.random()
        # Most are done in 1-5 working days; some run late (yellow, red); a few stay open.
        if r < 0.8:
            days = self.rng.uniform(0.5, 4.5)
        elif r < 0.93:
            days = self.rng.uniform(6.0, 9.0)
        else:
            return
        self.at(self.later(days * 6.5), lambda: self.resolve(track))

    async def contact(self, track: Track) -> None:
        """First contact (the details' button), then a word with the firm through the card."""
        assert track.claimer is not None and track.team is not None
        details = self.telegram.button(track.claimer, "contact", track.ticket_id)
        if details is None:
            return
        name = self._name(track.claimer)
        await self.press(
            track.claimer, track.claimer, name, details, f"v1:contact:{track.ticket_id}"
        )
        track.contacted = True
        group = group_of(track.team)
        card = self.telegram.button(group, "resolve", track.ticket_id)
        if card is not None:
            await self.say(
                group,
                track.claimer,
                name,
                "您好，我们已了解情况，明天上门查看",
                reply_to=card.message_id,
            )
            relay = self.telegram.last(track.firm.user)
            firm = track.firm
            await self.say(
                firm.user, firm.user, firm.contact, "好的，我们等着", reply_to=relay.message_id
            )

    async def resolve(self, track: Track) -> None:
        assert track.claimer is not None and track.team is not None
        group = group_of(track.team)
        card = self.telegram.button(group, "resolve", track.ticket_id)
        if card is None:
            return
        name = self._name(track.claimer)
        await self.press(group, track.claimer, name, card, f"v1:resolve:{track.ticket_id}")
        await self.say(group, track.claimer, name, "已协调相关部门办理完毕，问题已处理")
        track.resolves += 1
        r = self.rng.random()
        if r < 0.1 and track.resolves == 1:
            return  # the firm never answers: closed as no_evaluation after 5 working days
        self.at(self.later(self.rng.uniform(0.5, 10.0)), lambda: self.rate(track))

    async def rate(self, track: Track) -> None:
        firm = track.firm
        result = self.telegram.button(firm.user, "rate", track.ticket_id)
        if result is None:
            return
        r = self.rng.random()
        value = "satisfied" if r < 0.78 else "basic" if r < 0.9 else "unsolved"
        if track.resolves > 1 and value == "unsolved":
            value = "basic"
        await self.press(
            firm.user, firm.user, firm.contact, result, f"v1:rate:{track.ticket_id}:{value}"
        )
        track.rated = value
        if value != "unsolved":
            self.telegram.forget(track.ticket_id)
        if value == "unsolved":
            self.at(self.later(self.rng.uniform(3.0, 12.0)), lambda: self.resolve(track))

    # -- the clock ---------------------------------------------------------------------------

    async def run(self, progress: Callable[[str], None] | None = None) -> Figures:
        """Set up, run the plan to its end, stop; the figures (check them with `check`)."""
        self.figures.rss_start_mb = rss_mb()
        logging.getLogger().addHandler(self.errors)
        try:
            return await self._run(progress)
        finally:
            logging.getLogger().removeHandler(self.errors)

    async def _run(self, progress: Callable[[str], None] | None) -> Figures:
        await self.set_up()
        self.plan_reports(self.services.workflow.calendar.is_workday)
        restarts = self._restarts()
        self.downtimes = list(restarts)
        warm: datetime | None = self.clock.now() + timedelta(days=7)
        day = None
        while self.clock.now() < self.end:
            target = min(self.clock.now() + STEP, self.end)
            while self.queue and self.queue[0][0] <= target:
                when, _, action = heapq.heappop(self.queue)
                self.clock.current = max(self.clock.current, when)
                await action()
            self.clock.current = target
            if restarts and target >= restarts[0][0]:
                _, up = restarts.pop(0)
                await self._restart(up)
            assert self.jobs is not None
            await self.jobs.run_due()
            await self.flush()
            await self._check_digests()
            self.figures.steps += 1
            self._note_backups()
            if warm and self.clock.now() >= warm:
                self.figures.rss_warm_mb = rss_mb()
                warm = None
            if progress and self.clock.now().date() != day:
                day = self.clock.now().date()
                progress(f"{day} tickets {len(self.tracks)} rss {rss_mb():.0f} MB")
        await self.stop()
        self.figures.rss_end_mb = rss_mb()
        self.figures.tickets = len(self.tracks)
        db = self.settings.database_path
        wal = db.with_name(db.name + "-wal")
        self.figures.db_mb = (
            db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        ) / 2**20
        return self.figures

    def _restarts(self) -> list[tuple[datetime, datetime]]:
        """Down over the morning list's time on the second working day, and over the first
        Friday's digest: (down at, up at)."""
        if not self.plan.restarts:
            return []
        s = self.settings
        cal = self.services.workflow.calendar
        days = [self.plan.start + timedelta(days=i) for i in range(self.plan.days)]
        workdays = [d for d in days if cal.is_workday(d)]
        friday = next(d for d in days if d.weekday() == s.digest_weekday)
        out = []
        morning = datetime.combine(workdays[1], s.morning_overdue_time, tzinfo=TZ)
        out.append((morning - timedelta(minutes=10), morning + timedelta(minutes=30)))
        digest = datetime.combine(friday, s.digest_time, tzinfo=TZ)
        out.append((digest - timedelta(minutes=10), digest + timedelta(minutes=20)))
        return out

    async def _restart(self, up: datetime) -> None:
        """Stop the bot, let the clock run to `up`, start it again on the same database."""
        await self.stop()
        self.figures.restarts += 1
        self.clock.current = max(self.clock.current, up)
        await self.start()

    def _note_backups(self) -> None:
        folder = self.settings.backup_dir
        if folder is not None and folder.exists():
            self.figures.backups |= {p.name for p in folder.iterdir() if p.suffix == ".db"}

    # -- the digest against the ledger -------------------------------------------------------

    async def _check_digests(self) -> None:
        while self._digest_pending:
            at = self._digest_pending.pop(0)
            text = TAG.sub("", self.telegram.find(COORD_GROUP, "周报").text)
            self.figures.digest_checks.append(await self.compare_with_ledger(text, at))

    async def compare_with_ledger(self, digest_text: str, now: datetime) -> DigestCheck:
        """Each figure of the digest against the same figure from the ledger export of the
        digest's period (the 7 days before it), written by the real export code."""
        services = self.services
        start = now - timedelta(days=7)
        async with services.db.read() as repo:
            tickets = await repo.tickets.tickets_submitted_between(start, now)
            events = await repo.tickets.events_for([t.id for t in tickets])
        path = self.tmp / f"ledger-{now:%Y%m%d}.xlsx"
        write_ledger(
            tickets,
            events,
            path,
            now=now,
            exporter_name="soak",
            exporter_is_admin=True,
            calendar=services.workflow.calendar,
            policy=services.workflow.policy,
        )
        ledger = ledger_figures(path)
        digest = digest_figures(digest_text)
        differences = [
            f"{key}: digest {digest.get(key)!r} ledger {value!r}"
            for key, value in ledger.items()
            if digest.get(key) != value
        ]
        missing = sorted(set(digest) - set(ledger))
        differences += [f"{key}: in the digest, not in the ledger" for key in missing]
        return DigestCheck(now, len(ledger), differences)

    # -- the verdict -------------------------------------------------------------------------

    def slots(self) -> dict[str, int]:
        """How many slots each daily job had in the plan's days."""
        cal = build_calendar(self.settings)
        days = [self.plan.start + timedelta(days=i) for i in range(self.plan.days)]
        return {
            "morning": sum(1 for d in days if cal.is_workday(d)),
            "digest": sum(1 for d in days if d.weekday() == self.settings.digest_weekday),
            "backup": len(days) - 1,
        }

    async def check(self) -> list[str]:
        """Every failed check, in words (empty: all passed). Opens the database itself."""
        from bot.storage.db import Database

        failures: list[str] = []
        f = self.figures
        cal = build_calendar(self.settings)
        days = [self.plan.start + timedelta(days=i) for i in range(self.plan.days)]
        # The first morning and the first Friday fall after the start: every slot is due.
        workdays = {d.isoformat() for d in days if cal.is_workday(d)}
        fridays = {d.isoformat() for d in days if d.weekday() == self.settings.digest_weekday}
        if dict(f.morning_lists) != dict.fromkeys(sorted(workdays), 1):
            failures.append(
                f"morning lists: {_slots(f.morning_lists, workdays)} (one each working day)"
            )
        for name, seen in (("digests", f.digests), ("leaders' digests", f.leader_digests)):
            if dict(seen) != dict.fromkeys(sorted(fridays), 1):
                failures.append(f"{name}: {_slots(seen, fridays)} (one each Friday)")
        # Backups are dated by the day they are taken (03:00), from the second day on (the bot
        # starts at 07:00 on the first); only the last BACKUP_KEEP are kept on disk.
        expected_backups = {f"yimi-{d:%Y%m%d}.db" for d in days[1:]}
        if f.backups != expected_backups:
            failures.append(
                f"backups: missing {sorted(expected_backups - f.backups)}, "
                f"extra {sorted(f.backups - expected_backups)}"
            )
        for check in f.digest_checks:
            failures += [f"digest {check.at:%m-%d}: {d}" for d in check.differences]
        if len(f.digest_checks) != len(fridays):
            failures.append(f"digests compared with the ledger: {len(f.digest_checks)}")
        if self.errors.records:
            failures.append(
                f"{len(self.errors.records)} errors logged, first: {self.errors.records[0]}"
            )
        if self.privacy_leaks:
            failures.append(f"phone or contact name in a group: {self.privacy_leaks[0]}")
        if self.placeholders:
            failures.append(f"unformatted placeholder shown: {self.placeholders[0]!r}")
        db = await Database.open(self.settings.database_path)
        try:
            async with db.read() as repo:
                tickets = {t.id: t for t in await repo.tickets.all_tickets()}
                events = await repo.tickets.events_for(list(tickets))
                pending = await repo.outbox.outbox_counts()
        finally:
            await db.close()
        submitted = [t for t in tickets.values() if t.submitted_at is not None]
        if len(submitted) != f.receipts or set(self.tracks) != {t.id for t in submitted}:
            failures.append(f"tickets {len(submitted)} != receipts {f.receipts}")
        if f.receipts + f.drafts_cancelled > f.reports_sent:
            failures.append("more tickets than reports")
        if pending.get("pending", 0) or pending.get("failed", 0):
            failures.append(f"outbox left: {pending}")
        failures += self._check_reminders(tickets, events)
        return failures

    def _check_reminders(self, tickets: dict[int, Any], events: dict[int, list[Any]]) -> list[str]:
        failures: list[str] = []
        self.claims_held = self.claims_judged = 0
        self.reminder_kinds.clear()
        twice: list[str] = []
        claim_wrong: list[str] = []
        red_wrong: list[str] = []
        noeval_wrong: list[str] = []
        for tid, track in self.tracks.items():
            ticket = tickets[tid]
            keys = Counter(
                str(e.payload.get("key")) for e in events.get(tid, []) if e.action == "reminder"
            )
            twice += [f"{track.number} {k}×{n}" for k, n in keys.items() if n > 1]
            self.reminder_kinds.update(k.split(":")[0] for k in keys.elements())
            claim = {k for k in keys if k.startswith("claim_")}
            expected = {
                "prompt": set(),
                "late": {"claim_1h"},
                "very_late": {"claim_1h", "claim_2h_lead"},
                "escalated": {"claim_1h", "claim_2h_lead", "claim_1d_coord"},
            }.get(track.claim_kind)
            # Judged once the member has claimed (a claim planned after the end is not), and
            # not when the bot was down meanwhile: a 签收 pressed while it was down reaches it
            # at start, before its first tick, so no reminder is due any more.
            since = ticket.dispatched_at or ticket.submitted_at
            held = ticket.claimed_at is not None and any(
                down < ticket.claimed_at and since < up + STEP for down, up in self.downtimes
            )
            self.claims_held += held
            self.claims_judged += (
                expected is not None and ticket.claimed_at is not None and not held
            )
            if (
                expected is not None
                and ticket.claimed_at is not None
                and not held
                and claim != expected
            ):
                claim_wrong.append(f"{track.number} {track.claim_kind}: {sorted(claim)}")
            # Red is due when the ticket is still in the team's (or coordinators') hands a tick
            # after its deadline; never when it left them by then. (A 办结 within the 5 minutes
            # after the deadline may come before or after the tick: either is right.)
            due = ticket.due_at
            active = [u for st, u in _spans(events.get(tid, []), self.end) if st in ACTIVE]
            reds = {k for k in keys if k.startswith("red")}
            if due is not None and ticket.extension_count == 0:
                late = any(until > due + STEP for until in active)
                early = not any(until >= due for until in active)
                if (late and not reds) or (early and reds):
                    red_wrong.append(f"{track.number}: red {sorted(reds)}, late {late}")
            closed_noeval = sum(
                1 for e in events.get(tid, []) if e.payload.get("close_type") == "no_evaluation"
            )
            if closed_noeval > 1 or (closed_noeval == 1) != ("no_evaluation" in keys):
                noeval_wrong.append(track.number)
        for name, found in (
            ("reminder sent twice", twice),
            ("claim reminders not as the rules say", claim_wrong),
            ("red reminder not as the deadline says", red_wrong),
            ("no-evaluation close", noeval_wrong),
        ):
            if found:
                failures.append(f"{name}: {len(found)}, e.g. {found[:3]}")
        return failures


ACTIVE = frozenset({"pending_dispatch", "pending_claim", "in_progress"})


def _spans(events: list[Any], end: datetime) -> list[tuple[str, datetime]]:
    """(state, until) for each stretch of the ticket's life, from its event log."""
    moves = [(e.at, e.to_state) for e in events if e.to_state and e.to_state != e.from_state]
    return [
        (state, moves[i + 1][0] if i + 1 < len(moves) else end)
        for i, (_, state) in enumerate(moves)
    ]


def _slots(seen: Counter[str], expected: set[str]) -> str:
    twice = sorted(d for d, n in seen.items() if n > 1)
    skipped = sorted(expected - set(seen))
    extra = sorted(set(seen) - expected)
    return f"{sum(seen.values())} for {len(expected)} slots, twice {twice}, skipped {skipped}, extra {extra}"


def build_calendar(settings: Settings) -> Any:
    from bot.worktime.calendar import WorkCalendar

    return WorkCalendar(settings)


# -- figures on both sides -------------------------------------------------------------------

_TEAM_BY_NAME = {name: team for team, name in TEAM_NAMES.items()}


def digest_figures(text: str) -> dict[str, str]:
    """The figures of the digest as the coordinators read them."""
    out: dict[str, str] = {}

    def grab(key: str, pattern: str) -> None:
        found = re.search(pattern, text)
        if found:
            out[key] = found.group(1)

    grab("new", r"本周新增 (\d+) 件")
    grab("claim_rate", r"二、签收　及时率 (\S+?%|—)")
    grab("resolved_rate", r"三、办结　办结率 (\S+?%|—)")
    grab("resolved", r"办结 (\d+) 件；")
    grab("on_time_rate", r"四、按期办结率　(\S+?%|—)")
    grab("solved_rate", r"五、企业确认解决率　(\S+?%|—)")
    grab("satisfaction_rate", r"六、满意率　(\S+?%|—)")
    grab("rating_coverage", r"评价覆盖率 (\S+?%|—)")
    grab("avg_workdays", r"七、平均办结用时　(—|[\d.]+)")
    grab("returns", r"退单 (\d+) 次")
    grab("reopens", r"重办 (\d+) 次")
    grab("supervised", r"督办 (\d+) 件")
    for line in text.splitlines():
        name, _, rest = line.partition("：")
        team = _TEAM_BY_NAME.get(name)
        if team and rest.count("/") == 6:
            for key, value in zip(
                ("new", "resolved", "on_time_rate", "satisfaction_rate", "returns", "reopens",
                 "supervised"),
                rest.split("/"),
                strict=True,
            ):  # fmt: skip
                out[f"{team}.{key}"] = value
    return out


def ledger_figures(path: Path) -> dict[str, str]:
    """The same figures from the exported ledger: 分团统计 and the rows of 问题台账."""
    book = load_workbook(path, read_only=True)
    sheet = list(book["分团统计"].iter_rows(values_only=True))
    headers = [str(h) for h in sheet[0]]
    rows = {str(r[0]): dict(zip(headers, r, strict=False)) for r in sheet[1:] if r and r[0]}
    ledger = list(book["问题台账"].iter_rows(values_only=True))
    lh = [str(h) for h in ledger[0]]
    tickets = [dict(zip(lh, r, strict=False)) for r in ledger[1:] if r and isinstance(r[0], int)]
    book.close()

    def rate(value: Any) -> str:
        return pct(value if isinstance(value, float | int) else None)

    def count(rows_of: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> int:
        return sum(1 for r in rows_of if test(r))

    def resolved(r: dict[str, Any]) -> bool:
        return r["当前状态"] in (TicketState.PENDING_CONFIRM.label, TicketState.CLOSED.label)

    out: dict[str, str] = {}
    total = rows["合计"]
    closed = [r for r in tickets if r["当前状态"] == TicketState.CLOSED.label]
    out["new"] = str(len(tickets))
    out["claim_rate"] = rate(total["签收及时率"])
    out["resolved_rate"] = rate(total["办结率"])
    out["resolved"] = str(count(tickets, resolved))
    out["on_time_rate"] = rate(total["按期办结率"])
    out["solved_rate"] = rate(total["解决率"])
    out["satisfaction_rate"] = rate(total["满意率"])
    out["rating_coverage"] = pct(
        count(closed, lambda r: bool(r["企业评价"])) / len(closed) if closed else None
    )
    avg = total["平均办结时长(工作日)"]
    out["avg_workdays"] = "—" if avg is None else f"{avg:.1f}"
    out["returns"] = str(total["退单数"])
    out["reopens"] = str(total["重办数"])
    out["supervised"] = str(count(tickets, lambda r: (r["督办次数"] or 0) > 0))
    for team, name in TEAM_NAMES.items():
        row = rows[name]
        mine = [r for r in tickets if r["责任一米团"] == name]
        out[f"{team}.new"] = str(len(mine))
        out[f"{team}.resolved"] = str(count(mine, resolved))
        out[f"{team}.on_time_rate"] = rate(row["按期办结率"])
        out[f"{team}.satisfaction_rate"] = rate(row["满意率"])
        out[f"{team}.returns"] = str(row["退单数"])
        out[f"{team}.reopens"] = str(row["重办数"])
        out[f"{team}.supervised"] = str(count(mine, lambda r: (r["督办次数"] or 0) > 0))
    return out
