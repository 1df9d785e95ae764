"""Flood benchmark: one firm floods the bot while 20 others report and press 确认提交.

    .venv/bin/python bench/flood.py [--flood 1000] [--firms 20]

The real Application polls the fake Bot API on 127.0.0.1 (bot/channels/simulator/fakeapi.py:
50 ms per call, Telegram's send limits enforced) and the real delivery loop sends the outbox, on
a SQLite file; registrations and bindings are seeded (bench/burst.py). Two rounds in one run on
the same bot: the 20 firms alone, then 20 other firms while a registered firm sends FLOOD updates
in 1.3 s (70 % short texts, 20 % texts of 4,000 characters, 10 % presses of a stale button).
Printed, per round: report → proposal and 确认提交 → receipt (median / max), presses answered
late (more than LATE s after the press, or never), and the replies the flooder got.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from burst import FIRM0, TEAMS, Bot, seed, settings_for, team_texts, world  # noqa: E402

from bot.channels.simulator.fakeapi import FakeBotAPI  # noqa: E402

LATENCY = 0.05
LATE = 10.0  # seconds: Telegram gives up on an answer to a press after about this long
FLOODER = FIRM0


@dataclass
class Observer:
    """Times of what each firm sees, from the fake's events."""

    api: FakeBotAPI
    active: set[int] = field(default_factory=set)
    reported: dict[int, float] = field(default_factory=dict)
    proposed: dict[int, float] = field(default_factory=dict)
    pressed: dict[int, float] = field(default_factory=dict)
    receipted: dict[int, float] = field(default_factory=dict)
    presses: dict[str, float] = field(default_factory=dict)  # query id → when pressed
    answers: dict[str, float] = field(default_factory=dict)
    flooder_replies: list[float] = field(default_factory=list)

    def __call__(self, event: Any) -> None:
        now = time.monotonic()
        if event.kind == "callback_answer":
            self.answers.setdefault(str(event.data.get("query_id")), now)
            return
        message = event.message
        if event.kind != "message" or not message or event.chat_id is None:
            return
        if message.get("from", {}).get("id") != self.api.bot_id:
            return
        chat, text = int(event.chat_id), str(message.get("text") or "")
        if chat == FLOODER:
            self.flooder_replies.append(now)
        if chat not in self.active:
            return
        if "工单编号" in text and chat not in self.receipted:
            self.receipted[chat] = now
        elif chat not in self.pressed:
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == "✅ 确认提交":
                        self.proposed[chat] = now
                        self.pressed[chat] = now
                        query = self.api.press_button(
                            chat, chat, message["message_id"], button["callback_data"]
                        )
                        self.presses[query] = now

    def press(self, chat: int, message_id: int, data: str) -> None:
        query = self.api.press_button(chat, chat, message_id, data, check=False)
        self.presses[query] = time.monotonic()


async def flood(api: FakeBotAPI, obs: Observer, n: int, seconds: float) -> None:
    """The flooder's updates, spread over `seconds`."""
    stale = next(
        m
        for m in reversed(api.chat_messages(FLOODER))
        if m.get("from", {}).get("id") == api.bot_id and m.get("reply_markup")
    )
    step = seconds / n
    start = time.monotonic()
    for i in range(n):
        if i % 10 == 9:
            obs.press(FLOODER, stale["message_id"], "v1:confirm:999999:")
        elif i % 10 in (7, 8):
            api.send_text(FLOODER, FLOODER, "设备" * 2000)
        else:
            api.send_text(FLOODER, FLOODER, f"第{i}条：厂里的事")
        ahead = start + (i + 1) * step - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)


async def round_(
    api: FakeBotAPI, obs: Observer, firms: list[int], texts: dict[str, list[str]], n_flood: int
) -> dict[str, Any]:
    obs.active = set(firms)
    obs.presses.clear()
    obs.answers.clear()
    obs.flooder_replies.clear()
    start = time.monotonic()
    flooding = asyncio.create_task(flood(api, obs, n_flood, 1.3)) if n_flood else None
    if flooding is not None:
        await asyncio.sleep(0.2)  # the others write while the flood is on
    for i, firm in enumerate(firms):
        team = TEAMS[i % len(TEAMS)]
        obs.reported[firm] = time.monotonic()
        api.send_text(firm, firm, texts[team][i % len(texts[team])])
    deadline = start + 300
    while time.monotonic() < deadline:
        done = all(f in obs.receipted for f in firms)
        if done and (flooding is None or flooding.done()) and api.updates_pending() == 0:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(LATE)  # presses still unanswered after this are late
    if flooding is not None:
        await flooding

    def spans(a: dict[int, float], b: dict[int, float]) -> list[float]:
        return [b[f] - a[f] for f in firms if f in a and f in b]

    late = sum(1 for q, at in obs.presses.items() if obs.answers.get(q, float("inf")) - at > LATE)
    per_second: dict[int, int] = defaultdict(int)
    for at in obs.flooder_replies:
        per_second[int(at - start)] += 1
    return {
        "proposal": spans(obs.reported, obs.proposed),
        "receipt": spans(obs.pressed, obs.receipted),
        "missing": sum(1 for f in firms if f not in obs.receipted),
        "late": late,
        "presses": len(obs.presses),
        "flooder": len(obs.flooder_replies),
        "flooder_peak": max(per_second.values(), default=0),
    }


def med_max(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.2f} / {max(values):.2f} s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--firms", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    n = args.firms
    firms = [FIRM0 + i for i in range(1 + 2 * n)]  # the flooder, the alone round, the flood round
    texts = team_texts()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "flood.db"
        await seed(db, firms)
        api = world(0.0, True, firms)
        await api.start()
        obs = Observer(api)
        api.subscribe(obs)
        bot = Bot(settings_for(api, db))
        await bot.start()
        api.latency = LATENCY
        api.send_text(FLOODER, FLOODER, "厂里变压器老是跳闸")  # a proposal: its buttons go stale
        await api.wait_for(lambda: len(api.chat_messages(FLOODER)) >= 2, timeout=30)
        await asyncio.sleep(1.0)
        alone = await round_(api, obs, firms[1 : 1 + n], texts, 0)
        await asyncio.sleep(2.0)
        flooded = await round_(api, obs, firms[1 + n :], texts, args.flood)
        await bot.stop()
        await api.stop()
    rows = [
        ("", "alone", f"with the flood ({args.flood} updates in 1.3 s)", "target"),
        (
            "report → proposal, median / max",
            med_max(alone["proposal"]),
            med_max(flooded["proposal"]),
            "",
        ),
        (
            "确认提交 → receipt, median / max",
            med_max(alone["receipt"]),
            med_max(flooded["receipt"]),
            "median ≤ 3× alone, max ≤ 10 s",
        ),
        ("firms without a receipt", str(alone["missing"]), str(flooded["missing"]), "0"),
        (
            f"presses answered after {LATE:.0f} s or never",
            f"{alone['late']} of {alone['presses']}",
            f"{flooded['late']} of {flooded['presses']}",
            "0",
        ),
        (
            "replies to the flooder (most in one second)",
            "—",
            f"{flooded['flooder']} ({flooded['flooder_peak']})",
            "a few a second",
        ),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
