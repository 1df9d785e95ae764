"""The database: the connection (SQLite or PostgreSQL), numbered migrations, transactions, and
the repositories of one transaction (`Repo`).

All SQL of the project lives in bot.storage. Rows become models (bot.core.models) there.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import aiosqlite

from bot.storage.files import StorageUnwritable, companions, unwritable
from bot.storage.followup import FollowUpRepo
from bot.storage.health import STORAGE_ERRORS, StorageHealth, StorageUnavailable
from bot.storage.inbox import InboxRepo
from bot.storage.outbox import OutboxRepo
from bot.storage.rows import SIMULATOR_APPLICATION_ID, TICKET_COLUMNS, ts
from bot.storage.sql import Connection, PostgresConnection, SqliteConnection
from bot.storage.stats import StatsRepo
from bot.storage.tickets import TicketRepo
from bot.storage.users import UserRepo

__all__ = ["TICKET_COLUMNS", "Database", "Repo", "latest_version", "ts"]

logger = logging.getLogger(__name__)


class Repo:
    """The repositories of one transaction, over one connection (Database.tx() / read()): one
    per aggregate — firms and users, tickets and their events, the outbox, the inbox, stats,
    follow-up."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.users = UserRepo(conn)
        self.tickets = TicketRepo(conn)
        self.outbox = OutboxRepo(conn)
        self.inbox = InboxRepo(conn)
        self.stats = StatsRepo(conn)
        self.followup = FollowUpRepo(conn)


class _Turns:
    """Who may use the connection next: urgent holders go before everyone still waiting.

    Recording that Telegram accepted a message is urgent: until it is recorded, a crash would
    send the message again, and under a burst dozens of handlers wait for the connection.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._urgent = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()

    @asynccontextmanager
    async def hold(self, urgent: bool) -> AsyncIterator[None]:
        if urgent:
            self._urgent += 1
            self._no_urgent.clear()
            try:
                await self._lock.acquire()
            finally:
                self._urgent -= 1
                if not self._urgent:
                    self._no_urgent.set()
        else:
            while True:
                await self._no_urgent.wait()
                await self._lock.acquire()
                if not self._urgent:
                    break
                self._lock.release()  # an urgent holder arrived meanwhile: it goes first
        try:
            yield
        finally:
            self._lock.release()


class Database:
    """Owns the connection; serialises access so transactions never interleave.

    SQLite at a path (`open`), or PostgreSQL at a URL (`connect`); the repositories are the
    same (see bot.storage.sql for the two dialects).
    """

    def __init__(self, conn: Connection, path: Path, *, label: str | None = None) -> None:
        self._conn = conn
        self.path = path
        self.dialect = conn.dialect
        self._turns = _Turns()
        self.health = StorageHealth(label or path)

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating folders and schema as needed) with WAL and foreign keys."""
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        problem = unwritable(path)  # before SQLite creates read-only -wal / -shm files
        if problem:
            raise StorageUnwritable(problem)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA busy_timeout = 5000")
            db = cls(SqliteConnection(conn), path)
            await db.migrate()
        except sqlite3.OperationalError as exc:
            await conn.close()
            names = " ".join(str(f) for f in companions(path))
            raise StorageUnwritable(
                f"数据库 {path} 无法打开或写入（{exc}）：请检查磁盘空间和 {names} 的权限"
                f" / cannot open or write {path} ({exc}): check free space and permissions"
            ) from exc
        return db

    @classmethod
    async def connect(cls, url: str) -> Database:
        """Connect to PostgreSQL at `url` (creating the schema as needed)."""
        conn = await PostgresConnection.open(url, bot=True)
        db = cls(conn, Path(), label=conn.label)
        try:
            await db.migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    @classmethod
    async def at(cls, path: Path, url: str | None) -> Database:
        """PostgreSQL when a URL is set, else SQLite at `path` (Settings.database_url/path)."""
        return await cls.connect(url) if url else await cls.open(path)

    @property
    def session(self) -> int:
        """The connection's server session: claims made in an earlier one are gone."""
        return self._conn.session

    @property
    def shared(self) -> bool:
        """Whether other bot processes may use this database (PostgreSQL)."""
        return self.dialect != "sqlite"

    async def close(self) -> None:
        """Close the connection."""
        await self._conn.close()

    async def mark_simulator(self) -> None:
        """Mark the file as the local simulator's (SQLite's header field for a file's kind)."""
        if self.dialect != "sqlite":
            raise StorageUnavailable("the simulator keeps its database in SQLite")
        await self._conn.execute(f"PRAGMA application_id = {SIMULATOR_APPLICATION_ID}")

    async def is_simulator(self) -> bool:
        """Whether the local simulator made this database (its fake groups and tickets)."""
        if self.dialect != "sqlite":
            return False
        rows = await self._conn.execute_fetchall("PRAGMA application_id")
        return bool(rows) and int(rows[0][0]) == SIMULATOR_APPLICATION_ID

    async def migrate(self) -> int:
        """Bring the schema to the newest version; returns the version.

        A new database starts from the baseline script (the schema at its version); an older
        one takes each numbered migration above its version, each in its own transaction.
        """
        conn = self._conn
        scripts = _migrations()
        await conn.migrations_begin()
        try:
            current, fresh = await conn.schema_version()
            version = current
            if fresh:
                number, sql = _baseline()
                await conn.apply(sql, number)
                logger.info("database created at version %d (baseline)", number)
                version = current = number
            for number, name, sql in scripts:
                if number <= current:
                    continue
                await conn.apply(sql, number)
                logger.info("database migrated to version %d (%s)", number, name)
                version = number
            await conn.migrations_check()
        finally:
            await conn.migrations_end()
        return version

    @asynccontextmanager
    async def tx(self, *, urgent: bool = False) -> AsyncIterator[Repo]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error).

        `urgent` transactions go before every transaction still waiting for the connection.
        """
        async with self._turns.hold(urgent):
            try:
                await self._conn.begin()
                try:
                    yield Repo(self._conn)
                except BaseException:
                    await self._conn.rollback()
                    raise
                try:
                    await self._conn.commit()
                except STORAGE_ERRORS:
                    await self._conn.rollback()
                    raise
            except STORAGE_ERRORS as exc:
                self.health.failed(exc)
                raise
            self.health.ok()

    @asynccontextmanager
    async def write1(self, *, urgent: bool = False) -> AsyncIterator[Repo]:
        """For exactly one write statement, which the database commits by itself (no
        BEGIN/COMMIT round trips: the inbox writes twice for every update)."""
        async with self._turns.hold(urgent):
            try:
                await self._conn.ready()
                yield Repo(self._conn)
            except STORAGE_ERRORS as exc:
                self.health.failed(exc)
                raise
            self.health.ok()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Repo]:
        """Reads outside a transaction (still serialised with writes)."""
        async with self._turns.hold(False):
            await self._conn.ready()
            yield Repo(self._conn)


def _migrations() -> list[tuple[int, str, str]]:
    """The numbered migration scripts: (number, file name, SQL), in order."""
    found = []
    for entry in resources.files("bot.storage.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_\w+\.sql", entry.name)
        if match:
            found.append((int(match[1]), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def latest_version() -> int:
    """The schema version this release makes."""
    return max([_baseline()[0], *(number for number, _, _ in _migrations())])


def _baseline() -> tuple[int, str]:
    """The baseline script and the version it makes (its `-- version: N` line)."""
    sql = resources.files("bot.storage.migrations").joinpath("baseline.sql").read_text("utf-8")
    match = re.search(r"^-- version: (\d+)$", sql, re.M)
    assert match, "baseline.sql names its version"
    return int(match[1]), sql
