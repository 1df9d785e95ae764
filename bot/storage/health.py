"""Whether the database takes writes: a failure and the recovery are each reported once.

A full disk, a read-only file or an I/O error shows as `sqlite3.OperationalError` at the write
(or its COMMIT); on PostgreSQL a lost connection or a full disk as `StorageUnavailable`. Nothing is given up while it lasts: the inbox keeps updates unconfirmed or
unhandled, the outbox keeps rows pending, and each retries with backoff until a write succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Listener = Callable[[bool, str], Awaitable[None]]  # (failing, error) → tell someone


class StorageUnavailable(Exception):
    """The database cannot be reached or written now (PostgreSQL's counterpart of SQLite's
    OperationalError for a full disk: connection lost, server down, disk full, read-only)."""


# What a write raises when the storage, not the statement, failed: callers keep and retry.
STORAGE_ERRORS: tuple[type[Exception], ...] = (sqlite3.OperationalError, StorageUnavailable)


def is_storage_error(exc: BaseException) -> bool:
    """An error of the storage itself (disk full, read-only, I/O), not of the statement."""
    return isinstance(exc, STORAGE_ERRORS)


def backoff(attempt: int, base: float, most: float) -> float:
    """Seconds to wait before retry `attempt` (0, 1, ...): doubling from `base` up to `most`."""
    return float(min(most, base * 2 ** min(attempt, 16)))


class StorageHealth:
    """Writes failing or not; listeners hear the change (the first failure, the recovery)."""

    def __init__(self, where: str | Path) -> None:
        self.where = where  # the file, or the PostgreSQL URL without its password (for logs)
        self.failing = False
        self.error = ""
        self.listeners: list[Listener] = []
        self.told: set[str] = set()  # chats told about this outage
        self._tasks: set[asyncio.Task[None]] = set()

    def failed(self, exc: BaseException) -> None:
        """A write failed with a storage error; the first one of an outage is reported."""
        if self.failing:
            return
        self.failing, self.error = True, str(exc)
        logger.error(
            "database %s refuses writes (%s): updates and messages are kept and retried; "
            "free disk space or fix the file's permissions",
            self.where,
            exc,
        )
        self._tell(True)

    def ok(self) -> None:
        """A write committed; ends an outage."""
        if not self.failing:
            return
        self.failing = False
        self.told.clear()
        logger.warning("database %s takes writes again (after: %s)", self.where, self.error)
        self._tell(False)

    def first_notice(self, chat_id: str) -> bool:
        """True once per chat and outage: whether to tell this chat that storage is failing."""
        if chat_id in self.told:
            return False
        self.told.add(chat_id)
        return True

    def _tell(self, failing: bool) -> None:
        # Listeners run as tasks: the caller may hold the connection a listener wants to read.
        for listener in self.listeners:
            task = asyncio.get_running_loop().create_task(self._call(listener, failing))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _call(self, listener: Listener, failing: bool) -> None:
        try:
            await listener(failing, self.error)
        except Exception:
            logger.exception("could not report the database's state")

    async def retry(
        self, op: Callable[[], Awaitable[T]], *, base: float = 0.5, most: float = 30.0
    ) -> T:
        """Run `op` until it gets past storage errors, waiting longer after each."""
        attempt = 0
        while True:
            try:
                return await op()
            except STORAGE_ERRORS as exc:
                self.failed(exc)
                await asyncio.sleep(backoff(attempt, base, most))
                attempt += 1
