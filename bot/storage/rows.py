"""What the repositories share: the ticket columns and the SELECT that joins a ticket's firm
and contact, the Friday metrics' grouped query, rows converted into models, and `Queries`, the
base of every repository (one connection, a few helpers that each make one trip)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.core.models import (
    CloseType,
    Satisfaction,
    Ticket,
    TicketEvent,
    TicketState,
    Urgency,
    User,
    WarnLevel,
)
from bot.storage.sql import Connection, Row

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
    "county",
]
JSON_COLUMNS = {"co_teams", "domain_words"}
TICKET_SELECT = (
    "SELECT t.*, e.name AS enterprise_name, e.credit_code, e.town, e.industry, "
    "u.contact_name, u.phone AS contact_phone, mt.number AS merged_into_number FROM tickets t "
    "LEFT JOIN enterprises e ON e.id = t.enterprise_id "
    "LEFT JOIN users u ON u.id = t.reporter_id "
    "LEFT JOIN tickets mt ON mt.id = t.merged_into "
)
# One ticket as cards show it: with how many (not cancelled) tickets are merged into it.
_TICKET_SELECT_ONE = TICKET_SELECT.replace(
    " FROM tickets t ",
    ", (SELECT COUNT(*) FROM tickets m WHERE m.merged_into = t.id AND m.state != 'cancelled')"
    " AS merged_count FROM tickets t ",
    1,
)


# Grouped by the columns whose values decide most metrics, so each row costs few expressions;
# bot.reporting.stats.from_groups derives the Friday metrics from these groups. Conditions are
# counted with COUNT(*) FILTER (WHERE …), which both backends have built in (on SQLite 10 %
# faster than SUM(condition), measured on the year's 100,000 tickets).
PERIOD_GROUPS = """
SELECT COALESCE(team_id, 'general') AS team, state, satisfaction, close_type,
  COUNT(*) AS n,
  COUNT(*) FILTER (WHERE claimed_at IS NOT NULL) AS claimed,
  COUNT(*) FILTER (WHERE claimed_at IS NOT NULL
      AND (claim_due_at IS NULL OR claimed_at <= claim_due_at)) AS claim_on_time,
  COUNT(*) FILTER (WHERE claimed_at IS NULL AND claim_due_at <= :as_of) AS unclaimed_late,
  COUNT(*) FILTER (WHERE claimed_at IS NOT NULL AND first_contact_due_at IS NOT NULL
      AND (first_contact_at IS NOT NULL OR first_contact_due_at <= :as_of)) AS contact_decided,
  COUNT(*) FILTER (WHERE claimed_at IS NOT NULL AND first_contact_at <= first_contact_due_at)
    AS contact_on_time,
  COUNT(*) FILTER (WHERE COALESCE(resolved_at, closed_at) IS NOT NULL) AS done,
  COUNT(*) FILTER (WHERE COALESCE(resolved_at, closed_at) > due_at) AS done_late,
  COUNT(*) FILTER (WHERE due_at <= :as_of) AS due_passed,
  COALESCE(SUM(CASE WHEN COALESCE(resolved_at, closed_at) IS NOT NULL THEN resolve_workdays
    END), 0.0) AS workdays,
  SUM(return_count) AS returns,
  SUM(reopen_count) AS reopens,
  COUNT(*) FILTER (WHERE supervise_count > 0) AS supervised
FROM tickets
WHERE submitted_at >= :start AND submitted_at < :end AND state != 'draft'
  AND merged_into IS NULL
GROUP BY 1, 2, 3, 4
"""
# Merged tickets (合并) are one problem with their main: counted apart, as firms affected only
# (through the partial index of merged tickets in submission order, migration 0011, so the
# common case of none costs nothing; left to itself the planner would scan the period's tickets).
PERIOD_MERGED = """
SELECT COALESCE(team_id, 'general') AS team, COUNT(*) AS n FROM tickets INDEXED BY tickets_merged_period
WHERE merged_into IS NOT NULL AND submitted_at >= :start AND submitted_at < :end
  AND state NOT IN ('draft', 'cancelled')
GROUP BY 1
"""


def in_county(sql: str, county: str | None) -> str:
    """A period query (PERIOD_GROUPS, PERIOD_MERGED) kept to one county (`:county`)."""
    if county is None:
        return sql
    return sql.replace("GROUP BY 1", "  AND county = :county\nGROUP BY 1", 1)


def by_county(sql: str) -> str:
    """A period query grouped by county too (its first column)."""
    return sql.replace("SELECT ", "SELECT county, ", 1).replace(
        "GROUP BY 1, 2, 3, 4", "GROUP BY 1, 2, 3, 4, 5", 1
    )


def ts(value: datetime | None) -> str | None:
    """A timezone-aware datetime as stored text."""
    return value.isoformat(timespec="seconds") if value is not None else None


def to_db(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS:
        return json.dumps(list(value), ensure_ascii=False)
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, bool):
        return int(value)
    return value


def model_value(ticket: Ticket, column: str, now: datetime) -> Any:
    value = getattr(ticket, column)
    if column == "updated_at" and value is None:
        return now
    return value.value if hasattr(value, "value") and not isinstance(value, bool) else value


TICKET_FIELDS = frozenset(Ticket.model_fields)
DATETIME_FIELDS = frozenset(
    name for name, f in Ticket.model_fields.items() if "datetime" in str(f.annotation)
)
CONVERT: dict[str, Any] = {
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
        if name not in TICKET_FIELDS:
            continue
        convert: Any = None
        if name in DATETIME_FIELDS:
            convert = datetime.fromisoformat
        elif name in JSON_COLUMNS:
            convert = json.loads
        else:
            convert = CONVERT.get(name)
        out.append((index, name, convert))
    return out


def ticket_of(row: Row, converters: list[tuple[int, str, Any]] | None = None) -> Ticket:
    """A row as a Ticket. The database holds only what the workflow wrote (validated then),
    so rows are converted column by column instead of validated again: exports read 100,000."""
    plan = converters if converters is not None else _converters(row.keys())
    data = {}
    for index, name, convert in plan:
        value = row[index]
        data[name] = value if convert is None or value is None else convert(value)
    return Ticket.model_construct(**data)


def tickets_of(rows: Sequence[Row]) -> list[Ticket]:
    """Many rows of the same query as Tickets (the conversion plan is made once)."""
    if not rows:
        return []
    plan = _converters(rows[0].keys())
    return [ticket_of(row, plan) for row in rows]


def user_of(row: Row) -> User:
    data = dict(row)
    data["reg_data"] = json.loads(data["reg_data"] or "{}")
    return User.model_validate(data)


def event_of(row: Row) -> TicketEvent:
    data = dict(row)
    data["payload"] = json.loads(data["payload"] or "{}")
    return TicketEvent.model_validate(data)


class Queries:
    """Typed queries over one connection: the base of every repository."""

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
