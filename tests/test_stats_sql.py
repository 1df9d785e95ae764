"""The Friday metrics from SQL aggregates equal the ones computed ticket by ticket."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from bot.reporting.stats import Metrics, compute, from_groups, period_bounds, ticket_facts
from bot.storage.db import Database
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy
from tests.conftest import FIRM_A, MEMBER_TECH, TECH_GROUP, World
from tests.test_ticket_loop import POWER, report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from ledger import NOW, generate
from seed import with_facts

# The SQL aggregates equal the ticket-by-ticket computation on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")


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
    db = await Database.at(tmp_path / "stats.db", os.environ.get("DATABASE_URL"))
    try:
        async with db.tx() as repo:
            assert await repo.tickets.import_tickets(tickets, NOW) == 3000
        start, end = period_bounds(kind, NOW)  # type: ignore[arg-type]
        async with db.read() as repo:
            rows = await repo.stats.period_groups(start, end, NOW)
            breakdown = await repo.stats.period_breakdown(start, end)
            stored = await repo.tickets.all_tickets()
    finally:
        await db.close()
    expected = compute(stored, start, end, now=NOW, policy=policy)
    got = from_groups(start, end, rows, breakdown)
    assert expected.overall.new > 20
    same(got.overall, expected.overall)
    assert set(got.teams) == set(expected.teams)
    for team, metrics in expected.teams.items():
        same(got.teams[team], metrics)


async def test_the_workflow_stores_the_clock_facts_it_would_compute(world: World) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    number = await report(w, FIRM_A, "张伟", POWER)
    card = tg.find(TECH_GROUP, number)
    w.clock.advance(hours=3)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "签收")
    w.clock.advance(days=2, hours=1)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "办结")
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "已更换变压器")
    async with w.services.db.read() as repo:
        stored = await repo.tickets.get_ticket_by_number(number)
    assert stored is not None and stored.claim_due_at is not None
    assert stored.first_contact_due_at is not None and stored.resolve_workdays is not None
    bare = stored.model_copy(
        update={"claim_due_at": None, "first_contact_due_at": None, "resolve_workdays": None}
    )
    computed = ticket_facts(bare, w.services.workflow.policy)
    assert computed.claim_due_at == stored.claim_due_at
    assert computed.first_contact_due_at == stored.first_contact_due_at
    assert computed.resolve_workdays == pytest.approx(stored.resolve_workdays)
