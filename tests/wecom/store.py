"""A durable callback store on aiosqlite for the WeCom edge tests (the neutral inbox comes later)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import aiosqlite

from bot.channels.wecom.messages import Message


class SqliteStore:
    """INSERT OR IGNORE by the message's key: True when new, False for a retry."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        conn = await aiosqlite.connect(path)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS wecom_inbox ("
            " key TEXT PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,"
            " received_at REAL NOT NULL)"
        )
        await conn.commit()
        return cls(conn)

    async def __call__(self, message: Message) -> bool:
        cursor = await self.conn.execute(
            "INSERT OR IGNORE INTO wecom_inbox (key, kind, payload, received_at)"
            " VALUES (?, ?, ?, ?)",
            (message.key, type(message).__name__, json.dumps(asdict(message)), time.time()),
        )
        await self.conn.commit()
        return cursor.rowcount == 1

    async def keys(self) -> list[str]:
        async with self.conn.execute("SELECT key FROM wecom_inbox ORDER BY rowid") as cursor:
            return [row[0] for row in await cursor.fetchall()]

    async def close(self) -> None:
        await self.conn.close()
