"""Benchmark: which PostgreSQL driver, on the kind of transaction the bot makes.

Run: ``.venv/bin/python bench/pg_driver.py [--n 2000] [--rounds 3]``. Prints figures (not a test).
Starts a throwaway PostgreSQL server on 127.0.0.1 (bot.storage.pgserver). One "transaction" is
what handling a report costs in statements: an INSERT ... RETURNING id, four SELECTs by key and
an UPDATE, between BEGIN and COMMIT statements (as the bot sends them), one at a time on one connection (the bot serialises its
transactions per process). Drivers: asyncpg and psycopg 3 (async), and the bot's SQLite
(aiosqlite, WAL, synchronous=NORMAL) as the baseline, all in the same run, rounds interleaved.
The first and last rows go through the bot's own storage layer (bot.storage.sql).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import asyncpg
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.storage import pgserver
from bot.storage.sql import Connection, PostgresConnection, SqliteConnection

TABLE = "t (id {pk}, a TEXT NOT NULL, b INTEGER NOT NULL DEFAULT 0)"
BASELINE = "SQLite, bot's layer (baseline)"


async def run_asyncpg(url: str, n: int) -> float:
    conn = await asyncpg.connect(url)
    await conn.execute("DROP TABLE IF EXISTS t")
    await conn.execute("CREATE TABLE " + TABLE.format(pk="BIGSERIAL PRIMARY KEY"))
    start = time.perf_counter()
    for i in range(n):
        await conn.execute("BEGIN")
        rid = await conn.fetchval("INSERT INTO t (a) VALUES ($1) RETURNING id", f"x{i}")
        for _ in range(4):
            await conn.fetch("SELECT * FROM t WHERE id = $1", rid)
        await conn.execute("UPDATE t SET b = b + 1 WHERE id = $1", rid)
        await conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    await conn.close()
    return elapsed


async def run_psycopg(url: str, n: int) -> float:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await conn.execute("DROP TABLE IF EXISTS t")
    await conn.execute("CREATE TABLE " + TABLE.format(pk="BIGSERIAL PRIMARY KEY"))
    start = time.perf_counter()
    for i in range(n):
        await conn.execute("BEGIN")
        cur = await conn.execute("INSERT INTO t (a) VALUES (%s) RETURNING id", (f"x{i}",))
        row = await cur.fetchone()
        assert row is not None
        for _ in range(4):
            cur = await conn.execute("SELECT * FROM t WHERE id = %s", (row[0],))
            await cur.fetchall()
        await conn.execute("UPDATE t SET b = b + 1 WHERE id = %s", (row[0],))
        await conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    await conn.close()
    return elapsed


async def run_layer(conn: Connection, n: int) -> float:
    """The same transaction through the bot's storage layer (one SQL for both backends)."""
    await conn.execute("DROP TABLE IF EXISTS t")
    await conn.script("CREATE TABLE " + TABLE.format(pk="INTEGER PRIMARY KEY") + ";")
    start = time.perf_counter()
    for i in range(n):
        await conn.begin()
        rid = await conn.execute_insert("INSERT INTO t (a) VALUES (?)", (f"x{i}",))
        for _ in range(4):
            await conn.execute_fetchall("SELECT * FROM t WHERE id = ?", (rid,))
        await conn.execute("UPDATE t SET b = b + 1 WHERE id = ?", (rid,))
        await conn.commit()
    elapsed = time.perf_counter() - start
    await conn.close()
    return elapsed


async def layer_sqlite(path: Path, n: int) -> float:
    raw = await aiosqlite.connect(path, isolation_level=None)
    await raw.execute("PRAGMA journal_mode = WAL")
    await raw.execute("PRAGMA synchronous = NORMAL")
    return await run_layer(SqliteConnection(raw), n)


async def layer_postgres(url: str, n: int) -> float:
    return await run_layer(await PostgresConnection.open(url), n)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="transactions per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="yimi-bench-"))
    server = pgserver.start(root / "pg")
    url = server.url()
    results: dict[str, list[float]] = {}
    try:
        for r in range(args.rounds):
            path = root / f"layer{r}.db"
            runs: list[tuple[str, Callable[[], Awaitable[float]]]] = [
                (BASELINE, lambda path=path: layer_sqlite(path, args.n)),  # type: ignore[misc]
                ("asyncpg", lambda: run_asyncpg(url, args.n)),
                ("psycopg 3", lambda: run_psycopg(url, args.n)),
                ("PostgreSQL, bot's layer (asyncpg)", lambda: layer_postgres(url, args.n)),
            ]
            for name, run in runs:
                results.setdefault(name, []).append(await run() / args.n * 1000)
    finally:
        server.stop()
    base = statistics.median(results[BASELINE])
    print(f"{args.n} transactions of 6 statements, median of {args.rounds} rounds:")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:36s} {median:6.3f} ms per transaction ({median / base:4.2f}x the baseline)")
    fast, slow = (statistics.median(results[k]) for k in ("asyncpg", "psycopg 3"))
    print(f"asyncpg takes {fast / slow:.2f}x the time of psycopg 3 on this transaction")


if __name__ == "__main__":
    asyncio.run(main())
