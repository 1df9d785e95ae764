"""What the shared sending budget costs: one reservation against a bare round trip.

    .venv/bin/python bench/budget.py [--rounds 5] [--count 2000]

On a throwaway PostgreSQL server (bot.storage.pgserver): the time per `SharedBudget.reserve`
(the statement every message sent by several processes makes, bot/storage/budget.py) from one
connection, and from three connections at once on the same bucket (three processes contending
for one row), against `SELECT 1` on the same connections in the same rounds (the least a round
trip costs). Medians of the rounds; the limits' own waits are left out (a bucket too large to
run dry).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.storage import pgserver  # noqa: E402
from bot.storage.budget import Bucket, SharedBudget  # noqa: E402
from bot.storage.db import Database  # noqa: E402

BUCKETS = [Bucket("telegram", 1e9, 1e9), Bucket("telegram:-100", 1e9, 1e9)]  # never dry


async def per_call(budgets: list[SharedBudget], count: int, *, bare: bool) -> float:
    """Milliseconds per call, `count` calls from each budget's connection at once."""

    async def one(budget: SharedBudget) -> None:
        for _ in range(count):
            if bare:
                async with budget._lock:
                    await budget.conn.execute_fetchall("SELECT 1")
            else:
                await budget.reserve(BUCKETS)

    start = time.perf_counter()
    await asyncio.gather(*(one(b) for b in budgets))
    return (time.perf_counter() - start) * 1000 / (count * len(budgets))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    server = pgserver.start(Path(tempfile.mkdtemp(prefix="yimi-bench-pg-")) / "pg")
    try:
        await (await Database.connect(server.url())).close()  # the schema
        budgets = [await SharedBudget.open(server.url()) for _ in range(3)]
        figures: dict[str, list[float]] = {k: [] for k in ("bare1", "res1", "bare3", "res3")}
        for _ in range(args.rounds):  # in turns, so load changes hit all alike
            figures["bare1"].append(await per_call(budgets[:1], args.count, bare=True))
            figures["res1"].append(await per_call(budgets[:1], args.count, bare=False))
            figures["bare3"].append(await per_call(budgets, args.count, bare=True))
            figures["res3"].append(await per_call(budgets, args.count, bare=False))
        for budget in budgets:
            await budget.close()
    finally:
        server.stop()
    med = {k: statistics.median(v) for k, v in figures.items()}
    print(f"medians of {args.rounds} rounds of {args.count} calls per connection (ms per call)")
    print(
        f"  1 connection:  SELECT 1 {med['bare1']:.3f}   reserve {med['res1']:.3f}"
        f"   ({med['res1'] / med['bare1']:.2f}x a bare round trip)"
    )
    print(
        f"  3 connections: SELECT 1 {med['bare3']:.3f}   reserve {med['res3']:.3f}"
        f"   ({med['res3'] / med['bare3']:.2f}x; one bucket row, contended)"
    )
    print("  Telegram's 30 messages a second leave 33.3 ms between messages")


if __name__ == "__main__":
    asyncio.run(main())
