"""PostgreSQL for the tests: one throwaway server per test run, one new database per test.

The server starts the first time a test asks for it (bot.storage.pgserver: the machine's own
PostgreSQL on 127.0.0.1, deleted at the end). Each test gets a database copied from a template
that was migrated once, so a test on PostgreSQL costs one CREATE DATABASE.

Where PostgreSQL cannot be had, the PostgreSQL half of the suites is skipped with one line that
says why, except when YIMI_REQUIRE_POSTGRES=1 (`make test` sets it once it installed the server,
as CI does): then it fails.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import asyncpg
import pytest

from bot.storage import pgserver
from bot.storage.db import Database

TEMPLATE = "yimi_template"


class Postgres:
    """The run's server, started on first use."""

    def __init__(self) -> None:
        self.server: pgserver.Server | None = None
        self.failure: str | None = None
        self.templated = False
        self._names = itertools.count(1)

    def get(self) -> pgserver.Server:
        if self.server is None and self.failure is None:
            try:
                self.server = pgserver.start(Path(tempfile.mkdtemp(prefix="yimi-pg-")) / "pg")
            except RuntimeError as exc:
                self.failure = str(exc)
        if self.server is None:
            reason = f"PostgreSQL not available: {self.failure}"
            if os.environ.get("YIMI_REQUIRE_POSTGRES") == "1":
                pytest.fail(reason + " (YIMI_REQUIRE_POSTGRES=1)", pytrace=False)
            pytest.skip(reason)
        return self.server

    async def fresh_database(self) -> str:
        """The URL of a new database with the current schema."""
        server = self.get()
        admin = await asyncpg.connect(server.url())
        try:
            if not self.templated:
                await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
                await admin.execute(f"CREATE DATABASE {TEMPLATE}")
                db = await Database.connect(server.url(TEMPLATE))
                await db.close()
                self.templated = True
            name = f"test_{os.getpid()}_{next(self._names)}"
            await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        finally:
            await admin.close()
        return server.url(name)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


POSTGRES = Postgres()
