"""Statistics, the weekly digest and the ledger export, from the database (no telegram)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path

from bot.config import Settings
from bot.db import Database
from bot.deadlines import DeadlinePolicy
from bot.ledger import write_ledger
from bot.models import COORDINATOR, LEADERS, Ticket
from bot.stats import PeriodKind, TicketFacts, build_digest, render_chart, render_digest
from bot.workflow import Clock, enqueue
from bot.worktime import WorkCalendar

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
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.calendar = calendar
        self.policy = policy
        # Clock values that never change once known, kept between calls (see bot.stats).
        self.facts: dict[int, TicketFacts] = {}

    async def _year_tickets(self, now: datetime) -> list[Ticket]:
        # This year and the previous period's spill-over (a week or month before 1 January).
        start = datetime(now.year, 1, 1, tzinfo=now.tzinfo) - timedelta(days=62)
        async with self.db.read() as repo:
            return await repo.tickets_submitted_between(start, None)

    async def stats_text(self, team_id: str | None, kind: PeriodKind) -> str:
        """/stats: one team (team groups) or all (coordinators, leaders)."""
        now = self.clock.now()
        tickets = await self._year_tickets(now)
        digest = build_digest(
            tickets, now=now, policy=self.policy, kind=kind, team_id=team_id, facts=self.facts
        )
        return render_digest(digest)

    async def send_weekly_digest(self) -> bool:
        """Queue the Friday digest (text and chart) for the coordinators and the leaders."""
        now = self.clock.now()
        tickets = await self._year_tickets(now)
        digest = build_digest(tickets, now=now, policy=self.policy, kind="week", facts=self.facts)
        text = render_digest(digest)
        chart = render_chart(digest)
        async with self.db.tx() as repo:
            for target in (COORDINATOR, LEADERS):
                if target == LEADERS and await repo.get_team_chat(LEADERS) is None:
                    continue
                await enqueue(repo, now, target, "message", {"text": text})
                await enqueue(
                    repo,
                    now,
                    target,
                    "upload",
                    {"filename": f"yimi-{now:%Y%m%d}.png", "data": chart.hex(), "photo": True},
                )
            await repo.insert_audit(None, "digest", {"tickets": len(tickets)}, now)
        logger.info("weekly digest queued over %d tickets", len(tickets))
        return True

    async def export(
        self,
        path: Path,
        *,
        start: date | None,
        end: date | None,
        exporter_id: int | None,
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
            tickets = await repo.tickets_submitted_between(lo, hi)
            events = await repo.events_for([t.id for t in tickets])
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
            await repo.insert_audit(
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
        logger.info("ledger exported by %s: %d tickets", exporter_id, len(tickets))
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
