"""The transition table: the storage layer takes only the state changes it lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.models import TRANSITIONS, IllegalTransition, TicketState
from bot.storage.db import Database
from tests.neutral.harness import START


def test_every_state_has_its_row_and_closed_states_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(TicketState)
    assert TRANSITIONS[TicketState.CLOSED] == TRANSITIONS[TicketState.CANCELLED] == frozenset()
    assert TicketState.IN_PROGRESS in TRANSITIONS[TicketState.PENDING_CONFIRM]  # 重办


async def test_a_change_the_table_does_not_list_is_refused(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "yimi.db")
    try:
        async with db.tx() as repo:
            await repo.users.upsert_user("test:firm", "张伟", None, START)
            ticket = await repo.tickets.insert_ticket(
                state="draft", reporter_id="test:firm", created_at=START, updated_at=START
            )
            await repo.tickets.update_ticket(ticket, state="pending_dispatch")
            await repo.tickets.update_ticket(ticket, state="cancelled")
        with pytest.raises(IllegalTransition):
            async with db.tx() as repo:
                await repo.tickets.update_ticket(ticket, state="in_progress")
        async with db.read() as repo:
            found = await repo.tickets.get_ticket(ticket)
        assert found is not None and found.state == TicketState.CANCELLED
    finally:
        await db.close()
