"""The database: one aiosqlite connection, numbered migrations, transactions and typed queries.

All SQL of the project lives here. Rows become models (bot.core.models) here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.models import (
    Attachment,
    Binding,
    CloseType,
    Enterprise,
    IllegalTransition,
    Satisfaction,
    Ticket,
    TicketEvent,
    TicketState,
    Urgency,
    User,
    WarnLevel,
    sources_of,
)
from bot.storage.files import StorageUnwritable, companions, unwritable
from bot.storage.health import STORAGE_ERRORS, StorageHealth, StorageUnavailable
from bot.storage.sql import Connection, PostgresConnection, Row, SqliteConnection

logger = logging.getLogger(__name__)

# PRAGMA application_id of the simulator's database ("YMSI"); the bot's own is left at 0. A
# header field rather than a table: no migration, and `file` / `sqlite3` show it.
SIMULATOR_APPLICATION_ID = 0x594D5349

TICKET_COLUMNS = [
    "number",
    "state",
    "channel",
    "reporter_id",
    "enterprise_id",
    "text",
    "summary",
    "request_type",
    "team_id",
    "co_teams",
    "predicted_team",
    "domain_words",
    "confidence",
    "classified_by",
    "urgency",
    "confidential",
    "location",
    "created_at",
    "submitted_at",
    "dispatched_at",
    "due_at",
    "claimed_by",
    "claimed_by_name",
    "claimed_at",
    "first_contact_at",
    "result_text",
    "resolved_status",
    "satisfaction",
    "rated_at",
    "resolved_at",
    "reopen_count",
    "return_count",
    "extension_count",
    "urge_count",
    "supervise_count",
    "leader_note",
    "latest_progress",
    "closed_at",
    "closed_by",
    "close_type",
    "warn_level",
    "undelivered",
    "updated_at",
    "claim_due_at",
    "first_contact_due_at",
    "resolve_workdays",
    "merged_into",
]
_JSON_COLUMNS = {"co_teams", "domain_words"}
_TICKET_SELECT = (
    "SELECT t.*, e.name AS enterprise_name, e.credit_code, e.town, e.industry, "
    "u.contact_name, u.phone AS contact_phone, mt.number AS merged_into_number FROM tickets t "
    "LEFT JOIN enterprises e ON e.id = t.enterprise_id "
    "LEFT JOIN users u ON u.id = t.reporter_id "
    "LEFT JOIN tickets mt ON mt.id = t.merged_into "
)
# One ticket as cards show it: with how many (not cancelled) tickets are merged into it.
_TICKET_SELECT_ONE = _TICKET_SELECT.replace(
    " FROM tickets t ",
    ", (SELECT COUNT(*) FROM tickets m WHERE m.merged_into = t.id AND m.state != 'cancelled')"
    " AS merged_count FROM tickets t ",
    1,
)


# Grouped by the columns whose values decide most metrics, so each row costs few expressions;
# bot.reporting.stats.from_groups derives the Friday metrics from these groups.
_PERIOD_GROUPS = """
SELECT COALESCE(team_id, 'general') AS team, state, satisfaction, close_type,
  COUNT(*) AS n,
  SUM(claimed_at IS NOT NULL) AS claimed,
  SUM(claimed_at IS NOT NULL AND (claim_due_at IS NULL OR claimed_at <= claim_due_at))
    AS claim_on_time,
  SUM(claimed_at IS NULL AND claim_due_at <= :as_of) AS unclaimed_late,
  SUM(claimed_at IS NOT NULL AND first_contact_due_at IS NOT NULL
      AND (first_contact_at IS NOT NULL OR first_contact_due_at <= :as_of)) AS contact_decided,
  SUM(claimed_at IS NOT NULL AND first_contact_at <= first_contact_due_at) AS contact_on_time,
  SUM(COALESCE(resolved_at, closed_at) IS NOT NULL) AS done,
  SUM(COALESCE(resolved_at, closed_at) > due_at) AS done_late,
  SUM(due_at <= :as_of) AS due_passed,
  TOTAL(CASE WHEN COALESCE(resolved_at, closed_at) IS NOT NULL THEN resolve_workdays END)
    AS workdays,
  SUM(return_count) AS returns,
  SUM(reopen_count) AS reopens,
  SUM(supervise_count > 0) AS supervised
FROM tickets
WHERE submitted_at >= :start AND submitted_at < :end AND state != 'draft'
  AND merged_into IS NULL
GROUP BY 1, 2, 3, 4
"""
# Merged tickets (合并) are one problem with their main: counted apart, as firms affected only
# (through the partial index on merged_into, so the common case of none costs nothing; left to
# itself the planner would scan the period by submitted_at).
_PERIOD_MERGED = """
SELECT COALESCE(team_id, 'general') AS team, COUNT(*) AS n FROM tickets INDEXED BY tickets_merged_into
WHERE merged_into IS NOT NULL AND submitted_at >= :start AND submitted_at < :end
  AND state NOT IN ('draft', 'cancelled')
GROUP BY 1
"""


def ts(value: datetime | None) -> str | None:
    """A timezone-aware datetime as stored text."""
    return value.isoformat(timespec="seconds") if value is not None else None


def _to_db(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS:
        return json.dumps(list(value), ensure_ascii=False)
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _model_value(ticket: Ticket, column: str, now: datetime) -> Any:
    value = getattr(ticket, column)
    if column == "updated_at" and value is None:
        return now
    return value.value if hasattr(value, "value") and not isinstance(value, bool) else value


_TICKET_FIELDS = frozenset(Ticket.model_fields)
_DATETIME_FIELDS = frozenset(
    name for name, f in Ticket.model_fields.items() if "datetime" in str(f.annotation)
)
_CONVERT: dict[str, Any] = {
    "state": TicketState,
    "urgency": Urgency,
    "warn_level": WarnLevel,
    "satisfaction": Satisfaction,
    "close_type": CloseType,
    "confidential": bool,
    "undelivered": bool,
}


def _converters(names: Iterable[str]) -> list[tuple[int, str, Any]]:
    """For each selected column that is a Ticket field: its index, name and converter."""
    out = []
    for index, name in enumerate(names):
        if name not in _TICKET_FIELDS:
            continue
        convert: Any = None
        if name in _DATETIME_FIELDS:
            convert = datetime.fromisoformat
        elif name in _JSON_COLUMNS:
            convert = json.loads
        else:
            convert = _CONVERT.get(name)
        out.append((index, name, convert))
    return out


def _ticket(row: Row, converters: list[tuple[int, str, Any]] | None = None) -> Ticket:
    """A row as a Ticket. The database holds only what the workflow wrote (validated then),
    so rows are converted column by column instead of validated again: exports read 100,000."""
    plan = converters if converters is not None else _converters(row.keys())
    data = {}
    for index, name, convert in plan:
        value = row[index]
        data[name] = value if convert is None or value is None else convert(value)
    return Ticket.model_construct(**data)


def _tickets(rows: Sequence[Row]) -> list[Ticket]:
    """Many rows of the same query as Tickets (the conversion plan is made once)."""
    if not rows:
        return []
    plan = _converters(rows[0].keys())
    return [_ticket(row, plan) for row in rows]


def _user(row: Row) -> User:
    data = dict(row)
    data["reg_data"] = json.loads(data["reg_data"] or "{}")
    return User.model_validate(data)


def _event(row: Row) -> TicketEvent:
    data = dict(row)
    data["payload"] = json.loads(data["payload"] or "{}")
    return TicketEvent.model_validate(data)


class Repo:
    """Typed queries over one connection; obtained from Database.tx() or Database.read()."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # Each helper is one trip to the database (aiosqlite's thread or the server): a report
    # makes dozens of queries.

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.conn.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def _all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        return list(await self.conn.execute_fetchall(sql, params))

    async def _insert(self, sql: str, params: Sequence[Any]) -> int:
        return await self.conn.execute_insert(sql, params)

    async def _changed(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write; how many rows it changed."""
        cursor = await self.conn.execute(sql, params)
        return cursor.rowcount

    # -- users and enterprises ---------------------------------------------------------------

    async def get_user(self, user_id: str) -> User | None:
        row = await self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def upsert_user(
        self, user_id: str, display_name: str, username: str | None, now: datetime
    ) -> User:
        await self.conn.execute(
            "INSERT INTO users (id, display_name, username, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, "
            "username = excluded.username",
            (user_id, display_name, username, ts(now), ts(now)),
        )
        user = await self.get_user(user_id)
        assert user is not None
        return user

    async def update_user(self, user_id: str, now: datetime, **fields: Any) -> None:
        if "reg_data" in fields:
            fields["reg_data"] = json.dumps(fields["reg_data"], ensure_ascii=False)
        fields["updated_at"] = ts(now)
        sets = ", ".join(f"{name} = ?" for name in fields)
        params = [_to_db(name, value) for name, value in fields.items()]
        await self.conn.execute(f"UPDATE users SET {sets} WHERE id = ?", (*params, user_id))

    async def get_enterprise(self, enterprise_id: int) -> Enterprise | None:
        row = await self._one("SELECT * FROM enterprises WHERE id = ?", (enterprise_id,))
        return Enterprise.model_validate(dict(row)) if row else None

    async def find_enterprise(self, name: str, credit_code: str | None) -> Enterprise | None:
        if credit_code:
            row = await self._one("SELECT * FROM enterprises WHERE credit_code = ?", (credit_code,))
            if row:
                return Enterprise.model_validate(dict(row))
        row = await self._one(
            "SELECT * FROM enterprises WHERE name = ? ORDER BY id LIMIT 1", (name,)
        )
        return Enterprise.model_validate(dict(row)) if row else None

    async def insert_enterprise(
        self, name: str, credit_code: str | None, town: str | None, now: datetime
    ) -> int:
        return await self._insert(
            "INSERT INTO enterprises (name, credit_code, town, created_at) VALUES (?, ?, ?, ?)",
            (name, credit_code, town, ts(now)),
        )

    async def update_enterprise(self, enterprise_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{name} = ?" for name in fields)
        await self.conn.execute(
            f"UPDATE enterprises SET {sets} WHERE id = ?", (*fields.values(), enterprise_id)
        )

    # -- bindings ----------------------------------------------------------------------------

    async def get_binding(self, chat_id: str) -> Binding | None:
        row = await self._one("SELECT * FROM bindings WHERE chat_id = ?", (chat_id,))
        return Binding.model_validate(dict(row)) if row else None

    async def get_team_chat(self, team_id: str) -> str | None:
        row = await self._one("SELECT chat_id FROM bindings WHERE team_id = ?", (team_id,))
        return str(row[0]) if row else None

    async def list_bindings(self) -> list[Binding]:
        rows = await self._all("SELECT * FROM bindings ORDER BY team_id")
        return [Binding.model_validate(dict(row)) for row in rows]

    async def bind(
        self, chat_id: str, team_id: str, title: str | None, by: str, now: datetime
    ) -> None:
        await self.conn.execute(
            "DELETE FROM bindings WHERE team_id = ? OR chat_id = ?", (team_id, chat_id)
        )
        await self.conn.execute(
            "INSERT INTO bindings (chat_id, team_id, title, bound_by, bound_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (chat_id, team_id, title, by, ts(now)),
        )

    async def unbind(self, chat_id: str) -> Binding | None:
        binding = await self.get_binding(chat_id)
        await self.conn.execute("DELETE FROM bindings WHERE chat_id = ?", (chat_id,))
        return binding

    async def migrate_chat(self, old_chat_id: str, new_chat_id: str) -> None:
        await self.conn.execute(
            "UPDATE bindings SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
        )
        await self.conn.execute(
            "UPDATE outbox SET chat_id = ? WHERE chat_id = ? AND status != 'sent'",
            (new_chat_id, old_chat_id),
        )

    async def set_lead(self, team_id: str, user_id: str, name: str | None, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO team_leads (team_id, user_id, name, set_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(team_id) DO UPDATE SET user_id = excluded.user_id, name = excluded.name, "
            "set_at = excluded.set_at",
            (team_id, user_id, name, ts(now)),
        )

    async def get_lead(self, team_id: str) -> tuple[str, str | None] | None:
        row = await self._one("SELECT user_id, name FROM team_leads WHERE team_id = ?", (team_id,))
        return (str(row[0]), row[1]) if row else None

    # -- tickets -----------------------------------------------------------------------------

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        row = await self._one(_TICKET_SELECT_ONE + "WHERE t.id = ?", (ticket_id,))
        return _ticket(row) if row else None

    async def get_ticket_by_number(self, number: str) -> Ticket | None:
        row = await self._one(_TICKET_SELECT_ONE + "WHERE t.number = ?", (number.upper(),))
        return _ticket(row) if row else None

    async def get_draft(self, reporter_id: str) -> Ticket | None:
        row = await self._one(
            _TICKET_SELECT + "WHERE t.reporter_id = ? AND t.state = 'draft'", (reporter_id,)
        )
        return _ticket(row) if row else None

    async def insert_ticket(self, **fields: Any) -> int:
        names = list(fields)
        return await self._insert(
            f"INSERT INTO tickets ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [_to_db(name, fields[name]) for name in names],
        )

    async def update_ticket(self, ticket_id: int, **fields: Any) -> None:
        unknown = set(fields) - set(TICKET_COLUMNS)
        if unknown:
            raise ValueError(f"unknown ticket columns: {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in fields)
        params = [_to_db(name, value) for name, value in fields.items()]
        if "state" not in fields:
            await self.conn.execute(f"UPDATE tickets SET {sets} WHERE id = ?", (*params, ticket_id))
            return
        # A state change only from a state the transition table allows.
        target = TicketState(fields["state"])
        sources = [s.value for s in sources_of(target)]
        marks = ", ".join("?" * len(sources))
        changed = await self._changed(
            f"UPDATE tickets SET {sets} WHERE id = ? AND state IN ({marks or 'NULL'})",
            (*params, ticket_id, *sources),
        )
        if changed != 1:
            raise IllegalTransition(f"ticket {ticket_id}: no allowed change to {target.value}")

    async def merged_tickets(
        self, main_id: int, states: Iterable[TicketState] | None = None
    ) -> list[Ticket]:
        """The tickets merged into `main_id` (in the states given, else all), oldest first."""
        sql = _TICKET_SELECT + "WHERE t.merged_into = ?"
        params: list[Any] = [main_id]
        if states is not None:
            wanted = [s.value for s in states]
            sql += f" AND t.state IN ({', '.join('?' * len(wanted))})"
            params += wanted
        return _tickets(await self._all(sql + " ORDER BY t.id", params))

    async def tickets_of_enterprise(self, enterprise_id: int, limit: int = 20) -> list[Ticket]:
        rows = await self._all(
            # Drafts, and drafts cancelled before they were submitted, are not tickets.
            _TICKET_SELECT + "WHERE t.enterprise_id = ? AND t.number IS NOT NULL "
            "ORDER BY t.id DESC LIMIT ?",
            (enterprise_id, limit),
        )
        return _tickets(rows)

    async def open_tickets(self, states: Iterable[str] | None = None) -> list[Ticket]:
        wanted = list(
            states
            or ("pending_dispatch", "pending_claim", "in_progress", "long_term", "pending_confirm")
        )
        marks = ", ".join("?" * len(wanted))
        rows = await self._all(_TICKET_SELECT + f"WHERE t.state IN ({marks}) ORDER BY t.id", wanted)
        return _tickets(rows)

    async def all_tickets(self, since: datetime | None = None) -> list[Ticket]:
        if since is None:
            rows = await self._all(_TICKET_SELECT + "WHERE t.state != 'draft' ORDER BY t.id")
        else:
            rows = await self._all(
                _TICKET_SELECT + "WHERE t.state != 'draft' AND t.submitted_at >= ? ORDER BY t.id",
                (ts(since),),
            )
        return _tickets(rows)

    async def next_number(self, day: str) -> int:
        name = f"ticket:{day}"
        await self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = counters.value + 1",
            (name,),
        )
        row = await self._one("SELECT value FROM counters WHERE name = ?", (name,))
        assert row is not None
        return int(row[0])

    # -- attachments, events, links ----------------------------------------------------------

    async def insert_attachment(
        self, ticket_id: int, kind: str, file_id: str, caption: str | None, now: datetime
    ) -> int:
        return await self._insert(
            "INSERT INTO attachments (ticket_id, kind, file_id, caption, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (ticket_id, kind, file_id, caption, ts(now)),
        )

    async def attachments(self, ticket_id: int) -> list[Attachment]:
        rows = await self._all(
            "SELECT * FROM attachments WHERE ticket_id = ? ORDER BY id", (ticket_id,)
        )
        return [Attachment.model_validate(dict(row)) for row in rows]

    async def insert_event(
        self,
        ticket_id: int,
        actor_id: str | None,
        action: str,
        from_state: str | None,
        to_state: str | None,
        payload: dict[str, Any],
        now: datetime,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO ticket_events (ticket_id, actor_id, action, from_state, to_state, "
            "payload, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                ticket_id,
                actor_id,
                action,
                from_state,
                to_state,
                json.dumps(payload, ensure_ascii=False),
                ts(now),
            ),
        )

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        rows = await self._all(
            "SELECT * FROM ticket_events WHERE ticket_id = ? ORDER BY id", (ticket_id,)
        )
        return [_event(row) for row in rows]

    async def events_for(self, ticket_ids: Sequence[int]) -> dict[int, list[TicketEvent]]:
        result: dict[int, list[TicketEvent]] = {}
        wanted = set(ticket_ids)
        for row in await self._all("SELECT * FROM ticket_events ORDER BY id"):
            if row["ticket_id"] in wanted:
                result.setdefault(row["ticket_id"], []).append(_event(row))
        return result

    async def mark_seen(self, chat_id: str, message_id: str, ticket_id: int | None) -> bool:
        """Record an incoming message; False when it was already taken (a redelivery)."""
        return (
            await self._changed(
                "INSERT INTO seen_messages (chat_id, message_id, ticket_id) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (chat_id, message_id, ticket_id),
            )
            == 1
        )

    async def link_message(
        self, chat_id: str, message_id: str, ticket_id: int, purpose: str
    ) -> None:
        await self.conn.execute(
            "INSERT INTO message_links (chat_id, message_id, ticket_id, purpose) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (chat_id, message_id) DO UPDATE SET "
            "ticket_id = excluded.ticket_id, purpose = excluded.purpose",
            (chat_id, message_id, ticket_id, purpose),
        )

    async def linked_ticket(self, chat_id: str, message_id: str) -> tuple[int, str] | None:
        row = await self._one(
            "SELECT ticket_id, purpose FROM message_links WHERE chat_id = ? AND message_id = ?",
            (chat_id, message_id),
        )
        return (int(row[0]), str(row[1])) if row else None

    async def card_messages(self, ticket_id: int) -> list[tuple[str, str, str]]:
        rows = await self._all(
            "SELECT chat_id, message_id, purpose FROM message_links WHERE ticket_id = ? "
            "AND purpose IN ('card', 'coord_card', 'co_card', 'firm_draft')",
            (ticket_id,),
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def insert_correction(
        self, ticket_id: int, text: str, predicted: str, final: str, source: str, now: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO corrections (ticket_id, text, predicted, final, source, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ticket_id, text, predicted, final, source, ts(now)),
        )

    async def corrections(self) -> list[tuple[str, str, str]]:
        rows = await self._all("SELECT text, predicted, final FROM corrections ORDER BY id")
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    # -- outbox ------------------------------------------------------------------------------

    async def insert_outbox(
        self,
        kind: str,
        payload: dict[str, Any],
        now: datetime,
        *,
        chat_id: str | None = None,
        target: str | None = None,
        ticket_id: int | None = None,
        status: str = "pending",
    ) -> int:
        return await self._insert(
            "INSERT INTO outbox (chat_id, target, kind, ticket_id, payload, status, next_at, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                target,
                kind,
                ticket_id,
                json.dumps(payload, ensure_ascii=False),
                status,
                ts(now),
                ts(now),
            ),
        )

    async def due_outbox_except(
        self, now: datetime, busy: Iterable[str], limit: int = 500
    ) -> list[dict[str, Any]]:
        """Due rows, leaving out chats that are being sent to (their rows wait their turn)."""
        skip = list(busy)
        marks = ", ".join("?" * len(skip))
        where = f"AND (chat_id IS NULL OR chat_id NOT IN ({marks})) " if skip else ""
        rows = await self._all(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_at <= ? "
            + where
            + "ORDER BY id LIMIT ?",
            (ts(now), *skip, limit),
        )
        return [dict(row) | {"payload": json.loads(row["payload"])} for row in rows]

    async def update_outbox(self, outbox_id: int, **fields: Any) -> None:
        if "payload" in fields:
            fields["payload"] = json.dumps(fields["payload"], ensure_ascii=False)
        sets = ", ".join(f"{name} = ?" for name in fields)
        params = [ts(v) if isinstance(v, datetime) else v for v in fields.values()]
        await self.conn.execute(f"UPDATE outbox SET {sets} WHERE id = ?", (*params, outbox_id))

    async def release_waiting(self, target: str, chat_id: str, now: datetime) -> int:
        """Outbox rows waiting for a user to start the bot become due."""
        return await self._changed(
            "UPDATE outbox SET status = 'pending', chat_id = ?, next_at = ? "
            "WHERE status = 'waiting' AND target = ?",
            (chat_id, ts(now), target),
        )

    async def waiting_for_target(self, target: str) -> list[int]:
        rows = await self._all(
            "SELECT id FROM outbox WHERE status = 'waiting' AND target = ?", (target,)
        )
        return [int(r[0]) for r in rows]

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    async def oldest_pending_outbox(self) -> datetime | None:
        """When the oldest message still to be sent was queued (waiting rows wait for their
        recipient to write again, not for the bot, and are left out)."""
        row = await self._one("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'")
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    async def ticket_counts(self) -> list[tuple[str, str, int]]:
        """(team, state, count) of every ticket but drafts."""
        rows = await self._all(
            "SELECT COALESCE(team_id, 'general'), state, COUNT(*) FROM tickets "
            "WHERE state != 'draft' GROUP BY 1, 2"
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def pending_outbox_for(self, chat_id: str, kind: str) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT * FROM outbox WHERE status = 'pending' AND chat_id = ? AND kind = ? "
            "ORDER BY id",
            (chat_id, kind),
        )
        return [dict(row) | {"payload": json.loads(row["payload"])} for row in rows]

    async def mark_batch_sent(
        self, outbox_ids: Sequence[int], chat_id: str, message_id: str, now: datetime
    ) -> None:
        """The card rows delivered together as one batch message (one transaction's part)."""
        for outbox_id in outbox_ids:
            row = await self._one("SELECT payload FROM outbox WHERE id = ?", (outbox_id,))
            payload = json.loads(row[0]) if row else {}
            await self.conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, message_id = ?, "
                "attempts = attempts + 1, error = NULL, payload = ? "
                "WHERE id = ? AND chat_id = ?",
                (
                    ts(now),
                    message_id,
                    json.dumps(payload | {"batch": True}, ensure_ascii=False),
                    outbox_id,
                    chat_id,
                ),
            )

    async def batch_messages(self, ticket_id: int) -> list[tuple[str, str]]:
        """(chat, message) of the batch cards that list the ticket."""
        rows = await self._all(
            "SELECT chat_id, message_id, payload FROM outbox WHERE ticket_id = ? "
            "AND kind = 'card' AND status = 'sent' AND message_id IS NOT NULL ORDER BY id",
            (ticket_id,),
        )
        return [(str(r[0]), str(r[1])) for r in rows if json.loads(r[2]).get("batch")]

    async def batch_tickets(self, chat_id: str, message_id: str) -> list[int]:
        """The tickets a batch card lists, in their order."""
        rows = await self._all(
            "SELECT ticket_id, payload FROM outbox WHERE chat_id = ? AND message_id = ? "
            "AND kind = 'card' AND status = 'sent' ORDER BY id",
            (chat_id, message_id),
        )
        return [int(r[0]) for r in rows if json.loads(r[1]).get("batch")]

    async def get_tickets(self, ticket_ids: Sequence[int]) -> list[Ticket]:
        """Tickets by id, in the order asked."""
        if not ticket_ids:
            return []
        marks = ", ".join("?" * len(ticket_ids))
        rows = await self._all(_TICKET_SELECT_ONE + f"WHERE t.id IN ({marks})", list(ticket_ids))
        found = {t.id: t for t in _tickets(rows)}
        return [found[i] for i in ticket_ids if i in found]

    # -- inbox -------------------------------------------------------------------------------

    async def store_update(self, update_id: int, payload: str, now: datetime) -> bool:
        return (
            await self._changed(
                "INSERT INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (update_id, payload, ts(now)),
            )
            == 1
        )

    async def mark_update_handled(self, update_id: int, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE inbox SET handled_at = ? WHERE update_id = ?", (ts(now), update_id)
        )

    async def unhandled_updates(self) -> list[tuple[int, str]]:
        rows = await self._all(
            "SELECT update_id, payload FROM inbox WHERE handled_at IS NULL ORDER BY update_id"
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def prune_inbox(self, before: datetime) -> int:
        """Forget handled updates older than `before` (they can no longer be redelivered)."""
        return await self._changed(
            "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?", (ts(before),)
        )

    async def insert_audit(
        self, actor_id: str | None, action: str, payload: dict[str, Any], now: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO audit_log (actor_id, action, payload, at) VALUES (?, ?, ?, ?)",
            (actor_id, action, json.dumps(payload, ensure_ascii=False), ts(now)),
        )

    async def job_slots(self, job: str) -> set[str]:
        """The slots (days, YYYY-MM-DD) of a scheduled job already done (bot.schedule)."""
        rows = await self._all("SELECT payload FROM audit_log WHERE action = 'job'")
        found = (json.loads(row[0]) for row in rows)
        return {str(p.get("slot")) for p in found if p.get("job") == job}

    async def tickets_submitted_between(
        self, start: datetime | None, end: datetime | None
    ) -> list[Ticket]:
        """Submitted tickets, optionally within [start, end)."""
        sql = _TICKET_SELECT + "WHERE t.state != 'draft' AND t.submitted_at IS NOT NULL"
        params: list[Any] = []
        if start is not None:
            sql += " AND t.submitted_at >= ?"
            params.append(ts(start))
        if end is not None:
            sql += " AND t.submitted_at < ?"
            params.append(ts(end))
        rows = await self._all(sql + " ORDER BY t.id", params)
        return _tickets(rows)

    async def import_tickets(self, tickets: Sequence[Ticket], now: datetime) -> int:
        """Bulk-load tickets (with their firms and reporters) from models, keeping their ids.

        For carrying over an office's existing ledger, and for benchmarks at county scale.
        """
        enterprises = {
            t.enterprise_id: (
                t.enterprise_id,
                t.enterprise_name or "",
                t.credit_code,
                t.town,
                ts(now),
            )
            for t in tickets
            if t.enterprise_id is not None
        }
        await self.conn.executemany(
            "INSERT INTO enterprises (id, name, credit_code, town, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(i, n, None, town, at) for i, n, _, town, at in enterprises.values()],
        )
        users = {
            t.reporter_id: (
                t.reporter_id,
                t.contact_name or "",
                t.enterprise_id,
                t.contact_name,
                t.contact_phone,
                ts(now),
                ts(now),
            )
            for t in tickets
        }
        await self.conn.executemany(
            "INSERT INTO users (id, display_name, enterprise_id, contact_name, phone, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            list(users.values()),
        )
        columns = ["id", *TICKET_COLUMNS]
        await self.conn.executemany(
            f"INSERT INTO tickets ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [
                [_to_db(c, getattr(t, c)) for c in columns[:1]]
                + [_to_db(c, _model_value(t, c, now)) for c in columns[1:]]
                for t in tickets
            ],
        )
        await self.conn.ids_given("enterprises")
        await self.conn.ids_given("tickets")
        return len(tickets)

    # -- statistics (the Friday metrics as aggregates; see bot.reporting.stats for the definitions) -------

    async def period_groups(
        self, start: datetime, end: datetime, as_of: datetime
    ) -> list[dict[str, Any]]:
        """Counts per (team, state, rating, close type) for tickets submitted in [start, end),
        merged ones apart: a group per team with ``merged`` set and only ``n``."""
        params = {"start": ts(start), "end": ts(end), "as_of": ts(as_of)}
        rows = await self._all(_PERIOD_GROUPS, params)
        merged = await self._all(_PERIOD_MERGED, params)
        return [dict(row) for row in rows] + [
            {"team": row["team"], "state": "merged", "satisfaction": None, "close_type": None}
            | {"n": row["n"], "merged": 1}
            for row in merged
        ]

    async def period_breakdown(
        self, start: datetime, end: datetime
    ) -> list[tuple[str, str, str, int]]:
        """(team, domain, town, count) of valid tickets submitted in [start, end)."""
        rows = await self._all(
            "SELECT COALESCE(t.team_id, 'general'), "
            "COALESCE(t.team_id, t.predicted_team, 'general'), COALESCE(e.town, '未填写'), "
            "COUNT(*) FROM tickets t LEFT JOIN enterprises e ON e.id = t.enterprise_id "
            "WHERE t.submitted_at >= ? AND t.submitted_at < ? "
            "AND t.state NOT IN ('draft', 'cancelled') AND t.merged_into IS NULL "
            "GROUP BY 1, 2, 3",
            (ts(start), ts(end)),
        )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    async def open_state_counts(self) -> list[tuple[str, str, int]]:
        """(team, state, count) of open tickets now."""
        rows = await self._all(
            "SELECT COALESCE(team_id, 'general'), state, COUNT(*) FROM tickets "
            "WHERE state IN ('pending_dispatch', 'pending_claim', 'in_progress', 'long_term', "
            "'pending_confirm') AND merged_into IS NULL GROUP BY 1, 2"
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def overdue_open(
        self, now: datetime, team_id: str | None = None, limit: int = 100
    ) -> tuple[list[Ticket], int]:
        """The most overdue active tickets (at most `limit`) and how many there are in all."""
        where = (
            "WHERE t.state IN ('pending_dispatch', 'pending_claim', 'in_progress') "
            "AND t.due_at <= ?" + (" AND t.team_id = ?" if team_id else "")
        )
        params: list[Any] = [ts(now), *([team_id] if team_id else [])]
        rows = await self._all(
            _TICKET_SELECT + where + " ORDER BY t.due_at LIMIT ?", [*params, limit]
        )
        total = await self._one("SELECT COUNT(*) FROM tickets t " + where, params)
        return _tickets(rows), int(total[0]) if total else 0

    # -- reminders and extensions ------------------------------------------------------------

    async def reminders_sent(self, ticket_id: int) -> set[str]:
        rows = await self._all("SELECT key FROM reminders_sent WHERE ticket_id = ?", (ticket_id,))
        return {str(r[0]) for r in rows}

    async def reminders_sent_open(self) -> dict[int, set[str]]:
        """Reminder keys already sent, for every open ticket."""
        rows = await self._all(
            "SELECT r.ticket_id, r.key FROM reminders_sent r JOIN tickets t ON t.id = r.ticket_id "
            "WHERE t.state IN ('pending_dispatch', 'pending_claim', 'in_progress', 'long_term', "
            "'pending_confirm')"
        )
        found: dict[int, set[str]] = {}
        for ticket_id, key in rows:
            found.setdefault(int(ticket_id), set()).add(str(key))
        return found

    async def mark_reminder(self, ticket_id: int, key: str, now: datetime) -> bool:
        return (
            await self._changed(
                "INSERT INTO reminders_sent (ticket_id, key, at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (ticket_id, key, ts(now)),
            )
            == 1
        )

    async def insert_extension(
        self,
        ticket_id: int,
        kind: str,
        workdays: int | None,
        reason: str,
        requested_by: str,
        now: datetime,
    ) -> int:
        return await self._insert(
            "INSERT INTO extensions (ticket_id, kind, workdays, reason, requested_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ticket_id, kind, workdays, reason, requested_by, ts(now)),
        )

    async def get_extension(self, extension_id: int) -> dict[str, Any] | None:
        row = await self._one("SELECT * FROM extensions WHERE id = ?", (extension_id,))
        return dict(row) if row else None

    async def decide_extension(
        self, extension_id: int, status: str, by: str, now: datetime
    ) -> bool:
        return (
            await self._changed(
                "UPDATE extensions SET status = ?, decided_by = ?, decided_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (status, by, ts(now), extension_id),
            )
            == 1
        )


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
        self.health = StorageHealth(Path(label) if label else path)

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
