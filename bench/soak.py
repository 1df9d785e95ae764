"""A county's month in an hour: the soak on the test clock (issue 14, item 4).

    .venv/bin/python bench/soak.py [--days 30] [--firms 300] [--reports 2000] [--quiet]

The real Telegram Application (the Bot API replaced at the transport by tests/fakes.py's
recording fake), handlers, workflow, classifier, SQLite file, delivery code and the jobs the
application registers, on a clock the driver moves in 5-minute steps (tests/soak.py, shared
with tests/test_soak.py). 21 Sep – 20 Oct 2026 by default: National Day's week off and its two
make-up working days inside. Printed: wall time, reports and tickets, each job's firings
against its slots, reminders, RSS at start, after a week's warm-up and at the end, the database
size, and the digest-against-ledger comparison. Exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.soak import MONTH, Soak  # noqa: E402

RSS_GROWTH_MB = 20.0
DB_MB = 50.0


def table(rows: list[tuple[str, str, str]]) -> str:
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=MONTH.days)
    parser.add_argument("--firms", type=int, default=MONTH.firms)
    parser.add_argument("--reports", type=int, default=MONTH.reports)
    parser.add_argument("--seed", type=int, default=MONTH.seed)
    parser.add_argument("--quiet", action="store_true", help="no line per simulated day")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    plan = replace(MONTH, days=args.days, firms=args.firms, reports=args.reports, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        soak = Soak(plan, Path(tmp))
        began = time.monotonic()
        figures = await soak.run(None if args.quiet else lambda line: print(line, flush=True))
        wall = time.monotonic() - began
        failures = await soak.check()
    f = figures
    reminders: Counter[str] = soak.reminder_kinds
    growth = f.rss_end_mb - f.rss_warm_mb
    compared = sum(c.compared for c in f.digest_checks)
    differing = sum(len(c.differences) for c in f.digest_checks)
    slots = soak.slots()
    rows = [
        ("measure", "value", "target"),
        ("simulated", f"{plan.start} + {plan.days} days, 5-minute steps", ""),
        ("wall time", f"{wall:.0f} s ({wall / 60:.1f} min)", "well under 1 h"),
        ("reports sent / answered", f"{f.reports_sent} / {f.reports_sent}", "all answered"),
        ("tickets (receipts)", f"{f.tickets} ({f.receipts})", "= receipts"),
        ("drafts cancelled by the firm", str(f.drafts_cancelled), ""),
        ("updates through the Application", str(f.updates), ""),
        ("restarts (over 08:40, over Friday 16:00)", str(f.restarts), ""),
        (
            "morning lists sent / working days",
            f"{sum(f.morning_lists.values())} / {slots['morning']}",
            "equal, once a day",
        ),
        (
            "digests to coordinators / leaders / Fridays",
            f"{sum(f.digests.values())} / {sum(f.leader_digests.values())} / {slots['digest']}",
            "equal",
        ),
        ("daily backups / days after the first", f"{len(f.backups)} / {slots['backup']}", "equal"),
        ("job-queue ticks run", str(sum(f.job_runs.values())), ""),
        (
            "reminders sent (by kind)",
            " ".join(f"{k}={v}" for k, v in sorted(reminders.items())),
            "each key once per ticket",
        ),
        ("claims judged / held by a restart", f"{soak.claims_judged} / {soak.claims_held}", ""),
        (
            "digest figures compared with the ledger",
            f"{compared} in {len(f.digest_checks)} digests, {differing} differ",
            "0 differ",
        ),
        ("RSS at start (modules imported, before set-up)", f"{f.rss_start_mb:.0f} MB", ""),
        ("RSS after a week (warm-up)", f"{f.rss_warm_mb:.0f} MB", ""),
        ("RSS at the end", f"{f.rss_end_mb:.0f} MB", ""),
        ("RSS growth after the warm-up", f"{growth:+.1f} MB", f"≤ {RSS_GROWTH_MB:.0f} MB"),
        ("database (with WAL)", f"{f.db_mb:.1f} MB", f"≤ {DB_MB:.0f} MB"),
    ]
    print(table(rows))
    if growth > RSS_GROWTH_MB:
        failures.append(f"RSS grew {growth:.1f} MB after the warm-up")
    if f.db_mb > DB_MB:
        failures.append(f"database {f.db_mb:.1f} MB")
    for failure in failures:
        print("FAILED:", failure)
    print("all checks passed" if not failures else f"{len(failures)} checks failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
