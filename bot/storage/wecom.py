"""The WeCom channel's tables: its inbox, the 微信客服 cursor and the template cards.

A repository of its own over the connection of a `Repo` (one transaction with the workflow's
writes when needed), so that the channel's storage does not grow the shared `Repo`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.storage.db import Repo, ts


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One stored callback or pulled message, not yet handled."""

    id: int
    key: str
    kind: str
    payload: dict[str, object]
    attempts: int


@dataclass(frozen=True, slots=True)
class CardRow:
    """A template card: where the workflow sent it and how WeCom can update it now."""

    message_id: str
    chat_id: str
    task_id: str
    userids: tuple[str, ...]
    response_code: str | None


class WeComRepo:
    """Queries of the WeCom tables on one `Repo`'s connection."""

    def __init__(self, repo: Repo) -> None:
        self.conn = repo.conn

    # -- inbox -------------------------------------------------------------------------------

    async def store(self, key: str, kind: str, payload: dict[str, object], now: datetime) -> bool:
        """Store one item; False when an item with this key was stored before (a retry)."""
        cursor = await self.conn.execute(
            "INSERT INTO wecom_inbox (key, kind, payload, received_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (key, kind, json.dumps(payload, ensure_ascii=False), ts(now)),
        )
        return cursor.rowcount == 1

    async def unhandled(self, limit: int = 200) -> list[InboxRow]:
        """The oldest items not handled yet, in arrival order."""
        rows = await self.conn.execute_fetchall(
            "SELECT id, key, kind, payload, attempts FROM wecom_inbox "
            "WHERE handled_at IS NULL ORDER BY id LIMIT ?",
            (limit,),
        )
        return [
            InboxRow(int(r[0]), str(r[1]), str(r[2]), json.loads(r[3]), int(r[4])) for r in rows
        ]

    async def handled(self, item_id: int, now: datetime) -> None:
        """The item's handling committed."""
        await self.conn.execute(
            "UPDATE wecom_inbox SET handled_at = ? WHERE id = ?", (ts(now), item_id)
        )

    async def failed(self, item_id: int, error: str, *, give_up: bool, now: datetime) -> None:
        """The item's handling failed: counted, and set aside after too many attempts."""
        await self.conn.execute(
            "UPDATE wecom_inbox SET attempts = attempts + 1, error = ?, "
            "handled_at = CASE WHEN ? = 1 THEN ? ELSE handled_at END WHERE id = ?",
            (error[:500], int(give_up), ts(now), item_id),
        )

    async def count(self) -> int:
        """How many items were ever stored (tests and benchmarks)."""
        rows = await self.conn.execute_fetchall("SELECT COUNT(*) FROM wecom_inbox")
        return int(next(iter(rows))[0])

    # -- 微信客服 cursor ---------------------------------------------------------------------

    async def kf_cursor(self, open_kfid: str) -> str:
        """Where the last stored kf/sync_msg page ended ('' before the first)."""
        rows = await self.conn.execute_fetchall(
            "SELECT cursor FROM wecom_kf_cursor WHERE open_kfid = ?", (open_kfid,)
        )
        found = next(iter(rows), None)
        return str(found[0]) if found else ""

    async def set_kf_cursor(self, open_kfid: str, cursor: str, now: datetime) -> None:
        """Move the cursor (in the transaction that stores the page it ends)."""
        await self.conn.execute(
            "INSERT INTO wecom_kf_cursor (open_kfid, cursor, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(open_kfid) DO UPDATE SET cursor = excluded.cursor, "
            "updated_at = excluded.updated_at",
            (open_kfid, cursor, ts(now)),
        )

    # -- conversation ----------------------------------------------------------------------

    async def last_relay(self, chat_id: str) -> tuple[str, int, str] | None:
        """(message id, ticket id, sent at) of the latest message relayed from a team (or a
        result) into a firm's chat: WeChat has no reply-to, so a firm answers the latest one."""
        rows = await self.conn.execute_fetchall(
            "SELECT ml.message_id, ml.ticket_id, o.sent_at FROM message_links ml "
            "JOIN outbox o ON o.chat_id = ml.chat_id AND o.message_id = ml.message_id "
            "WHERE ml.chat_id = ? AND ml.purpose IN ('relay', 'result') "
            "ORDER BY o.sent_at DESC, o.id DESC LIMIT 1",
            (chat_id,),
        )
        r = next(iter(rows), None)
        return (str(r[0]), int(r[1]), str(r[2])) if r else None

    # -- template cards ----------------------------------------------------------------------

    async def save_card(
        self,
        message_id: str,
        chat_id: str,
        task_id: str,
        userids: tuple[str, ...],
        response_code: str | None,
        now: datetime,
    ) -> None:
        """A card sent (or sent again in place of one WeCom no longer updates)."""
        await self.conn.execute(
            "INSERT INTO wecom_cards (message_id, chat_id, task_id, userids, response_code, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(message_id) DO UPDATE SET "
            "task_id = excluded.task_id, userids = excluded.userids, "
            "response_code = excluded.response_code, updated_at = excluded.updated_at",
            (message_id, chat_id, task_id, json.dumps(list(userids)), response_code, ts(now)),
        )

    async def card(self, message_id: str) -> CardRow | None:
        """A card by the id the workflow knows it by."""
        return await self._card("message_id", message_id)

    async def card_by_task(self, task_id: str) -> CardRow | None:
        """A card by WeCom's task_id (what a click names)."""
        return await self._card("task_id", task_id)

    async def _card(self, column: str, value: str) -> CardRow | None:
        rows = await self.conn.execute_fetchall(
            "SELECT message_id, chat_id, task_id, userids, response_code FROM wecom_cards "
            f"WHERE {column} = ?",
            (value,),
        )
        r = next(iter(rows), None)
        if r is None:
            return None
        return CardRow(str(r[0]), str(r[1]), str(r[2]), tuple(json.loads(r[3])), r[4])

    async def set_response_code(self, task_id: str, code: str | None, now: datetime) -> None:
        """A click brought a fresh response_code, or an update used the last one (None)."""
        await self.conn.execute(
            "UPDATE wecom_cards SET response_code = ?, updated_at = ? WHERE task_id = ?",
            (code, ts(now), task_id),
        )
