"""Benchmark: what 合并 costs the Friday figures and the ledger, on 100,000 tickets in SQLite.

Run: ``.venv/bin/python bench/merge.py [--n 100000] [--merged 0.05]``. Prints figures (not a
test). A share of the tickets is merged into earlier tickets of the same team. Baselines in the
same run, on the same database: the grouped statistics query as it was before merging existed
(no ``merged_into`` condition, no second query), and the ledger's sheets built from the same
tickets with ``merged_into`` cleared (no reordering, no notes). Rounds are interleaved and the
best of each is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import NOW, generate
from seed import with_facts

from bot.config import Settings
from bot.reporting.ledger import ledger_sheets
from bot.reporting.stats import from_groups, period_bounds
from bot.storage import rows
from bot.storage.db import Database, Repo, ts
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy

# The grouped query before merging (bot.storage.rows.PERIOD_GROUPS without merged_into).
BEFORE = rows.PERIOD_GROUPS.replace("  AND merged_into IS NULL\n", "")


async def once(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--merged", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    calendar = WorkCalendar(settings)
    policy = DeadlinePolicy(settings, calendar)
    folder = Path(tempfile.mkdtemp())
    db = await Database.open(folder / "bench.db")
    try:
        tickets = with_facts(generate(args.n, 7, policy), policy)
        async with db.tx() as repo:
            await repo.tickets.import_tickets(tickets, NOW)
            merged = await merge_some(repo, args.merged)
        print(f"yimi-bot 合并 benchmark: {args.n:,} tickets, {merged:,} of them merged")
        start, end = period_bounds("year", NOW)
        params = {"start": ts(start), "end": ts(end), "as_of": ts(NOW)}
        async with db.read() as repo:
            plan = await repo.conn.execute_fetchall(
                "EXPLAIN QUERY PLAN " + rows.PERIOD_MERGED, params
            )
            loaded = await repo.tickets.all_tickets()
            events = await repo.tickets.events_for([t.id for t in loaded])
        print("  plan of the merged-tickets query: " + "; ".join(str(r[3]) for r in plan))
        plain = [t.model_copy(update={"merged_into": None}) for t in loaded]

        async def before() -> None:
            async with db.read() as repo:
                from_groups(
                    start, end, [dict(r) for r in await repo.conn.execute_fetchall(BEFORE, params)]
                )

        async def after() -> None:
            async with db.read() as repo:
                from_groups(start, end, await repo.stats.period_groups(start, end, NOW))

        def sheets(items: list[Any]) -> Callable[[], Awaitable[None]]:
            async def build() -> None:
                ledger_sheets(
                    items,
                    events,
                    now=NOW,
                    exporter_name="bench",
                    exporter_is_admin=False,
                    calendar=calendar,
                    policy=policy,
                )

            return build

        timings: dict[str, list[float]] = {}
        cases = {
            "year's groups, query before merging (baseline)": before,
            "year's groups, with merged tickets apart": after,
            "ledger sheets, merged_into cleared (baseline)": sheets(plain),
            "ledger sheets, merged listed under their main": sheets(loaded),
        }
        for _ in range(args.rounds):
            for label, fn in cases.items():
                timings.setdefault(label, []).append(await once(fn))
        for label, values in timings.items():
            print(f"  {label:<50} {min(values):9.1f} ms")
        async with db.read() as repo:
            check = from_groups(start, end, await repo.stats.period_groups(start, end, NOW)).overall
        print(f"  year: {check.valid:,} problems (not cancelled), {check.firms:,} firms affected")
    finally:
        await db.close()


async def merge_some(repo: Repo, share: float) -> int:
    """Merge `share` of the open and closed tickets into an earlier ticket of their team."""
    found = await repo.conn.execute_fetchall(
        "SELECT id, team_id FROM tickets WHERE state NOT IN ('draft', 'cancelled') "
        "AND team_id IS NOT NULL ORDER BY id"
    )
    rng = random.Random(7)
    mains: dict[str, int] = {}
    merged = 0
    for row in found:
        team, ticket_id = str(row[1]), int(row[0])
        if team in mains and rng.random() < share:
            await repo.conn.execute(
                "UPDATE tickets SET merged_into = ? WHERE id = ?", (mains[team], ticket_id)
            )
            merged += 1
        elif team not in mains or rng.random() < 0.2:
            mains[team] = ticket_id
    return merged


if __name__ == "__main__":
    asyncio.run(main())
