"""WeCom burst: N firms on WeChat report and confirm at once; teams are WeCom departments.

    .venv/bin/python bench/wecom_burst.py [--firms 200] [--kill]

The bot runs as its own process (`python -m bot run` with only the WECOM_* settings) against
the fake WeCom server on 127.0.0.1 with WeCom's limits enforced (30 messages a minute to one
member, 5 kf messages in the 48 hours after a firm's message) and LATENCY per API call.
Registrations and bindings are seeded into the database; the burst itself goes through
encrypted callbacks and kf/sync_msg. Printed: time until every firm has its receipt and every
member of the ticket's team has a card showing its number, against the bound WeCom's limits
give; receipts and cards lost or duplicated; the outbox's final states. ``--kill`` SIGKILLs the
bot once a third of the receipts are out, starts it again on the same database and checks that
nothing is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.channels.simulator.fakewecom import FakeWeCom  # noqa: E402
from bot.classify.classifier import DOMAIN_IDS, get_classifier  # noqa: E402
from bot.core.ports import SystemClock  # noqa: E402
from bot.storage.db import Database  # noqa: E402

TEAMS = list(DOMAIN_IDS)
MEMBERS_PER_TEAM = 2
DEPT0 = 100
COORD_DEPT = 99
NUMBER = re.compile(r"YM-\d{8}-\d{4}")
LATENCY = 0.05
MEMBER_CAP = 30  # messages a minute to one member


def firm(n: int) -> str:
    return f"wmBurst{n:05d}"


def member(team: int, k: int) -> str:
    return f"t{team}m{k}"


def team_texts() -> dict[str, list[str]]:
    """Report texts the classifier routes straight to each team (from the held-out probe)."""
    classifier = get_classifier()
    found: dict[str, list[str]] = {t: [] for t in TEAMS}
    for line in (ROOT / "tests/data/heldout_probe.jsonl").read_text().splitlines():
        item = json.loads(line)
        result = classifier.classify(item["text"])
        if result.routable and result.primary in TEAMS and result.primary == item["labels"][0]:
            found[result.primary].append(item["text"])
    missing = [t for t in TEAMS if not found[t]]
    if missing:
        raise SystemExit(f"no routable probe text for {missing}")
    return found


async def seed(db_path: Path, n: int) -> None:
    """Registered firms and bound departments, straight into the database (not measured)."""
    db = await Database.open(db_path)
    now = SystemClock("Asia/Shanghai").now()
    async with db.tx() as repo:
        for i, team in enumerate(TEAMS):
            await repo.users.bind(
                f"wecom:dept:{DEPT0 + i}", team, f"dept:{DEPT0 + i}", "wecom:boss", now
            )
        await repo.users.bind(
            f"wecom:dept:{COORD_DEPT}", "coordinator", "dept:99", "wecom:boss", now
        )
        for k in range(n):
            ident = f"wxkf:{firm(k)}"
            await repo.users.upsert_user(ident, "微信用户", None, now)
            enterprise = await repo.users.insert_enterprise(
                f"压测企业{k:04d}有限公司", None, "城关镇", now
            )
            await repo.users.update_user(
                ident,
                now,
                enterprise_id=enterprise,
                contact_name=f"张{k:04d}",
                phone=f"138{k:08d}",
                private_started=1,
                reg_step=None,
            )
    await db.close()


def organisation(fake: FakeWeCom, n: int) -> None:
    fake.add_department(COORD_DEPT, "专班")
    fake.add_member("boss", "赵主任", [COORD_DEPT])
    for i, team in enumerate(TEAMS):
        fake.add_department(DEPT0 + i, team)
        for k in range(MEMBERS_PER_TEAM):
            fake.add_member(member(i, k), f"成员{i}-{k}", [DEPT0 + i])
    for k in range(n):
        fake.add_customer(firm(k))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessBot:
    """`python -m bot run` on WeCom alone, so that a kill is a real SIGKILL."""

    def __init__(self, fake: FakeWeCom, db: Path) -> None:
        self.fake = fake
        self.db = db
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "DATABASE_PATH": str(self.db),
            "WECOM_CORP_ID": self.fake.corp_id,
            "WECOM_AGENT_ID": str(self.fake.agent_id),
            "WECOM_SECRET": self.fake.secret,
            "WECOM_TOKEN": self.fake.token,
            "WECOM_AES_KEY": self.fake.aes_key,
            "WECOM_KF_ID": self.fake.open_kfid,
            "WECOM_ADMIN_IDS": "boss",
            "WECOM_API_BASE": self.fake.base_url,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(self.port),
            "OUTBOX_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "ERROR",
        }
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self.fake.callback_url = f"http://127.0.0.1:{self.port}/wecom/callback"
        deadline = time.monotonic() + 60
        while True:
            try:
                if (await self.fake.verify_url("up")).body == b"up":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.returncode is not None:
                raise SystemExit("the bot did not start")
            await asyncio.sleep(0.1)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        await self.proc.wait()


class Watch:
    """What firms and members see in the fake; presses 确认 on each firm's proposal once."""

    def __init__(self, fake: FakeWeCom, n: int) -> None:
        self.fake = fake
        self.n = n
        self.pressed: set[str] = set()
        self.receipts: Counter[str] = Counter()
        self.numbers: dict[str, str] = {}
        self.seen: dict[str, int] = {}

    async def poll(self) -> None:
        presses = []
        for k in range(self.n):
            name = firm(k)
            received = self.fake.customers[name].received
            start = self.seen.get(name, 0)
            for m in received[start:]:
                if m["msgtype"] == "text" and "已提交" in m["text"]["content"]:
                    self.receipts[name] += 1
                    found = NUMBER.search(m["text"]["content"])
                    if found:
                        self.numbers[name] = found.group()
                elif m["msgtype"] == "msgmenu" and name not in self.pressed:
                    for item in m["msgmenu"]["list"]:
                        if "确认" in item["click"]["content"]:
                            self.pressed.add(name)
                            presses.append((name, item["click"]["id"]))
            self.seen[name] = len(received)
        for name, menu_id in presses:
            await self.fake.customer_writes(name, item_text(menu_id), menu_id=menu_id)

    def cards(self) -> dict[str, Counter[str]]:
        """Per member, each ticket number's cards."""
        out: dict[str, Counter[str]] = {}
        for userid, chat in self.fake.chats.items():
            found: Counter[str] = Counter()
            for m in chat:
                if m.msgtype == "template_card":
                    # the card's own number comes first (可能相关 may name others after it)
                    found.update(NUMBER.findall(m.text)[:1])
            out[userid] = found
        return out

    def done(self, expected: dict[str, int]) -> bool:
        if len(self.numbers) < self.n:
            return False
        cards = self.cards()
        for name, number in self.numbers.items():
            team = expected[name]
            if any(
                cards.get(member(team, k), Counter())[number] == 0 for k in range(MEMBERS_PER_TEAM)
            ):
                return False
        return True


def firm_duplicates(fake: FakeWeCom, n: int) -> int:
    """Messages a firm got twice (the same type and content again), over all kf messages."""
    dups = 0
    for k in range(n):
        seen: Counter[str] = Counter()
        for m in fake.customers[firm(k)].received:
            seen[json.dumps([m["msgtype"], m[m["msgtype"]]], sort_keys=True)] += 1
        dups += sum(c - 1 for c in seen.values())
    return dups


def item_text(menu_id: str) -> str:
    return "✅ 确认提交" if ":confirm:" in menu_id else ""


def bound(n: int) -> tuple[float, str]:
    """The least time WeCom's limits allow: each member takes 30 messages a minute."""
    per_member = math.ceil(n / len(TEAMS))
    minutes = max(0, math.ceil(per_member / MEMBER_CAP) - 1)
    seconds = minutes * 60.0 + 6 * LATENCY
    formula = (
        f"T = (ceil(ceil(N/{len(TEAMS)}) / {MEMBER_CAP}) − 1) min + 6×latency = "
        f"{minutes} min + 6×{LATENCY:.2f} s = {seconds:.1f} s"
    )
    return seconds, formula


async def wecom_burst(n: int, tmp: Path, kill_after: int | None = None) -> dict[str, Any]:
    texts = team_texts()
    db_path = tmp / "wecom-burst.db"
    await seed(db_path, n)
    async with FakeWeCom(latency=LATENCY) as fake:
        organisation(fake, n)
        bot = ProcessBot(fake, db_path)
        await bot.start()
        watch = Watch(fake, n)
        expected = {firm(k): k % len(TEAMS) for k in range(n)}
        start = time.monotonic()
        writes = []
        for k in range(n):
            team = TEAMS[k % len(TEAMS)]
            pool = texts[team]
            writes.append(fake.customer_writes(firm(k), pool[(k // len(TEAMS)) % len(pool)]))
        for i in range(0, len(writes), 16):  # WeCom posts callbacks with some concurrency
            await asyncio.gather(*writes[i : i + 16])
        restarted = False
        deadline = start + 900
        while not watch.done(expected) and time.monotonic() < deadline:
            await watch.poll()
            if kill_after is not None and not restarted and len(watch.numbers) >= kill_after:
                await bot.kill()
                bot = ProcessBot(fake, db_path)
                await bot.start()
                restarted = True
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - start
        await asyncio.sleep(1.0)  # anything late or doubled shows now
        await watch.poll()
        await bot.stop()
        cards = watch.cards()
        firm_dups = firm_duplicates(fake, n)
        repeats = len(fake.kf_repeats)
    db = await Database.open(db_path)
    async with db.read() as repo:
        tickets = await repo.tickets.all_tickets()
        outbox = await repo.outbox.outbox_counts()
    await db.close()
    submitted = [t for t in tickets if t.number]
    lost_cards = 0
    dup_cards = 0
    per_member: Counter[str] = Counter()
    for name, number in watch.numbers.items():
        for k in range(MEMBERS_PER_TEAM):
            count = cards.get(member(expected[name], k), Counter())[number]
            lost_cards += count == 0
            dup_cards += max(0, count - 1)
            per_member[member(expected[name], k)] += max(0, count - 1)
    # Delivery is ordered per chat, so a kill can leave at most one send per chat in flight.
    max_dup_per_chat = max([*(c - 1 for c in watch.receipts.values()), *per_member.values(), 0])
    limit, formula = bound(n)
    return {
        "firms": n,
        "seconds": elapsed,
        "bound": limit,
        "formula": formula,
        "tickets": len(submitted),
        "lost_receipts": n - len(watch.numbers),
        "dup_receipts": sum(max(0, c - 1) for c in watch.receipts.values()),
        "lost_cards": lost_cards,
        "dup_cards": dup_cards,
        "max_dup_per_chat": max_dup_per_chat,
        "firm_dups": firm_dups,
        "kf_repeats_refused": repeats,
        "member_dups": sum(per_member.values()),
        "outbox": outbox,
        "restarted": restarted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--firms", type=int, default=200)
    parser.add_argument("--kill", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = asyncio.run(
            wecom_burst(args.firms, Path(folder), args.firms // 3 if args.kill else None)
        )
    print(
        f"firms on WeChat: {result['firms']}, teams: {len(TEAMS)} departments × {MEMBERS_PER_TEAM} members"
    )
    print(f"every receipt and every member's card: {result['seconds']:.1f} s")
    print(f"bound from WeCom's limits: {result['bound']:.1f} s   ({result['formula']})")
    print(f"ratio: {result['seconds'] / result['bound']:.2f}×")
    print(
        f"tickets {result['tickets']}; receipts lost {result['lost_receipts']}, "
        f"doubled {result['dup_receipts']}; cards lost {result['lost_cards']}, "
        f"doubled {result['dup_cards']}; outbox {result['outbox']}"
        + ("; killed and restarted once" if result["restarted"] else "")
    )
    print(
        f"firms' side (微信客服): messages shown twice {result['firm_dups']}, "
        f"repeats WeCom refused by msgid {result['kf_repeats_refused']}; "
        f"members' side (app, no msgid): cards shown twice {result['member_dups']}"
    )


if __name__ == "__main__":
    main()
