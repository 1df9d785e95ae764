"""The Friday metrics from SQL aggregates equal the ones computed ticket by ticket."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from bot.db import Database
from bot.deadlines import DeadlinePolicy
from bot.stats import Metrics, compute, from_groups, period_bounds
from bot.worktime import WorkCalendar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from ledger import NOW, generate
from seed import with_facts


def same(a: Metrics, b: Metrics) -> None:
    for f in dataclasses.fields(Metrics):
        mine, theirs = getattr(a, f.name), getattr(b, f.name)
        if isinstance(mine, float):
            # Stored times are whole seconds; the facts were computed before rounding.
            assert mine == pytest.approx(theirs, rel=1e-5), f.name
        else:
            assert mine == theirs, f.name


@pytest.mark.parametrize("kind", ["week", "month", "year"])
async def test_sql_metrics_match_python(tmp_path: Path, kind: str) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    policy = DeadlinePolicy(settings, WorkCalendar(settings))
    tickets = with_facts(generate(3000, 11, policy), policy)
    db = await Database.open(tmp_path / "stats.db")
    try:
        async with db.tx() as repo:
            assert await repo.import_tickets(tickets, NOW) == 3000
        start, end = period_bounds(kind, NOW)  # type: ignore[arg-type]
        async with db.read() as repo:
            rows = await repo.period_groups(start, end, NOW)
            breakdown = await repo.period_breakdown(start, end)
            stored = await repo.all_tickets()
    finally:
        await db.close()
    expected = compute(stored, start, end, now=NOW, policy=policy)
    got = from_groups(start, end, rows, breakdown)
    assert expected.overall.new > 20
    same(got.overall, expected.overall)
    assert set(got.teams) == set(expected.teams)
    for team, metrics in expected.teams.items():
        same(got.teams[team], metrics)
