"""The Friday metrics from SQL aggregates equal the ones computed ticket by ticket."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from bot.config import Settings
from bot.reporting.service import Reports
from bot.reporting.stats import Metrics, compute, from_groups, period_bounds, ticket_facts
from bot.storage.db import Database
from bot.storage.rows import PERIOD_GROUPS, PERIOD_MERGED, by_county, in_county
from bot.workflow.rights import NoMembership, Rights
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy
from tests.conftest import FIRM_A, MEMBER_TECH, TECH_GROUP, World
from tests.test_ticket_loop import POWER, report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from ledger import NOW, generate
from seed import with_facts

# The SQL aggregates equal the ticket-by-ticket computation on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")


def same(a: Metrics, b: Metrics, skip: tuple[str, ...] = ()) -> None:
    for f in dataclasses.fields(Metrics):
        if f.name in skip:
            continue
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


class _At:
    def now(self) -> datetime:
        return NOW


COUNTIES = (("anyang", "安阳县", "AY"), ("huaxian", "滑县", "HX"), ("linzhou", "林州市", "LZ"))


def _counties_file(folder: Path) -> Path:
    path = folder / "counties.toml"
    path.write_text(
        "".join(
            f'[[county]]\ncode = "{code}"\nname = "{name}"\nprefix = "{prefix}"\n'
            f'towns = ["{name[:2]}城关镇", "{name[:2]}产业集聚区"]\n\n'
            for code, name, prefix in COUNTIES
        ),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("kind", ["week", "year"])
async def test_every_countys_figures_and_the_wholes_read_once_match_python(
    tmp_path: Path, kind: str
) -> None:
    """A province's /stats: the whole's figures (built from the per-county groups that the
    comparison reads), the year to date, and each county's own, against the ticket-by-ticket
    computation over the same stored tickets."""
    settings = Settings(_env_file=None, counties_file=_counties_file(tmp_path))  # type: ignore[call-arg]
    calendar = WorkCalendar(settings)
    policy = DeadlinePolicy(settings, calendar)
    codes = [code for code, _, _ in COUNTIES]
    tickets = [
        t.model_copy(update={"county": codes[t.id % 3 if t.id % 7 else 0]})
        for t in with_facts(generate(3000, 5, policy), policy)
    ]
    db = await Database.at(tmp_path / "stats.db", os.environ.get("DATABASE_URL"))
    try:
        async with db.tx() as repo:
            await repo.tickets.import_tickets(tickets, NOW)
        async with db.read() as repo:
            stored = await repo.tickets.all_tickets()
        reports = Reports(
            db, settings, _At(), calendar, policy, Rights(db, NoMembership(), settings.counties())
        )
        text, whole = await reports.whole_text(kind)  # type: ignore[arg-type]
        start, end = period_bounds(kind, NOW)  # type: ignore[arg-type]
        ytd_start, _ = period_bounds("year", NOW)
        expected = compute(stored, start, end, now=NOW, policy=policy)
        assert expected.overall.new > 50
        same(whole.period.overall, expected.overall, skip=("by_town",))
        # Over every county a town is named with its county: two counties' 城关镇 stay two.
        names = {code: name for code, name, _ in COUNTIES}
        towns: Counter[str] = Counter()
        for code in codes:
            own_period = compute(
                [t for t in stored if t.county == code], start, end, now=NOW, policy=policy
            )
            for town, n in own_period.overall.by_town.items():
                towns[names[code] + town] += n
        assert Counter(whole.period.overall.by_town) == towns
        assert set(whole.period.teams) == set(expected.teams)
        for team, metrics in expected.teams.items():
            same(whole.period.teams[team], metrics, skip=("by_town",))
        # The year to date is shown without hotspots and towns.
        ytd = compute(stored, ytd_start, NOW, now=NOW, policy=policy).overall
        same(whole.ytd.overall, ytd, skip=("by_domain", "by_town"))
        for code, name, _ in COUNTIES:
            own = [t for t in stored if t.county == code]
            digest = await reports.digest(kind, county=code)  # type: ignore[arg-type]
            same(digest.period.overall, compute(own, start, end, now=NOW, policy=policy).overall)
            assert name in text
        assert await reports.stats_text(None, kind) == text  # type: ignore[arg-type]
    finally:
        await db.close()


async def test_a_countys_period_is_read_from_the_covering_index(tmp_path: Path) -> None:
    """On SQLite the grouped query of one county, and of all counties per county, reads one
    index alone (migration 0011), not each ticket row of the period."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's (PostgreSQL plans by its statistics)")
    db = await Database.at(tmp_path / "plan.db", None)
    params = {"start": "2026-01-01", "end": "2027-01-01", "as_of": "2026-11-27", "county": "a"}
    try:
        async with db.read() as repo:
            one = await repo.conn.execute_fetchall(
                "EXPLAIN QUERY PLAN " + in_county(PERIOD_GROUPS, "a"), params
            )
            every = await repo.conn.execute_fetchall(
                "EXPLAIN QUERY PLAN " + by_county(PERIOD_GROUPS), params
            )
            merged = await repo.conn.execute_fetchall(
                "EXPLAIN QUERY PLAN " + in_county(PERIOD_MERGED, "a"), params
            )
    finally:
        await db.close()
    assert any("COVERING INDEX tickets_county_stats" in str(r[3]) for r in one), one
    assert any("COVERING INDEX tickets_stats" in str(r[3]) for r in every), every
    # Merged tickets by submission time: not every merged ticket the deployment ever had.
    assert any("tickets_merged_period (submitted_at>?" in str(r[3]) for r in merged), merged
