"""Chats claimed by one bot process at a time, so that each chat's work stays in order while
several processes on one PostgreSQL share it (issue 10).

A claim is a session-level advisory lock on (space, hashtext(chat key)), taken with
`pg_try_advisory_lock`: it never waits (a chat another process holds is skipped, as rows with
`FOR UPDATE SKIP LOCKED`), costs one statement for a whole batch of chats, and ends with the
holder's session: a process that dies (even `kill -9`) loses its claims the moment its
connection closes, and another process takes the chat up from the database. Two chats whose keys
hash alike share one lock (one process serves both at a time; harmless). A connection made
again is a new session without the old claims (`Database.session` tells them apart).

The claimer reads the chat's rows after taking the claim, never before: what the previous
holder committed before giving the claim up is then seen, so nothing is done twice.

On SQLite there is one process (the file's lock): every chat is this process's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.storage.sql import Connection

INBOX = 0x59490001  # stored Telegram updates, by chat
OUTBOX = 0x59490002  # outbox rows, by chat (or ticket:<id> for a ticket's card edits)


async def claim(
    conn: Connection, space: int, keys: Sequence[str], most: int | None = None
) -> list[str]:
    """The keys now claimed by this process, at most `most` of them, tried in order (those
    another process holds are skipped, so the candidates may be many more than `most`). A key
    this session holds already must not be asked again (its lock would count twice)."""
    if conn.dialect == "sqlite" or not keys:
        return list(keys)[:most]
    # The function scan yields the keys in order and the filter runs row by row until LIMIT
    # is reached (no ORDER BY, which would filter every row first): only the keys returned
    # are locked.
    rows = await conn.execute_fetchall(
        "SELECT k FROM unnest(?::text[]) AS k "
        "WHERE pg_try_advisory_lock(?::int, hashtext(k)) LIMIT ?",
        (list(keys), space, len(keys) if most is None else most),
    )
    return [str(r[0]) for r in rows]


async def release(conn: Connection, space: int, keys: Sequence[str]) -> None:
    """Give claims up (each key once for each time it was claimed)."""
    if conn.dialect == "sqlite" or not keys:
        return
    await conn.execute_fetchall(
        "SELECT pg_advisory_unlock(?::int, hashtext(k)) FROM unnest(?::text[]) AS k",
        (space, list(keys)),
    )
