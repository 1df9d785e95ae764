"""Moving a county's SQLite database into PostgreSQL (`yimi-bot migrate-db`), checked row for row.

The SQLite file is brought to the newest schema first (as the bot would at start), the target
database gets the same schema, and then every table is copied in one PostgreSQL transaction, in
the order of their foreign keys (a column that refers to its own table, such as a ticket merged
into a later one, is filled in after its table). Afterwards every row of every table is read
back from both and compared; only then is the copy committed. Anything wrong — the bot still
running on the file, a target that already holds data, a row that differs — leaves the target
as it was and says so in one line.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.storage.backup import RunLock
from bot.storage.db import Database
from bot.storage.sql import PostgresConnection

logger = logging.getLogger(__name__)

BATCH = 2000


class TransferError(Exception):
    """The move was refused or failed; the message is the one line to print."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # the primary key (rowid order where there is none)
    self_refs: tuple[str, ...]  # columns that refer to this table itself
    refers_to: frozenset[str]
    serial: bool  # an INTEGER PRIMARY KEY id (an identity in PostgreSQL)


def _tables(conn: sqlite3.Connection) -> list[Table]:
    """The bot's tables in an order where each comes after the tables it refers to."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    tables = {}
    for name in names:
        info = list(conn.execute(f"PRAGMA table_info({name})"))
        columns = tuple(str(r[1]) for r in info)
        key = tuple(str(r[1]) for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        keys = list(conn.execute(f"PRAGMA foreign_key_list({name})"))
        self_refs = tuple(str(r[3]) for r in keys if r[2] == name)
        refers = frozenset(str(r[2]) for r in keys if r[2] != name)
        serial = key == ("id",) and any(r[1] == "id" and r[2].upper() == "INTEGER" for r in info)
        tables[name] = Table(name, columns, key or columns, self_refs, refers, serial)
    ordered: list[Table] = []
    placed: set[str] = set()
    while len(ordered) < len(tables):
        ready = [t for n, t in tables.items() if n not in placed and t.refers_to <= placed]
        if not ready:
            raise TransferError(f"表的外键成环 / tables refer to each other in a cycle: {tables}")
        for table in ready:
            ordered.append(table)
            placed.add(table.name)
    return ordered


def sqlite_path(url: str) -> Path:
    """The file of a sqlite:/// URL (SQLAlchemy's form: sqlite:///relative.db,
    sqlite:////absolute/path.db), or a plain path."""
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if "://" in url:
        raise TransferError(f"--from 应为 sqlite:///文件 / --from must be sqlite:///FILE: {url}")
    return Path(url)


def _normal(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row's values as both databases give them (SQLite's REAL 1.0 is PostgreSQL's 1.0)."""
    return tuple(float(v) if isinstance(v, float) else v for v in row)


async def migrate_db(source: Path, target_url: str) -> dict[str, int]:
    """Copy the SQLite database at `source` into the PostgreSQL database at `target_url`;
    returns the rows copied per table."""
    if not source.exists():
        raise TransferError(f"源数据库不存在 / no such database: {source}")
    lock = RunLock(source)
    if not lock.acquire():
        raise TransferError(
            f"机器人正在使用 {source}：请先停止机器人 / the bot is running on {source}: stop it first"
        )
    try:
        await (await Database.open(source)).close()  # the newest schema, as at start
        target = await Database.connect(target_url)  # the same schema there
        await target.close()
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            return await _copy(conn, target_url)
        finally:
            conn.close()
    finally:
        lock.release()


async def _copy(conn: sqlite3.Connection, target_url: str) -> dict[str, int]:
    tables = _tables(conn)
    pg = await PostgresConnection.open(target_url)
    counts: dict[str, int] = {}
    try:
        for table in tables:
            rows = await pg.execute_fetchall(f"SELECT COUNT(*) FROM {table.name}")
            if int(rows[0][0]):
                raise TransferError(
                    f"目标数据库的 {table.name} 表已有数据：只能迁入空数据库 / "
                    f"the target's {table.name} is not empty: migrate into an empty database"
                )
        await pg.begin()
        try:
            for table in tables:
                counts[table.name] = await _copy_table(conn, pg, table)
            for table in tables:
                await _compare(conn, pg, table)
            await pg.commit()
        except BaseException:
            await pg.rollback()
            raise
    finally:
        await pg.close()
    return counts


async def _copy_table(conn: sqlite3.Connection, pg: PostgresConnection, table: Table) -> int:
    columns = ", ".join(table.columns)
    marks = ", ".join("?" * len(table.columns))
    insert = f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"
    later = [table.columns.index(c) for c in table.self_refs]
    keys = [table.columns.index(c) for c in table.key]
    cursor = conn.execute(f"SELECT {columns} FROM {table.name} ORDER BY rowid")
    copied = 0
    # Self-references are set once the whole table is in: a row may point at a later batch's.
    refs: dict[int, list[tuple[Any, ...]]] = {index: [] for index in later}
    while batch := cursor.fetchmany(BATCH):
        first = [tuple(None if i in later else v for i, v in enumerate(row)) for row in batch]
        await pg.executemany(insert, first)
        for index in later:
            refs[index] += [
                (row[index], *(row[k] for k in keys)) for row in batch if row[index] is not None
            ]
        copied += len(batch)
    where = " AND ".join(f"{k} = ?" for k in table.key)
    for column, index in zip(table.self_refs, later, strict=True):
        await pg.executemany(f"UPDATE {table.name} SET {column} = ? WHERE {where}", refs[index])
    if table.serial:
        await pg.ids_given(table.name)
    logger.info("migrate-db: %s: %d rows", table.name, copied)
    return copied


async def _compare(conn: sqlite3.Connection, pg: PostgresConnection, table: Table) -> None:
    """Every row of the table equal in both databases (compared as sorted lists of rows, so
    that the two databases' collations do not matter)."""
    select = f"SELECT {', '.join(table.columns)} FROM {table.name}"
    mine = sorted(repr(_normal(r)) for r in conn.execute(select))
    theirs = sorted(repr(_normal(tuple(r))) for r in await pg.execute_fetchall(select))
    if mine != theirs:
        missing = len(set(mine) - set(theirs))
        raise TransferError(
            f"{table.name} 表核对不一致：源 {len(mine)} 行，目标 {len(theirs)} 行，{missing} 行不同"
            f" / {table.name} differs after the copy ({missing} rows)"
        )
