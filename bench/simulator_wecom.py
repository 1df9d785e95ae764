"""The simulator's WeChat/WeCom mode against its Telegram mode: how long a person waits.

    .venv/bin/python bench/simulator_wecom.py [--rounds 40]

Both simulators run in this process in the same run, each on a fresh database of its own: the
Telegram-like one (fake Bot API, the real bot polling it) is the baseline; the WeChat/WeCom one
posts an encrypted kf_msg_or_event callback to the real /wecom/callback, the channel pulls the
message with kf/sync_msg, the workflow answers through the outbox and kf/send_msg. Measured from
the firm's action to the bot's first answer reaching the fake (what the page shows next), for
a command answered from text (/help) and one read from the database (/my, the firm's tickets),
rounds interleaved.
Rounds are 1.05 s apart (the fake Bot API holds a private chat to Telegram's one message a
second; 微信客服's 5 messages in 48 hours start again with each message of the firm). Printed:
p50 / p99 per mode and action, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.channels.simulator.server import FIRM_ZHANG as TG_FIRM  # noqa: E402
from bot.channels.simulator.server import Simulator  # noqa: E402
from bot.channels.simulator.wecomsim import FIRM_ZHANG as WX_FIRM  # noqa: E402
from bot.channels.simulator.wecomsim import WeComSimulator  # noqa: E402
from bot.config import Settings  # noqa: E402

# Commands that answer with a new message on both (a report's proposal is edited in place on
# Telegram when the draft grows, so it is not a round trip there).
ACTIONS = {"/help": "/help", "/my": "/my"}


async def telegram_round(sim: Simulator, text: str) -> float:
    assert sim.api is not None
    started = time.perf_counter()
    sent = sim.api.send_text(TG_FIRM, TG_FIRM, text)
    await sim.api.wait_for_message(TG_FIRM, after=sent["message_id"], timeout=20)
    return time.perf_counter() - started


async def wecom_round(sim: WeComSimulator, text: str) -> float:
    before = len(sim.log[WX_FIRM])
    started = time.perf_counter()
    await sim.customer_writes(WX_FIRM, text)
    deadline = started + 20
    while not any(e["from"] == "bot" for e in sim.log[WX_FIRM][before:]):
        if time.perf_counter() > deadline:
            raise TimeoutError("no answer in WeChat")
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


def settings(folder: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_path=folder / "yimi.db",
        simulator_database_path=folder / "simulator.db",
        towns=["城关镇", "大营镇"],
        # Telegram's flood guard (8 at once, then one every 2 s per person) would refuse the
        # rounds; it is not what is measured here.
        flood_burst=1_000_000,
        flood_per_second=1_000.0,
    )


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tg = Simulator(settings(Path(tmp) / "tg"), port=0)
        wx = WeComSimulator(settings(Path(tmp) / "wx"), port=0)
        (Path(tmp) / "tg").mkdir()
        (Path(tmp) / "wx").mkdir()
        await tg.start()
        await wx.start()
        assert tg.health()["ok"] and wx.health()["ok"], (tg.error, wx.error)
        times: dict[tuple[str, str], list[float]] = {}
        try:
            for _ in range(3):  # warm-up: caches, the classifier's first cut
                for text in ACTIONS.values():
                    await telegram_round(tg, text)
                    await wecom_round(wx, text)
            for _ in range(rounds):
                for name, text in ACTIONS.items():
                    times.setdefault(("telegram", name), []).append(await telegram_round(tg, text))
                    times.setdefault(("wecom", name), []).append(await wecom_round(wx, text))
                    # The fake Bot API holds private chats to Telegram's one message a second.
                    await asyncio.sleep(1.05)
        finally:
            await wx.stop()
            await tg.stop()
    print(f"simulator: the firm's action → the bot's first answer, {rounds} rounds each")
    print(f"{'action':<8} {'mode':<26} {'p50 ms':>8} {'p99 ms':>8} {'vs Telegram':>12}")
    for name in ACTIONS:
        base = statistics.median(times[("telegram", name)])
        for mode, label in (
            ("telegram", "Telegram (fake Bot API)"),
            ("wecom", "WeChat (kf, callback)"),
        ):
            values = times[(mode, name)]
            ratio = statistics.median(values) / base
            print(
                f"{name:<8} {label:<26} {p(values, 0.5):8.1f} {p(values, 0.99):8.1f} {ratio:11.2f}×"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.rounds))
