"""Benchmark: /stats and the ledger export through the real path, on 100,000 tickets in SQLite.

Run: ``.venv/bin/python bench/stats.py [--n 100000] [--postgres]``. Prints figures (not a test).
Baselines in the same run: a full-table COUNT(*) and the ticket-by-ticket computation over loaded
models. ``--postgres``: on a throwaway PostgreSQL server (bot.storage.pgserver) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
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
from bot.reporting.service import Reports
from bot.reporting.stats import build_digest
from bot.storage import pgserver
from bot.storage.db import Database
from bot.workflow.rights import NoMembership, Rights
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy


class FixedClock:
    def now(self) -> Any:
        return NOW


async def best(k: int, fn: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(k):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL server")
    args = parser.parse_args()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    calendar = WorkCalendar(settings)
    policy = DeadlinePolicy(settings, calendar)
    folder = Path(tempfile.mkdtemp())
    server = pgserver.start(folder / "pg") if args.postgres else None
    try:
        db = await (Database.connect(server.url()) if server else Database.open(folder / "b.db"))
        try:
            await run(db, settings, calendar, policy, folder, args.n)
        finally:
            await db.close()
    finally:
        if server is not None:
            server.stop()


async def run(
    db: Database,
    settings: Settings,
    calendar: WorkCalendar,
    policy: DeadlinePolicy,
    folder: Path,
    n: int,
) -> None:
    """Seed, then time the real /stats and export paths against the baselines."""
    tickets = with_facts(generate(n, 7, policy), policy)
    started = time.perf_counter()
    async with db.tx() as repo:
        await repo.tickets.import_tickets(tickets, NOW)
    if db.dialect != "sqlite":  # what autovacuum does soon after a bulk load, done at once
        async with db.read() as repo:
            await repo.conn.execute("VACUUM ANALYZE")
    backend = "SQLite" if db.dialect == "sqlite" else "PostgreSQL"
    print(f"yimi-bot /stats and export benchmark: {n:,} tickets in {backend}")
    print(f"  seed the database                          {time.perf_counter() - started:8.2f} s")
    reports = Reports(
        db,
        settings,
        FixedClock(),
        calendar,
        policy,
        Rights(db, NoMembership(), settings.counties()),
    )

    async def count() -> None:
        async with db.read() as repo:
            await repo.conn.execute("SELECT COUNT(*), SUM(reopen_count) FROM tickets")

    print(f"  baseline: full scan COUNT(*)               {await best(5, count):8.1f} ms")
    for kind in ("week", "month", "year"):
        ms = await best(5, lambda kind=kind: reports.stats_text(None, kind))  # type: ignore[misc]
        print(f"  /stats {kind:<5} all teams (SQL + render)     {ms:8.1f} ms   target <= 200 ms")
    ms = await best(5, lambda: reports.stats_text("finance", "week"))
    print(f"  /stats week  one team                      {ms:8.1f} ms")

    async def python_path() -> None:
        async with db.read() as repo:
            loaded = await repo.tickets.all_tickets()
        build_digest(loaded, now=NOW, policy=policy, kind="week")

    ms = await best(1, python_path)
    print(f"  baseline: load all models + compute digest {ms:8.1f} ms")
    out = folder / "ledger.xlsx"
    started = time.perf_counter()
    _, rows = await reports.export(
        out, start=None, end=None, exporter_id=None, exporter_name="bench", exporter_is_admin=False
    )
    seconds = time.perf_counter() - started
    print(f"  export {rows:,} rows from the database      {seconds:8.2f} s     target <= 10 s")
    print(f"  xlsx size                                  {out.stat().st_size / 2**20:8.1f} MiB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process                   {peak:8.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
