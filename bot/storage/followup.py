"""Follow-up: reminders sent, extension requests, the audit log and the scheduled jobs' slots."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.storage.rows import (
    Queries,
    ts,
)


class FollowUpRepo(Queries):
    """Follow-up: reminders sent, extension requests, the audit log and the scheduled jobs' slots."""

    async def reminders_sent(self, ticket_id: int) -> set[str]:
        rows = await self._all("SELECT key FROM reminders_sent WHERE ticket_id = ?", (ticket_id,))
        return {str(r[0]) for r in rows}

    async def reminders_sent_open(self) -> dict[int, set[str]]:
        """Reminder keys already sent, for every open ticket."""
        rows = await self._all(
            "SELECT r.ticket_id, r.key FROM reminders_sent r JOIN tickets t ON t.id = r.ticket_id "
            "WHERE t.state IN ('pending_dispatch', 'pending_claim', 'in_progress', 'long_term', "
            "'pending_confirm')"
        )
        found: dict[int, set[str]] = {}
        for ticket_id, key in rows:
            found.setdefault(int(ticket_id), set()).add(str(key))
        return found

    async def mark_reminder(self, ticket_id: int, key: str, now: datetime) -> bool:
        return (
            await self._changed(
                "INSERT INTO reminders_sent (ticket_id, key, at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (ticket_id, key, ts(now)),
            )
            == 1
        )

    async def insert_extension(
        self,
        ticket_id: int,
        kind: str,
        workdays: int | None,
        reason: str,
        requested_by: str,
        now: datetime,
    ) -> int:
        return await self._insert(
            "INSERT INTO extensions (ticket_id, kind, workdays, reason, requested_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ticket_id, kind, workdays, reason, requested_by, ts(now)),
        )

    async def get_extension(self, extension_id: int) -> dict[str, Any] | None:
        row = await self._one("SELECT * FROM extensions WHERE id = ?", (extension_id,))
        return dict(row) if row else None

    async def decide_extension(
        self, extension_id: int, status: str, by: str, now: datetime
    ) -> bool:
        return (
            await self._changed(
                "UPDATE extensions SET status = ?, decided_by = ?, decided_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (status, by, ts(now), extension_id),
            )
            == 1
        )

    async def insert_audit(
        self, actor_id: str | None, action: str, payload: dict[str, Any], now: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO audit_log (actor_id, action, payload, at) VALUES (?, ?, ?, ?)",
            (actor_id, action, json.dumps(payload, ensure_ascii=False), ts(now)),
        )

    async def job_slots(self, job: str) -> set[str]:
        """The slots (days, YYYY-MM-DD) of a scheduled job already done (bot.schedule)."""
        rows = await self._all("SELECT payload FROM audit_log WHERE action = 'job'")
        found = (json.loads(row[0]) for row in rows)
        return {str(p.get("slot")) for p in found if p.get("job") == job}
