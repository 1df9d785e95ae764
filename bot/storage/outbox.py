"""The outbox: the messages the workflow stored for the delivery loop to send."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.storage.rows import (
    Queries,
    ts,
)


class OutboxRepo(Queries):
    """The outbox: the messages the workflow stored for the delivery loop to send."""

    async def insert_outbox(
        self,
        kind: str,
        payload: dict[str, Any],
        now: datetime,
        *,
        chat_id: str | None = None,
        target: str | None = None,
        ticket_id: int | None = None,
        status: str = "pending",
    ) -> int:
        return await self._insert(
            "INSERT INTO outbox (chat_id, target, kind, ticket_id, payload, status, next_at, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                target,
                kind,
                ticket_id,
                json.dumps(payload, ensure_ascii=False),
                status,
                ts(now),
                ts(now),
            ),
        )

    async def due_outbox_except(
        self, now: datetime, busy: Iterable[str], limit: int = 500
    ) -> list[dict[str, Any]]:
        """Due rows, leaving out chats that are being sent to (their rows wait their turn)."""
        skip = list(busy)
        marks = ", ".join("?" * len(skip))
        where = f"AND (chat_id IS NULL OR chat_id NOT IN ({marks})) " if skip else ""
        rows = await self._all(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_at <= ? "
            + where
            + "ORDER BY id LIMIT ?",
            (ts(now), *skip, limit),
        )
        return [dict(row) | {"payload": json.loads(row["payload"])} for row in rows]

    async def due_outbox_for(self, now: datetime, keys: Sequence[str]) -> list[dict[str, Any]]:
        """Due rows of the given chats (`ticket:<id>`: a ticket's card edits), in order."""
        chats = [k for k in keys if not k.startswith("ticket:")]
        tickets = [int(k[7:]) for k in keys if k.startswith("ticket:")]
        ors = []
        if chats:
            ors.append(f"chat_id IN ({', '.join('?' * len(chats))})")
        if tickets:
            ors.append(f"(chat_id IS NULL AND ticket_id IN ({', '.join('?' * len(tickets))}))")
        if not ors:
            return []
        rows = await self._all(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_at <= ? "
            f"AND ({' OR '.join(ors)}) ORDER BY id",
            (ts(now), *chats, *tickets),
        )
        return [dict(row) | {"payload": json.loads(row["payload"])} for row in rows]

    async def update_outbox(self, outbox_id: int, **fields: Any) -> None:
        if "payload" in fields:
            fields["payload"] = json.dumps(fields["payload"], ensure_ascii=False)
        sets = ", ".join(f"{name} = ?" for name in fields)
        params = [ts(v) if isinstance(v, datetime) else v for v in fields.values()]
        await self.conn.execute(f"UPDATE outbox SET {sets} WHERE id = ?", (*params, outbox_id))

    async def release_waiting(self, target: str, chat_id: str, now: datetime) -> int:
        """Outbox rows waiting for a user to start the bot become due."""
        return await self._changed(
            "UPDATE outbox SET status = 'pending', chat_id = ?, next_at = ? "
            "WHERE status = 'waiting' AND target = ?",
            (chat_id, ts(now), target),
        )

    async def waiting_for_target(self, target: str) -> list[int]:
        rows = await self._all(
            "SELECT id FROM outbox WHERE status = 'waiting' AND target = ?", (target,)
        )
        return [int(r[0]) for r in rows]

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    async def oldest_pending_outbox(self) -> datetime | None:
        """When the oldest message still to be sent was queued (waiting rows wait for their
        recipient to write again, not for the bot, and are left out)."""
        row = await self._one("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'")
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    async def pending_outbox_for(self, chat_id: str, kind: str) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT * FROM outbox WHERE status = 'pending' AND chat_id = ? AND kind = ? "
            "ORDER BY id",
            (chat_id, kind),
        )
        return [dict(row) | {"payload": json.loads(row["payload"])} for row in rows]

    async def mark_batch_sent(
        self, outbox_ids: Sequence[int], chat_id: str, message_id: str, now: datetime
    ) -> None:
        """The card rows delivered together as one batch message (one transaction's part)."""
        for outbox_id in outbox_ids:
            row = await self._one("SELECT payload FROM outbox WHERE id = ?", (outbox_id,))
            payload = json.loads(row[0]) if row else {}
            await self.conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, message_id = ?, "
                "attempts = attempts + 1, error = NULL, payload = ? "
                "WHERE id = ? AND chat_id = ?",
                (
                    ts(now),
                    message_id,
                    json.dumps(payload | {"batch": True}, ensure_ascii=False),
                    outbox_id,
                    chat_id,
                ),
            )

    async def batch_messages(self, ticket_id: int) -> list[tuple[str, str]]:
        """(chat, message) of the batch cards that list the ticket."""
        rows = await self._all(
            "SELECT chat_id, message_id, payload FROM outbox WHERE ticket_id = ? "
            "AND kind = 'card' AND status = 'sent' AND message_id IS NOT NULL ORDER BY id",
            (ticket_id,),
        )
        return [(str(r[0]), str(r[1])) for r in rows if json.loads(r[2]).get("batch")]

    async def batch_tickets(self, chat_id: str, message_id: str) -> list[int]:
        """The tickets a batch card lists, in their order."""
        rows = await self._all(
            "SELECT ticket_id, payload FROM outbox WHERE chat_id = ? AND message_id = ? "
            "AND kind = 'card' AND status = 'sent' ORDER BY id",
            (chat_id, message_id),
        )
        return [int(r[0]) for r in rows if json.loads(r[1]).get("batch")]
