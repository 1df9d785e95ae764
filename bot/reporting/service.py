"""Statistics, the weekly digest and the ledger export, from the database (no telegram)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path

from bot.config import Settings
from bot.core.errors import BadInput
from bot.core.models import COORDINATOR, LEADERS
from bot.core.ports import Actor, Clock
from bot.render import texts
from bot.render.keyboards import Reply
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
    render_chart,
    render_digest,
)
from bot.storage.db import Database
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
        self.settings = settings
        self.clock = clock
        self.calendar = calendar
        self.policy = policy
        # Clock values that never change once known, kept between calls (see bot.reporting.stats).
        self.facts: dict[int, TicketFacts] = {}

    async def digest(self, kind: PeriodKind, team_id: str | None = None) -> Digest:
        """This period, the previous one and the year to date, as SQL aggregates."""
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
            for lo, hi, detail in spans_wanted:
                groups = await repo.stats.period_groups(lo, hi, min(hi, now))
                breakdown = await repo.stats.period_breakdown(lo, hi) if detail else []
                spans.append(from_groups(lo, hi, groups, breakdown))
        if len(spans) == 2:
            spans.append(spans[0])
        async with self.db.read() as repo:
            open_rows = await repo.stats.open_state_counts()
            overdue, overdue_count = await repo.stats.overdue_open(now, team_id)
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
        )

    async def stats_text(self, team_id: str | None, kind: PeriodKind) -> str:
        """/stats: one team (team groups) or all (coordinators, leaders)."""
        return render_digest(await self.digest(kind, team_id))

    async def stats_for(self, actor: Actor, kind: PeriodKind) -> list[Reply]:
        """/stats where the actor asks: their team's figures, or everyone's for the
        coordinators' and leaders' groups; nothing in a chat bound to no team."""
        allowed, team = await self.rights.stats_scope(actor)
        if not allowed:
            raise BadInput(texts.STATS_UNBOUND)
        return [Reply(await self.stats_text(team, kind))]

    async def export_for(
        self, actor: Actor, path: Path, *, start: date | None, end: date | None
    ) -> tuple[Path, int]:
        """/export: the ledger, in the coordinators' group only, masked unless an admin asks."""
        if not await self.rights.may_export(actor):
            raise BadInput(texts.EXPORT_ONLY_COORD)
        return await self.export(
            path,
            start=start,
            end=end,
            exporter_id=actor.id,
            exporter_name=actor.name,
            exporter_is_admin=actor.is_admin,
        )

    async def send_weekly_digest(self) -> bool:
        """Queue the Friday digest (text and chart) for the coordinators and the leaders."""
        now = self.clock.now()
        digest = await self.digest("week")
        text = render_digest(digest)
        chart = render_chart(digest)
        async with self.db.tx() as repo:
            for target in (COORDINATOR, LEADERS):
                if target == LEADERS and await repo.users.get_team_chat(LEADERS) is None:
                    continue
                await enqueue(repo, now, target, "message", {"text": text})
                await enqueue(
                    repo,
                    now,
                    target,
                    "upload",
                    {"filename": f"yimi-{now:%Y%m%d}.png", "data": chart.hex(), "photo": True},
                )
            await repo.followup.insert_audit(
                None, "digest", {"new": digest.period.overall.new}, now
            )
        logger.info("weekly digest queued (%d new this week)", digest.period.overall.new)
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
    ) -> tuple[Path, int]:
        """Write the ledger for tickets submitted in [start, end] (dates inclusive)."""
        now = self.clock.now()
        tz = now.tzinfo
        lo = datetime(start.year, start.month, start.day, tzinfo=tz) if start else None
        hi = (
            (datetime(end.year, end.month, end.day, tzinfo=tz) + timedelta(days=1)) if end else None
        )
        async with self.db.read() as repo:
            tickets = await repo.tickets.tickets_submitted_between(lo, hi)
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
