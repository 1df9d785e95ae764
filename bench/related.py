"""Benchmark: the related-reports lookup at 100,000 open and recent tickets (issue 13 item 4).

Builds N synthetic tickets (the project's labelled report texts in tests/data, each varied: a
greeting or an ending added, a character dropped, any town, any firm, submitted over the four
days before a Friday morning, all inside the five-working-day window), stores them in a real SQLite file, rebuilds the finder from it as the bot does at
start (`Relating.load`), then times the lookup for new reports (median, p99) against
`classify()` on the same texts in the same run. The target: at most 5 ms per report.

    python bench/related.py [--tickets 100000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.classify.classifier import Classification, get_classifier  # noqa: E402
from bot.config import DEFAULT_TOWNS, Settings  # noqa: E402
from bot.core.models import Ticket, TicketState  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.workflow.facade import Workflow  # noqa: E402
from bot.workflow.rights import NoMembership  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=TZ)
OPENINGS = ("", "", "你好，", "您好，", "麻烦问一下，", "俺厂", "我们公司", "请问")
ENDINGS = ("", "", "。", "，谢谢", "，急！", " 能不能尽快处理", "，麻烦协调一下")
STATES = ("pending_claim", "in_progress", "pending_dispatch", "pending_confirm")


class Clock:
    def now(self) -> datetime:
        return NOW


def rss_mb() -> float:
    """The process's resident memory now (Linux), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def base_texts() -> list[str]:
    """Every labelled report text of tests/data except the related test set (kept blind)."""
    texts: list[str] = []
    for path in sorted((ROOT / "tests" / "data").rglob("*.jsonl")):
        # Not the related test set (kept blind), not the classifier's pinned outputs (the same
        # texts again, after a header).
        if path.name in ("related_pairs.jsonl", "classify_pinned.jsonl"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    return texts


def vary(text: str, rng: random.Random) -> str:
    """The same report in another firm's words: an opening, an ending, a character dropped."""
    if len(text) > 8 and rng.random() < 0.5:
        i = rng.randrange(len(text))
        text = text[:i] + text[i + 1 :]
    return rng.choice(OPENINGS) + text + rng.choice(ENDINGS)


def tickets(n: int, bases: list[str], seen: dict[str, Classification]) -> list[Ticket]:
    """N open tickets submitted over the last four days, oldest first."""
    rng = random.Random(13)
    out = []
    span = 4 * 24 * 3600.0  # inside the window: five working days back from a Friday
    times = sorted(rng.uniform(0, span) for _ in range(n))
    for i, offset in enumerate(times, 1):
        base = rng.choice(bases)
        result = seen[base]
        at = NOW - timedelta(seconds=span - offset)
        out.append(
            Ticket(
                id=i,
                number=f"YM-{at:%Y%m%d}-{i:06d}",
                state=TicketState(rng.choice(STATES)),
                reporter_id=f"bench:{i % 20000}",
                enterprise_id=i % 20000 + 1,
                enterprise_name=f"企业{i % 20000}",
                town=DEFAULT_TOWNS[(i % 20000) % len(DEFAULT_TOWNS)],
                text=vary(base, rng),
                team_id=result.primary if result.primary != "general" else None,
                predicted_team=result.primary,
                domain_words=list(result.words),
                created_at=at,
                submitted_at=at,
                updated_at=at,
            )
        )
    return out


async def run(n: int, queries: int) -> None:
    clf = get_classifier()
    bases = base_texts()
    seen = {t: clf.classify(t) for t in bases}
    print(f"{len(bases)} labelled texts as bases; {n:,} tickets")
    made = tickets(n, bases, seen)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(_env_file=None, database_path=Path(folder) / "bench.db")  # type: ignore[call-arg]
        db = await Database.open(settings.database_path)
        async with db.tx() as repo:
            await repo.tickets.import_tickets(made, NOW)
        del made  # the bot holds no ticket models: only what the finder keeps
        gc.collect()
        workflow = Workflow(db, clf, settings, Clock(), NoMembership())
        rss0 = rss_mb()
        start = time.perf_counter()
        indexed = await workflow.relating.load()
        load_s = time.perf_counter() - start
        rss1 = rss_mb()
        finder = workflow.relating.finder
        since = workflow.relating.since(NOW).timestamp()
        await db.close()
    rng = random.Random(7)
    probes = []
    for k in range(queries):
        base = rng.choice(bases)
        probes.append((vary(base, rng), DEFAULT_TOWNS[k % len(DEFAULT_TOWNS)], seen[base]))
    found_counts = []

    def lookup(text: str, town: str, result: Classification) -> None:
        found_counts.append(
            len(
                finder.find(
                    text,
                    town=town,
                    team=result.primary,
                    at=NOW.timestamp(),
                    words=result.words,
                    since=since,
                    limit=50,
                )
            )
        )

    for text, town, result in probes[:50]:  # warm
        lookup(text, town, result)
        clf.classify(text)
    times: dict[str, list[float]] = {"lookup": [], "classify": []}
    # interleaved, so machine noise hits both alike
    for text, town, result in probes:
        t0 = time.perf_counter()
        lookup(text, town, result)
        t1 = time.perf_counter()
        clf.classify(text)
        t2 = time.perf_counter()
        times["lookup"].append((t1 - t0) * 1000)
        times["classify"].append((t2 - t1) * 1000)
    print(
        f"index rebuilt from SQLite at start: {indexed:,} open tickets in {load_s:.1f} s "
        f"({indexed / load_s:,.0f}/s), +{rss1 - rss0:.0f} MB resident"
    )
    for name, values in times.items():
        values.sort()
        p50 = statistics.median(values)
        p99 = values[int(len(values) * 0.99) - 1]
        print(f"{name:9} median {p50:6.2f} ms   p99 {p99:6.2f} ms   ({len(values)} reports)")
    ratio = statistics.median(times["lookup"]) / statistics.median(times["classify"])
    print(f"lookup / classify (median): {ratio:.2f}×; target: lookup ≤ 5 ms per report")
    print(f"related found per report: median {statistics.median(found_counts):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(run(args.tickets, args.queries))


if __name__ == "__main__":
    main()
