"""Sending limits shared by the bot processes on one PostgreSQL database (issue 10).

A token bucket per limit key (`telegram`: 30 messages a second in all; `telegram:<group>`: 20 a
minute), one row each in `send_budget`, on the database's clock. A send reserves one token of
every bucket it counts against in one statement; the row lock orders reservations from every
process, and a bucket may go below zero: the reserving sender waits until its token has refilled
(`-tokens / rate` seconds) and then sends. So the processes together keep each limit, whatever
their number, at one round trip per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.storage.health import STORAGE_ERRORS
from bot.storage.sql import Connection, PostgresConnection

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One limit: `capacity` messages at once, refilling at `rate` a second."""

    key: str
    rate: float
    capacity: float


async def reserve(conn: Connection, buckets: Sequence[Bucket]) -> float:
    """Take a token from each bucket (distinct keys); seconds to wait before sending."""
    if not buckets:
        return 0.0
    rows = await conn.execute_fetchall(
        "INSERT INTO send_budget AS b (key, tokens, at, rate) "
        "SELECT k, c - 1, extract(epoch from clock_timestamp()), r "
        "FROM unnest(?::text[], ?::float8[], ?::float8[]) AS u(k, c, r) "
        "ON CONFLICT (key) DO UPDATE SET "
        "tokens = LEAST(excluded.tokens + 1, b.tokens + (excluded.at - b.at) * excluded.rate) - 1, "
        "at = excluded.at, rate = excluded.rate "
        "RETURNING tokens, rate",
        ([b.key for b in buckets], [b.capacity for b in buckets], [b.rate for b in buckets]),
    )
    return max(0.0, *(-float(r[0]) / float(r[1]) for r in rows))


class SharedBudget:
    """The budget on a connection of its own: a reservation never waits behind the
    handlers' transactions on the bot's connection (it is made again when lost)."""

    def __init__(self, conn: PostgresConnection) -> None:
        self.conn = conn
        self._lock = asyncio.Lock()
        self.reservations = 0

    @classmethod
    async def open(cls, url: str) -> SharedBudget:
        return cls(await PostgresConnection.open(url))

    async def reserve(self, buckets: Sequence[Bucket]) -> float:
        """Seconds to wait before sending; when the database cannot be asked, the slowest
        bucket's interval (a process never sends faster than one limit's whole rate)."""
        try:
            async with self._lock:
                await self.conn.ready()
                wait = await reserve(self.conn, buckets)
        except STORAGE_ERRORS as exc:
            logger.warning("send budget unavailable (%s): pacing by itself", exc)
            return max(1.0 / b.rate for b in buckets)
        self.reservations += 1
        return wait

    async def close(self) -> None:
        await self.conn.close()
