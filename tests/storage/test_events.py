"""A ledger's event logs: exactly its tickets' events, each log oldest first, however many
tickets it asks for (read by ticket, in chunks under either backend's parameter limit)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from bot.storage.db import Database
from bot.storage.tickets import EVENTS_CHUNK
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from ledger import NOW, generate
from seed import with_facts

pytestmark = pytest.mark.usefixtures("backend")


async def test_events_for_reads_the_asked_tickets_logs_only(tmp_path: Path) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    policy = DeadlinePolicy(settings, WorkCalendar(settings))
    tickets = with_facts(generate(4 * EVENTS_CHUNK, 3, policy), policy)
    db = await Database.at(tmp_path / "events.db", os.environ.get("DATABASE_URL"))
    try:
        async with db.tx() as repo:
            await repo.tickets.import_tickets(tickets, NOW)
            # Interleaved as a live log is: a round of events over all tickets, three times.
            for action in ("submitted", "claimed", "resolved"):
                for t in tickets:
                    await repo.tickets.insert_event(t.id, None, action, None, None, {}, NOW)
        asked = [t.id for t in tickets if t.id % 3 != 0][::-1]  # more than two chunks, unordered
        async with db.read() as repo:
            got = await repo.tickets.events_for([*asked, asked[0]])  # a repeat is harmless
            nothing = await repo.tickets.events_for([])
    finally:
        await db.close()
    assert len(asked) > 2 * EVENTS_CHUNK
    assert set(got) == set(asked) and nothing == {}
    for ticket_id, events in got.items():
        assert [e.action for e in events] == ["submitted", "claimed", "resolved"]
        assert all(e.ticket_id == ticket_id for e in events)
        assert [e.id for e in events] == sorted(e.id for e in events)
