"""One connection interface over SQLite (aiosqlite) and PostgreSQL (asyncpg).

The repositories write one SQL: SQLite's spelling of the common subset, with `?` or `:name`
parameters, `INSERT ... ON CONFLICT` for upserts, text timestamps and integer flags. This module
is the only place that knows the two dialects apart:

- `Connection` has the few calls the repositories make (`execute`, `execute_fetchall`,
  `execute_insert`, `executemany`, `script`), named as aiosqlite names them;
- `SqliteConnection` passes them to aiosqlite; `PostgresConnection` rewrites each statement once
  (parameters to `$n`, SQLite's index hints dropped; in migrations, DDL types and SQLite's
  append-only triggers as one PL/pgSQL function) and runs it on asyncpg.

Aggregates are written so that both have them built in: conditions counted with
`COUNT(*) FILTER (WHERE …)`, sums that are 0 for no rows with `COALESCE(SUM(…), 0)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

import aiosqlite

from bot.storage.health import StorageUnavailable

Params = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Result:
    """What a write reports: how many rows it changed."""

    rowcount: int


class Row(Protocol):
    """A result row: by index, by column name, `keys()`, iteration over its values;
    aiosqlite.Row and asyncpg.Record."""

    def __getitem__(self, key: int | str) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...
    def keys(self) -> Iterable[str]: ...


class Connection(Protocol):
    """The calls the repositories make on a connection."""

    dialect: str
    session: int  # the server session (a connection made again is a new one)

    async def execute(self, sql: str, params: Params = ()) -> Result: ...
    async def execute_fetchall(self, sql: str, params: Params = ()) -> Sequence[Any]: ...
    async def execute_insert(self, sql: str, params: Params = ()) -> int: ...
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    async def script(self, sql: str) -> None: ...
    async def ids_given(self, table: str) -> None: ...

    # Transactions, migrations and the connection's life (used by Database only).
    async def begin(self) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def ready(self) -> None: ...
    async def close(self) -> None: ...
    async def migrations_begin(self) -> None: ...
    async def schema_version(self) -> tuple[int, bool]: ...
    async def apply(self, sql: str, version: int) -> None: ...
    async def migrations_check(self) -> None: ...
    async def migrations_end(self) -> None: ...


class SqliteConnection:
    """aiosqlite, as it is."""

    dialect = "sqlite"
    session = 1  # one file, one process: nothing is claimed (bot.storage.claims)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.raw = conn

    async def execute(self, sql: str, params: Params = ()) -> Result:
        cursor = await self.raw.execute(sql, params)
        return Result(cursor.rowcount)

    async def execute_fetchall(self, sql: str, params: Params = ()) -> Sequence[Any]:
        return list(await self.raw.execute_fetchall(sql, params))

    async def execute_insert(self, sql: str, params: Params = ()) -> int:
        row = await self.raw.execute_insert(sql, params)
        assert row is not None
        return int(row[0])

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.raw.executemany(sql, rows)

    async def script(self, sql: str) -> None:
        await self.raw.executescript(sql)

    async def ids_given(self, table: str) -> None:
        return None  # SQLite's next id is always above the largest

    async def begin(self) -> None:
        await self.raw.execute("BEGIN IMMEDIATE")

    async def commit(self) -> None:
        await self.raw.execute("COMMIT")

    async def rollback(self) -> None:
        # After a failed COMMIT SQLite may have rolled back by itself.
        if self.raw.in_transaction:
            await self.raw.execute("ROLLBACK")

    async def ready(self) -> None:
        return None

    async def close(self) -> None:
        await self.raw.close()

    async def migrations_begin(self) -> None:
        # Foreign keys are off while tables are rebuilt (a migration may replace a table that
        # others refer to) and checked once after: a migration that breaks one fails there.
        await self.raw.execute("PRAGMA foreign_keys = OFF")

    async def schema_version(self) -> tuple[int, bool]:
        version = int((await self.execute_fetchall("PRAGMA user_version"))[0][0])
        tables = await self.execute_fetchall(
            "SELECT COUNT(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        )
        return version, version == 0 and int(tables[0][0]) == 0

    async def apply(self, sql: str, version: int) -> None:
        await self.raw.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")

    async def migrations_check(self) -> None:
        broken = await self.execute_fetchall("PRAGMA foreign_key_check")
        if broken:
            raise RuntimeError(f"foreign keys broken after migrating: {list(broken)[:5]}")

    async def migrations_end(self) -> None:
        await self.raw.execute("PRAGMA foreign_keys = ON")


# -- PostgreSQL -----------------------------------------------------------------------------

# Run at every start, before the migrations: the table of the schema's version.
POSTGRES_PRELUDE = "CREATE TABLE IF NOT EXISTS yimi_schema (version integer NOT NULL);"

# The one function SQLite's append-only triggers become; created with the first script that
# has such a trigger (the baseline), not at every start, so a role that owns no function can
# run the bot.
_APPEND_ONLY = """CREATE OR REPLACE FUNCTION yimi_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
"""

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|:[A-Za-z_]\w*|\?|--[^\n]*|[^'\"?:-]+|.", re.S)


# SQLite's index hint (PostgreSQL's planner picks the partial index by itself).
_SQLITE_ONLY = re.compile(r"\bINDEXED BY \w+", re.I)


@lru_cache(maxsize=2048)
def postgres_statement(sql: str) -> tuple[str, tuple[str, ...]]:
    """A statement in PostgreSQL's spelling, and the names of its `:name` parameters in order
    (empty for `?` parameters)."""
    out: list[str] = []
    names: list[str] = []
    count = 0
    for token in _TOKEN.findall(sql):
        if token == "?":
            count += 1
            out.append(f"${count}")
        elif token.startswith(":") and token != "::" and len(token) > 1:
            name = token[1:]
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
        elif token.startswith(("'", '"')):
            out.append(token)
        else:
            out.append(_SQLITE_ONLY.sub("", token))
    return "".join(out), tuple(names)


_DDL = [
    (
        re.compile(r"\bINTEGER PRIMARY KEY( AUTOINCREMENT)?", re.I),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    # SQLite's append-only trigger as PostgreSQL's: one shared function raises.
    (
        re.compile(
            r"CREATE TRIGGER (\w+) BEFORE (UPDATE|DELETE) ON (\w+)\s*BEGIN SELECT RAISE\(ABORT, "
            r"'[^']*'\); END;",
            re.I,
        ),
        r"CREATE TRIGGER \1 BEFORE \2 ON \3 FOR EACH ROW EXECUTE FUNCTION yimi_append_only();",
    ),
]


def postgres_ddl(sql: str) -> str:
    """A migration script in PostgreSQL's spelling (types and triggers)."""
    for pattern, replacement in _DDL:
        sql = pattern.sub(replacement, sql)
    if "yimi_append_only()" in sql:
        sql = _APPEND_ONLY + sql
    return sql


def _rowcount(status: str) -> int:
    """asyncpg's command status ('UPDATE 3', 'INSERT 0 1') as a row count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _number(text: str) -> int | float:
    """A numeric value (text) as int when whole, else float, as SQLite gives it."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


class PostgresConnection:
    """asyncpg behind the same calls, statements rewritten once each (cached).

    Errors of the server's reach (connection lost, server shutting down, disk full, read-only)
    come out as `StorageUnavailable`, as SQLite's OperationalError: the inbox and the outbox
    keep what they hold and retry; the connection is made again on the next use.
    """

    dialect = "postgresql"

    def __init__(self, url: str, conn: Any, *, bot: bool = False) -> None:
        self.url = url
        self.raw = conn
        self.label = label(url)
        self.bot = bot
        # Counts the server sessions this connection has had: the advisory locks a session
        # holds (bot.storage.claims) end with it, so a claim names the session it was made in.
        self.session = 1

    @classmethod
    async def open(cls, url: str, *, bot: bool = False) -> PostgresConnection:
        """A connection; `bot`: a running bot's, which holds RUN_LOCK shared while it lives."""
        return cls(url, await cls._connect(url, bot=bot), bot=bot)

    @staticmethod
    async def _connect(url: str, *, bot: bool = False) -> Any:
        import asyncpg  # only deployments on PostgreSQL load the driver

        conn = None
        try:
            conn = await asyncpg.connect(url, timeout=10)
            # SUM of integers is numeric in PostgreSQL: back to int (or float), as SQLite.
            await conn.set_type_codec(
                "numeric", encoder=str, decoder=_number, schema="pg_catalog", format="text"
            )
            if bot:  # waits while a restore runs (it holds the lock exclusively)
                await conn.execute(f"SELECT pg_advisory_lock_shared({RUN_LOCK})")
        except Exception as exc:
            if conn is not None:
                conn.terminate()
            if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
                raise StorageUnavailable(f"PostgreSQL {label(url)}: {exc}") from exc
            raise
        return conn

    @staticmethod
    def _args(sql: str, params: Params) -> tuple[str, list[Any]]:
        statement, names = postgres_statement(sql)
        if isinstance(params, Mapping):
            return statement, [params[name] for name in names]
        return statement, list(params)

    async def _run(self, method: str, statement: str, *args: Any) -> Any:
        try:
            return await getattr(self.raw, method)(statement, *args)
        except Exception as exc:
            if _unavailable(exc):
                # A connection the server cut can be left mid-operation on asyncpg's side:
                # dropped here, the next use connects again (ready()).
                self.raw.terminate()
                raise StorageUnavailable(f"PostgreSQL {self.label}: {exc}") from exc
            raise

    async def execute(self, sql: str, params: Params = ()) -> Result:
        statement, args = self._args(sql, params)
        status = await self._run("execute", statement, *args)
        return Result(_rowcount(status))

    async def execute_fetchall(self, sql: str, params: Params = ()) -> Sequence[Any]:
        statement, args = self._args(sql, params)
        return list(await self._run("fetch", statement, *args))

    async def execute_insert(self, sql: str, params: Params = ()) -> int:
        statement, args = self._args(sql.rstrip().rstrip(";") + " RETURNING id", params)
        return int(await self._run("fetchval", statement, *args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        statement, _ = postgres_statement(sql)
        await self._run("executemany", statement, [list(r) for r in rows])

    async def script(self, sql: str) -> None:
        await self._run("execute", postgres_ddl(sql))

    async def ids_given(self, table: str) -> None:
        """Rows were inserted with their ids: the identity continues above the largest."""
        await self._run(
            "execute",
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"GREATEST((SELECT MAX(id) FROM {table}), 1))",
        )

    async def begin(self) -> None:
        await self.ready()
        await self._run("execute", "BEGIN")

    async def commit(self) -> None:
        await self._run("execute", "COMMIT")

    async def rollback(self) -> None:
        if not self.raw.is_closed() and self.raw.is_in_transaction():
            await self._run("execute", "ROLLBACK")

    async def ready(self) -> None:
        """Connect again when the connection was lost."""
        if self.raw.is_closed():
            self.raw = await self._connect(self.url, bot=self.bot)
            self.session += 1

    async def close(self) -> None:
        await self.raw.close()

    async def migrations_begin(self) -> None:
        # One process migrates at a time (several start together on one database).
        await self._run("execute", f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
        await self._run("execute", POSTGRES_PRELUDE)

    async def schema_version(self) -> tuple[int, bool]:
        rows = await self.execute_fetchall("SELECT version FROM yimi_schema")
        return (int(rows[0][0]), False) if rows else (0, True)

    async def apply(self, sql: str, version: int) -> None:
        await self._run(
            "execute",
            f"BEGIN;\n{postgres_ddl(sql)}\nDELETE FROM yimi_schema;\n"
            f"INSERT INTO yimi_schema (version) VALUES ({int(version)});\nCOMMIT;",
        )

    async def migrations_check(self) -> None:
        return None  # foreign keys are checked as each statement runs

    async def migrations_end(self) -> None:
        if not self.raw.is_closed():
            if self.raw.is_in_transaction():
                await self._run("execute", "ROLLBACK")
            await self._run("execute", f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")


_MIGRATION_LOCK = 0x59494D49  # "YIMI": the advisory lock held while a process migrates
# Held shared by every running bot's connection; `restore` takes it exclusively.
RUN_LOCK = 0x59494D52


def label(url: str) -> str:
    """The URL without its password, for logs and messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _unavailable(exc: BaseException) -> bool:
    """Whether an asyncpg error means the database cannot be reached or written now (rather
    than a wrong statement): connection errors, class 53 (insufficient resources: disk full),
    57 (operator intervention: shutdown), 08 (connection), 25006 (read-only transaction)."""
    import asyncpg

    if isinstance(
        exc,
        OSError
        | asyncpg.InterfaceError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions._base.InternalClientError,
    ):
        return True
    state = getattr(exc, "sqlstate", "") or ""
    return state[:2] in {"53", "57", "08"} or state == "25006"
