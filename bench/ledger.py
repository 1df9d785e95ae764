"""Benchmark: ledger export and weekly/yearly stats over 100,000 generated tickets.

Run: ``.venv/bin/python bench/ledger.py [--n 100000] [--seed 7]``. Prints figures (not a test).
Baselines in the same run: building the Ticket models, and writing the same rows with csv.writer.
"""

from __future__ import annotations

import argparse
import csv
import gc
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from openpyxl import Workbook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import DEFAULT_TOWNS, Settings
from bot.core.models import (
    TEAM_NAMES,
    CloseType,
    Satisfaction,
    Ticket,
    TicketState,
    Urgency,
)
from bot.reporting.digest import render_chart, render_digest
from bot.reporting.ledger import ledger_sheets, write_ledger
from bot.reporting.stats import (
    TicketFacts,
    build_digest,
    compute,
    period_bounds,
)
from bot.reporting.xlsx import write_sheets
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 27, 16, 0, tzinfo=TZ)
T = TypeVar("T")

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
INDUSTRIES = ("装备制造", "食品加工", "纺织服装", "新材料", "电子信息", "商贸物流", "农业种植")
PROBLEMS = (
    "申请技改补贴需要哪些材料",
    "流动资金贷款审批进度慢",
    "环评手续办理咨询",
    "招工难，需要对接技能工人",
    "项目用地指标迟迟未落实",
    "合作社申请农机补贴",
    "厂区道路破损影响运输",
    "停电导致生产线停产",
)


# How a closed ticket was closed (无效 / 重复 belong to cancelled tickets).
CLOSED_TYPES = (
    CloseType.SOLVED,
    CloseType.EXPLAINED,
    CloseType.NO_EVALUATION,
    CloseType.DIRECT_ANSWER,
)


def generate(n: int, seed: int, policy: DeadlinePolicy) -> list[Ticket]:
    """``n`` plausible tickets over the two years up to NOW (seeded)."""
    rng = random.Random(seed)
    teams = list(TEAM_NAMES)
    span = (NOW - datetime(2025, 1, 1, tzinfo=TZ)).total_seconds()
    tickets: list[Ticket] = []
    for i in range(n):
        submitted = NOW - timedelta(seconds=span * rng.random() ** 1.3)
        submitted = submitted.replace(microsecond=0)
        urgency = rng.choices(list(Urgency), weights=(80, 8, 9, 3))[0]
        due = policy.due_at(submitted, urgency)
        team = rng.choice(teams) if rng.random() > 0.03 else None
        age = NOW - submitted
        state = TicketState.CLOSED
        r = rng.random()
        if age < timedelta(days=2) and r < 0.5:
            state = TicketState.PENDING_CLAIM
        elif age < timedelta(days=20) and r < 0.5:
            state = TicketState.IN_PROGRESS
        elif age < timedelta(days=20) and r < 0.7:
            state = TicketState.PENDING_CONFIRM
        elif r < 0.02:
            state = TicketState.CANCELLED
        elif r < 0.04:
            state = TicketState.LONG_TERM
        elif r < 0.05:
            state = TicketState.IN_PROGRESS
        if team is None and state is not TicketState.CANCELLED:
            state = TicketState.PENDING_DISPATCH
        claimed = None
        contact = None
        resolved = None
        closed = None
        if state not in (TicketState.PENDING_DISPATCH, TicketState.PENDING_CLAIM):
            claimed = submitted + timedelta(minutes=rng.expovariate(1 / 150))
            contact = claimed + timedelta(hours=rng.expovariate(1 / 10))
        if state in (TicketState.PENDING_CONFIRM, TicketState.CLOSED):
            assert claimed is not None
            resolved = claimed + (due - submitted) * rng.uniform(0.1, 1.3)
        if state is TicketState.CLOSED:
            assert resolved is not None
            closed = resolved + timedelta(days=rng.uniform(0.1, 6))
        sat = None
        close_type = None
        if state is TicketState.CANCELLED:  # withdrawn by the firm, or 无效 / 重复
            close_type = rng.choice((None, CloseType.INVALID, CloseType.DUPLICATE))
        if state is TicketState.CLOSED:
            close_type = rng.choices(CLOSED_TYPES, weights=(75, 10, 10, 5))[0]
            if close_type is not CloseType.NO_EVALUATION:
                sat = rng.choices(list(Satisfaction), weights=(80, 15, 5))[0]
        surname = rng.choice(SURNAMES)
        problem = rng.choice(PROBLEMS)
        tickets.append(
            Ticket(
                id=i + 1,
                number=f"YM-{submitted:%Y%m%d}-{i % 10000:04d}",
                state=state,
                reporter_id=f"telegram:{1000 + i % 5000}",
                enterprise_id=i % 5000,
                enterprise_name=f"尉氏县{surname}氏{rng.choice(INDUSTRIES)}有限公司",
                credit_code=f"9141022{rng.randrange(10**10):010d}X",
                town=rng.choice(DEFAULT_TOWNS),
                industry=rng.choice(INDUSTRIES),
                contact_name=surname + rng.choice(("先生", "女士", "建国", "秀英")),
                contact_phone=f"13{rng.randrange(10**9):09d}",
                text=problem + "，请尽快协调解决。",
                summary=problem,
                team_id=team,
                urgency=urgency,
                created_at=submitted,
                submitted_at=submitted,
                dispatched_at=submitted if team else None,
                due_at=due,
                claimed_by="telegram:7" if claimed else None,
                claimed_by_name=(rng.choice(SURNAMES) + "干事") if claimed else None,
                claimed_at=claimed,
                first_contact_at=contact,
                resolved_at=resolved,
                closed_at=closed,
                close_type=close_type,
                satisfaction=sat,
                rated_at=closed if sat else None,
                resolved_status="已解决" if resolved else None,
                result_text="已协调办理完毕" if resolved else None,
                latest_progress="已电话联系企业" if contact else None,
                return_count=int(rng.random() < 0.03),
                reopen_count=int(rng.random() < 0.02),
                supervise_count=int(rng.random() < 0.04),
                extension_count=int(rng.random() < 0.05),
            )
        )
    return tickets


def timed(label: str, fn: Callable[[], T], results: dict[str, float]) -> T:
    start = time.perf_counter()
    value = fn()
    results[label] = time.perf_counter() - start
    return value


def best_of(k: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(k):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--openpyxl", action="store_true", help="also time openpyxl's writer")
    args = parser.parse_args()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    cal = WorkCalendar(settings)
    policy = DeadlinePolicy(settings, cal)
    r: dict[str, float] = {}
    tickets = timed("generate Ticket models", lambda: generate(args.n, args.seed, policy), r)
    dumped = [t.model_dump() for t in tickets[:20000]]
    r[f"baseline: validate {len(dumped):,} Ticket models from dicts"] = best_of(
        1, lambda: [Ticket.model_validate(d) for d in dumped]
    )
    kw: dict[str, Any] = {
        "now": NOW,
        "exporter_name": "专班 张三",
        "exporter_is_admin": False,
        "calendar": cal,
        "policy": policy,
    }
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "baseline.csv"
        xlsx = Path(tmp) / "ledger.xlsx"
        gc.disable()  # as write_ledger does
        sheets = timed(
            "ledger rows for the 7 sheets (ledger_sheets)",
            lambda: ledger_sheets(tickets, {}, **kw),
            r,
        )
        gc.enable()

        def baseline() -> None:
            with csv_path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                for sheet in sheets:
                    writer.writerow(sheet.headers)
                    writer.writerows(sheet.rows)

        timed("baseline: the same rows with csv.writer", baseline, r)
        timed(
            "the same rows as .xlsx (write_sheets)",
            lambda: write_sheets(sheets, xlsx, exporter_name="bench", now=NOW),
            r,
        )
        timed("export end to end (write_ledger)", lambda: write_ledger(tickets, {}, xlsx, **kw), r)
        size_mb = xlsx.stat().st_size / 1e6
        csv_mb = csv_path.stat().st_size / 1e6
        if args.openpyxl:
            wb = Workbook(write_only=True)
            ws = wb.create_sheet("问题台账")

            def openpyxl_write() -> None:
                for row in ledger_sheets(tickets, {}, **kw)[0].rows:
                    ws.append(row)
                wb.save(Path(tmp) / "openpyxl.xlsx")

            timed("for comparison: openpyxl write_only, main sheet only", openpyxl_write, r)

    week = period_bounds("week", NOW)
    year = period_bounds("year", NOW)
    facts: dict[int, TicketFacts] = {}
    r["stats week, cold (no facts cached)"] = best_of(
        1, lambda: compute(tickets, *week, now=NOW, policy=policy)
    )
    r["stats year, cold (computes TicketFacts)"] = best_of(
        1, lambda: compute(tickets, *year, now=NOW, policy=policy, facts=facts)
    )
    r["stats week, warm facts"] = best_of(
        5, lambda: compute(tickets, *week, now=NOW, policy=policy, facts=facts)
    )
    r["stats year, warm facts"] = best_of(
        3, lambda: compute(tickets, *year, now=NOW, policy=policy, facts=facts)
    )
    r["digest (week+last week+YTD+overdue), warm"] = best_of(
        3, lambda: build_digest(tickets, now=NOW, policy=policy, facts=facts)
    )
    r["baseline: one loop over tickets reading 12 fields"] = best_of(
        3,
        lambda: [
            (
                t.submitted_at,
                t.state,
                t.team_id,
                t.town,
                t.claimed_at,
                t.first_contact_at,
                t.resolved_at,
                t.closed_at,
                t.due_at,
                t.satisfaction,
                t.return_count,
                t.reopen_count,
            )
            for t in tickets
        ],
    )
    digest = build_digest(tickets, now=NOW, policy=policy, facts=facts)
    r["render_digest"] = best_of(3, lambda: render_digest(digest))
    r["render_chart (PNG)"] = best_of(1, lambda: render_chart(digest))

    print(f"yimi-bot ledger/stats benchmark: {args.n:,} tickets, seed {args.seed}")
    width = max(len(k) for k in r)
    for label, seconds in r.items():
        print(f"  {label:<{width}}  {seconds * 1000:9.1f} ms")
    print(
        f"  xlsx {size_mb:.1f} MB, csv {csv_mb:.1f} MB; digest {len(render_digest(digest))} chars"
    )
    print("  targets: export <= 10 s, stats <= 200 ms")


if __name__ == "__main__":
    main()
