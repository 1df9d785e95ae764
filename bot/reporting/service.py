"""Statistics, the weekly digest and the ledger export, from the database (no telegram)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.core.counties import scoped
from bot.core.errors import BadInput
from bot.core.models import COORDINATOR, LEADERS
from bot.core.ports import Actor, Clock
from bot.render import texts
from bot.render.keyboards import Reply
from bot.reporting.digest import render_chart, render_comparison, render_digest
from bot.reporting.ledger import write_ledger
from bot.reporting.stats import (
    Digest,
    PeriodKind,
    TicketFacts,
    from_groups,
    open_counts_from,
    overdue_list,
    period_bounds,
    previous_bounds,
)
from bot.storage.db import Database, Repo
from bot.workflow.outbound import enqueue
from bot.workflow.rights import Rights
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy

logger = logging.getLogger(__name__)

STATS_KINDS: dict[str, PeriodKind] = {
    "week": "week",
    "month": "month",
    "year": "year",
    "周": "week",
    "月": "month",
    "年": "year",
}


class Reports:
    """What county leaders read: /stats, the Friday digest, the 问题台账."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        calendar: WorkCalendar,
        policy: DeadlinePolicy,
        rights: Rights,
    ) -> None:
        self.db = db
        self.rights = rights
        self.counties = settings.counties()
        self.settings = settings
        self.clock = clock
        self.calendar = calendar
        self.policy = policy
        # Clock values that never change once known, kept between calls (see bot.reporting.stats).
        self.facts: dict[int, TicketFacts] = {}

    async def digest(
        self,
        kind: PeriodKind,
        team_id: str | None = None,
        county: str | None = None,
        *,
        per_county: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> Digest:
        """This period, the previous one and the year to date, as SQL aggregates: of one
        county (or all counties when None). `per_county`: the period's groups of every county
        (`period_groups_by_county`), already read for the comparison; the whole's are theirs
        together (each group is a sum), so the period is not read twice."""
        now = self.clock.now()
        start, end = period_bounds(kind, now)
        prev_start, prev_end = previous_bounds(kind, start, end)
        ytd_start, _ = period_bounds("year", now)
        # Hotspots and towns are shown for the period itself only.
        spans_wanted = [(start, end, True), (prev_start, prev_end, False)]
        if (ytd_start, now) != (start, end):  # for /stats year the period is the year to date
            spans_wanted.append((ytd_start, now, False))
        async with self.db.read() as repo:
            spans = []
            period: list[dict[str, Any]] = []
            for lo, hi, detail in spans_wanted:
                if (lo, hi) == (start, end) and per_county is not None:
                    groups = [g for county_groups in per_county.values() for g in county_groups]
                elif lo == start and start <= now < end and hi == now:
                    # The year to date of /stats year: the period's tickets (none is submitted
                    # after now) counted as of now, as the period's were.
                    groups = period
                else:
                    groups = await repo.stats.period_groups(lo, hi, min(hi, now), county)
                if (lo, hi) == (start, end):
                    period = groups
                breakdown = await self._breakdown(repo, lo, hi, county) if detail else []
                spans.append(from_groups(lo, hi, groups, breakdown))
        if len(spans) == 2:
            spans.append(spans[0])
        async with self.db.read() as repo:
            open_rows = await repo.stats.open_state_counts(county)
            overdue, overdue_count = await repo.stats.overdue_open(now, team_id, county=county)
        if team_id is not None:
            open_rows = [r for r in open_rows if r[0] == team_id]
        return Digest(
            now=now,
            kind=kind,
            team_id=team_id,
            period=spans[0],
            previous=spans[1],
            ytd=spans[2],
            open_now=open_counts_from(open_rows),
            overdue=overdue_list(overdue, now, self.policy),
            overdue_count=overdue_count,
            area=self._area(county),
        )

    async def _breakdown(
        self, repo: Repo, lo: datetime, hi: datetime, county: str | None
    ) -> list[tuple[str, str, str, int]]:
        """Teams, domains and towns of the period; over every county a town is named with its
        county (尉氏县城关镇), so that two counties' 城关镇 are not added together."""
        if county is not None or self.counties.single:
            return await repo.stats.period_breakdown(lo, hi, county)
        rows = await repo.stats.period_breakdown(lo, hi, by_county=True)
        out = []
        for team, domain, place, n in rows:
            code, _, town = place.partition("|")
            out.append((team, domain, self.counties.of(code).name + town, n))
        return out

    def _area(self, county: str | None) -> str:
        """What a digest covers: 全县, a county's name, or every county."""
        if self.counties.single:
            return "全县"
        return self.counties.of(county).name if county is not None else texts.ALL_COUNTIES

    async def comparison(
        self, kind: PeriodKind, per_county: Mapping[str, list[dict[str, Any]]] | None = None
    ) -> str:
        """Every county side by side for the period (the city's or province's leaders);
        `per_county` when the period's groups are already read."""
        now = self.clock.now()
        start, end = period_bounds(kind, now)
        async with self.db.read() as repo:
            if per_county is None:
                per_county = await repo.stats.period_groups_by_county(start, end, min(end, now))
            overdue = await repo.stats.overdue_by_county(now)
        rows = [
            (county.name, from_groups(start, end, per_county.get(county.code, [])).overall)
            for county in self.counties
        ]
        return render_comparison(kind, rows, [overdue.get(c.code, 0) for c in self.counties])

    async def whole_text(self, kind: PeriodKind) -> tuple[str, Digest]:
        """The whole deployment's figures, then every county's side by side: the period's
        tickets read once, per county, for both."""
        now = self.clock.now()
        start, end = period_bounds(kind, now)
        async with self.db.read() as repo:
            per_county = await repo.stats.period_groups_by_county(start, end, min(end, now))
        digest = await self.digest(kind, per_county=per_county)
        text = f"{render_digest(digest)}\n\n{await self.comparison(kind, per_county)}"
        return text, digest

    async def stats_text(
        self, team_id: str | None, kind: PeriodKind, county: str | None = None
    ) -> str:
        """/stats: one team (team groups) or all (coordinators, leaders), of a county or all;
        every county's figures side by side after the whole's when there are several."""
        if county is None and team_id is None and not self.counties.single:
            return (await self.whole_text(kind))[0]
        return render_digest(await self.digest(kind, team_id, county))

    async def stats_for(self, actor: Actor, kind: PeriodKind) -> list[Reply]:
        """/stats where the actor asks: their team's figures, or their county's for the
        coordinators' and a county's leaders' groups, or every county's for the leaders of the
        whole deployment; nothing in a chat bound to no team."""
        allowed, county, team = await self.rights.stats_scope(actor)
        if not allowed:
            raise BadInput(texts.STATS_UNBOUND)
        return [Reply(await self.stats_text(team, kind, county))]

    async def export_for(
        self, actor: Actor, path: Path, *, start: date | None, end: date | None
    ) -> tuple[Path, int]:
        """/export: the ledger of the group's county, in a coordinators' group only, masked
        unless an admin asks."""
        allowed, county = await self.rights.export_scope(actor)
        if not allowed:
            raise BadInput(texts.EXPORT_ONLY_COORD)
        return await self.export(
            path,
            start=start,
            end=end,
            exporter_id=actor.id,
            exporter_name=actor.name,
            exporter_is_admin=actor.is_admin,
            county=county,
        )

    async def send_weekly_digest(self) -> bool:
        """Queue the Friday digest (text and chart): each county's for its coordinators (and
        its own leaders' group, if bound); the whole's for the deployment's leaders, with every
        county side by side when there are several."""
        now = self.clock.now()
        async with self.db.read() as repo:
            city_leaders = await repo.users.get_team_chat(LEADERS) is not None
            own_leaders = {
                c.code
                for c in self.counties
                if c.code and await repo.users.get_team_chat(LEADERS, c.code) is not None
            }
        plan: list[tuple[str | None, list[str]]] = []
        if self.counties.single:
            plan.append((None, [COORDINATOR, *([LEADERS] if city_leaders else [])]))
        else:
            for c in self.counties:
                own = [scoped(LEADERS, c.code)] if c.code in own_leaders else []
                plan.append((c.code, [scoped(COORDINATOR, c.code), *own]))
            if city_leaders:
                plan.append((None, [LEADERS]))
        queued: list[tuple[str, str, bytes]] = []
        new = 0
        for county, targets in plan:
            if county is None and not self.counties.single:
                text, digest = await self.whole_text("week")
            else:
                digest = await self.digest("week", county=county)
                text = render_digest(digest)
                new += digest.period.overall.new
            chart = render_chart(digest)
            queued += [(target, text, chart) for target in targets]
        async with self.db.tx() as repo:
            for target, text, chart in queued:
                await enqueue(repo, now, target, "message", {"text": text})
                await enqueue(
                    repo,
                    now,
                    target,
                    "upload",
                    {"filename": f"yimi-{now:%Y%m%d}.png", "data": chart.hex(), "photo": True},
                )
            await repo.followup.insert_audit(None, "digest", {"new": new}, now)
        logger.info("weekly digest queued (%d messages)", len(queued))
        return True

    async def export(
        self,
        path: Path,
        *,
        start: date | None,
        end: date | None,
        exporter_id: str | None,
        exporter_name: str,
        exporter_is_admin: bool,
        county: str | None = None,
    ) -> tuple[Path, int]:
        """Write the ledger for tickets submitted in [start, end] (dates inclusive), of one
        county or all."""
        now = self.clock.now()
        tz = now.tzinfo
        lo = datetime(start.year, start.month, start.day, tzinfo=tz) if start else None
        hi = (
            (datetime(end.year, end.month, end.day, tzinfo=tz) + timedelta(days=1)) if end else None
        )
        async with self.db.read() as repo:
            tickets = await repo.tickets.tickets_submitted_between(lo, hi, county)
            events = await repo.tickets.events_for([t.id for t in tickets])
        period = (start or date(now.year, 1, 1), end or now.date()) if (start or end) else None
        write_ledger(
            tickets,
            events,
            path,
            now=now,
            exporter_name=exporter_name,
            exporter_is_admin=exporter_is_admin,
            period=period,
            calendar=self.calendar,
            policy=self.policy,
            facts=self.facts,
        )
        async with self.db.tx() as repo:
            await repo.followup.insert_audit(
                exporter_id,
                "export",
                {
                    "by": exporter_name,
                    "admin": exporter_is_admin,
                    "from": start.isoformat() if start else None,
                    "to": end.isoformat() if end else None,
                    "rows": len(tickets),
                    "file": path.name,
                },
                now,
            )
        logger.info(
            "ledger exported by %s: %d tickets, %s",
            "the command line" if exporter_id is None else exporter_id,
            len(tickets),
            "unmasked" if exporter_is_admin else "masked",
        )
        return path, len(tickets)


def parse_day(text: str) -> date | None:
    """2026-11-01, 2026/11/01, 20261101 or 2026年11月1日 → a date; None if not a date."""
    cleaned = text.strip().replace("年", "-").replace("月", "-").replace("日", "").replace("/", "-")
    if cleaned.isdigit() and len(cleaned) == 8:
        cleaned = f"{cleaned[:4]}-{cleaned[4:6]}-{cleaned[6:]}"
    try:
        year, month, day = (int(part) for part in cleaned.split("-"))
        return date(year, month, day)
    except ValueError:
        return None
