"""The Telegram inbox: updates stored before they are handled."""

from __future__ import annotations

from datetime import datetime

from bot.storage.rows import (
    Queries,
    ts,
)


class InboxRepo(Queries):
    """The Telegram inbox: updates stored before they are handled."""

    async def store_update(self, update_id: int, payload: str, now: datetime) -> bool:
        return (
            await self._changed(
                "INSERT INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (update_id, payload, ts(now)),
            )
            == 1
        )

    async def mark_update_handled(self, update_id: int, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE inbox SET handled_at = ? WHERE update_id = ?", (ts(now), update_id)
        )

    async def unhandled_updates(self) -> list[tuple[int, str]]:
        rows = await self._all(
            "SELECT update_id, payload FROM inbox WHERE handled_at IS NULL ORDER BY update_id"
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def prune_inbox(self, before: datetime) -> int:
        """Forget handled updates older than `before` (they can no longer be redelivered)."""
        return await self._changed(
            "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?", (ts(before),)
        )
