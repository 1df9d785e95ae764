"""The Telegram inbox: updates stored before they are handled."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.storage.rows import (
    Queries,
    ts,
)


class InboxRepo(Queries):
    """The Telegram inbox: updates stored before they are handled."""

    async def store_update(
        self, update_id: int, payload: str, now: datetime, chat_key: str = ""
    ) -> bool:
        return (
            await self._changed(
                "INSERT INTO inbox (update_id, payload, received_at, chat_key) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (update_id, payload, ts(now), chat_key),
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

    async def unhandled_chats(self, skip: Iterable[str], limit: int) -> list[str]:
        """The chats with updates still to handle, the longest waiting first, leaving out
        `skip` (the chats this process handles already)."""
        held = list(skip)
        marks = ", ".join("?" * len(held))
        where = f"AND chat_key NOT IN ({marks}) " if held else ""
        rows = await self._all(
            "SELECT chat_key FROM inbox WHERE handled_at IS NULL "
            + where
            + "GROUP BY chat_key ORDER BY MIN(update_id) LIMIT ?",
            (*held, limit),
        )
        return [str(r[0]) for r in rows]

    async def unhandled_of(self, chat_key: str) -> list[tuple[int, str]]:
        """One chat's updates still to handle, in order."""
        rows = await self._all(
            "SELECT update_id, payload FROM inbox WHERE handled_at IS NULL "
            "AND chat_key = ? ORDER BY update_id",
            (chat_key,),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def prune_inbox(self, before: datetime) -> int:
        """Forget handled updates older than `before` (they can no longer be redelivered)."""
        return await self._changed(
            "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?", (ts(before),)
        )
