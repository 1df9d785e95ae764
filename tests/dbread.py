"""Reading a running bot's database from a test, on either backend, with a connection of its own
(what an office's own query tool would see: committed rows only)."""

from __future__ import annotations

from typing import Any

import psycopg

from bot.config import Settings
from bot.storage.sql import postgres_statement


class DatabaseError(Exception):
    """A statement the database refused (either backend)."""


def query(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement; its rows as tuples (SQL in the bot's dialect, `?` parameters)."""
    import sqlite3

    url = settings.database_dsn
    if url is None:
        conn = sqlite3.connect(settings.database_path)
        try:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(str(exc)) from exc
        finally:
            conn.close()
    statement, _ = postgres_statement(sql)
    for n in range(len(params), 0, -1):
        statement = statement.replace(f"${n}", "%s")
    try:
        with psycopg.connect(url, autocommit=True) as pg:
            cursor = pg.execute(statement.encode(), params)  # type: ignore[call-overload]
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
    except psycopg.Error as exc:
        raise DatabaseError(str(exc)) from exc
