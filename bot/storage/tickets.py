"""Tickets and what hangs on them: attachments, the event log, message links, numbering,
corrections of their routing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.core.models import (
    Attachment,
    IllegalTransition,
    Ticket,
    TicketEvent,
    TicketState,
    sources_of,
)
from bot.storage.rows import (
    _TICKET_SELECT_ONE,
    TICKET_COLUMNS,
    TICKET_SELECT,
    Queries,
    event_of,
    model_value,
    ticket_of,
    tickets_of,
    to_db,
    ts,
)

# Tickets whose events one query reads (well under either backend's limit on parameters).
EVENTS_CHUNK = 500


class TicketRepo(Queries):
    """Tickets and what hangs on them: attachments, the event log, message links, numbering,"""

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        row = await self._one(_TICKET_SELECT_ONE + "WHERE t.id = ?", (ticket_id,))
        return ticket_of(row) if row else None

    async def get_ticket_by_number(self, number: str) -> Ticket | None:
        row = await self._one(_TICKET_SELECT_ONE + "WHERE t.number = ?", (number.upper(),))
        return ticket_of(row) if row else None

    async def get_draft(self, reporter_id: str) -> Ticket | None:
        row = await self._one(
            TICKET_SELECT + "WHERE t.reporter_id = ? AND t.state = 'draft'", (reporter_id,)
        )
        return ticket_of(row) if row else None

    async def insert_ticket(self, **fields: Any) -> int:
        names = list(fields)
        return await self._insert(
            f"INSERT INTO tickets ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [to_db(name, fields[name]) for name in names],
        )

    async def update_ticket(self, ticket_id: int, **fields: Any) -> None:
        unknown = set(fields) - set(TICKET_COLUMNS)
        if unknown:
            raise ValueError(f"unknown ticket columns: {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in fields)
        params = [to_db(name, value) for name, value in fields.items()]
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
        sql = TICKET_SELECT + "WHERE t.merged_into = ?"
        params: list[Any] = [main_id]
        if states is not None:
            wanted = [s.value for s in states]
            sql += f" AND t.state IN ({', '.join('?' * len(wanted))})"
            params += wanted
        return tickets_of(await self._all(sql + " ORDER BY t.id", params))

    async def tickets_of_enterprise(self, enterprise_id: int, limit: int = 20) -> list[Ticket]:
        rows = await self._all(
            # Drafts, and drafts cancelled before they were submitted, are not tickets.
            TICKET_SELECT + "WHERE t.enterprise_id = ? AND t.number IS NOT NULL "
            "ORDER BY t.id DESC LIMIT ?",
            (enterprise_id, limit),
        )
        return tickets_of(rows)

    async def open_tickets(self, states: Iterable[str] | None = None) -> list[Ticket]:
        wanted = list(
            states
            or ("pending_dispatch", "pending_claim", "in_progress", "long_term", "pending_confirm")
        )
        marks = ", ".join("?" * len(wanted))
        rows = await self._all(TICKET_SELECT + f"WHERE t.state IN ({marks}) ORDER BY t.id", wanted)
        return tickets_of(rows)

    async def all_tickets(self, since: datetime | None = None) -> list[Ticket]:
        if since is None:
            rows = await self._all(TICKET_SELECT + "WHERE t.state != 'draft' ORDER BY t.id")
        else:
            rows = await self._all(
                TICKET_SELECT + "WHERE t.state != 'draft' AND t.submitted_at >= ? ORDER BY t.id",
                (ts(since),),
            )
        return tickets_of(rows)

    async def county_of(self, ticket_id: int) -> str:
        """The county of a ticket ('' when none or unknown)."""
        row = await self._one("SELECT county FROM tickets WHERE id = ?", (ticket_id,))
        return str(row[0]) if row else ""

    async def next_number(self, day: str, county: str = "") -> int:
        name = f"ticket:{county}:{day}" if county else f"ticket:{day}"
        await self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = counters.value + 1",
            (name,),
        )
        row = await self._one("SELECT value FROM counters WHERE name = ?", (name,))
        assert row is not None
        return int(row[0])

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
        return [event_of(row) for row in rows]

    async def events_for(self, ticket_ids: Sequence[int]) -> dict[int, list[TicketEvent]]:
        """The event logs of these tickets, each oldest first. Read by ticket through the
        (ticket_id, id) index, so one county-month's ledger reads its own events and not the
        whole province's log."""
        result: dict[int, list[TicketEvent]] = {}
        wanted = sorted(set(ticket_ids))
        for at in range(0, len(wanted), EVENTS_CHUNK):
            chunk = wanted[at : at + EVENTS_CHUNK]
            rows = await self._all(
                f"SELECT * FROM ticket_events WHERE ticket_id IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY ticket_id, id",
                chunk,
            )
            for row in rows:
                result.setdefault(row["ticket_id"], []).append(event_of(row))
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

    async def get_tickets(self, ticket_ids: Sequence[int]) -> list[Ticket]:
        """Tickets by id, in the order asked."""
        if not ticket_ids:
            return []
        marks = ", ".join("?" * len(ticket_ids))
        rows = await self._all(_TICKET_SELECT_ONE + f"WHERE t.id IN ({marks})", list(ticket_ids))
        found = {t.id: t for t in tickets_of(rows)}
        return [found[i] for i in ticket_ids if i in found]

    async def tickets_submitted_between(
        self, start: datetime | None, end: datetime | None, county: str | None = None
    ) -> list[Ticket]:
        """Submitted tickets, optionally within [start, end), of one county or all."""
        sql = TICKET_SELECT + "WHERE t.state != 'draft' AND t.submitted_at IS NOT NULL"
        params: list[Any] = []
        if county is not None:
            sql += " AND t.county = ?"
            params.append(county)
        if start is not None:
            sql += " AND t.submitted_at >= ?"
            params.append(ts(start))
        if end is not None:
            sql += " AND t.submitted_at < ?"
            params.append(ts(end))
        rows = await self._all(sql + " ORDER BY t.id", params)
        return tickets_of(rows)

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
                [to_db(c, getattr(t, c)) for c in columns[:1]]
                + [to_db(c, model_value(t, c, now)) for c in columns[1:]]
                for t in tickets
            ],
        )
        await self.conn.ids_given("enterprises")
        await self.conn.ids_given("tickets")
        return len(tickets)
