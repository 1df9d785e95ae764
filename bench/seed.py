"""Generated tickets stored with their clock facts, as the workflow stores them (bench and tests)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.models import Ticket
from bot.reporting.stats import ticket_facts
from bot.worktime.deadlines import DeadlinePolicy


def with_facts(tickets: Sequence[Ticket], policy: DeadlinePolicy) -> list[Ticket]:
    """The tickets with claim_due_at, first_contact_due_at and resolve_workdays filled in."""
    out = []
    # Ids grow with time, as in a live database (the table's order follows submission).
    ordered = sorted(tickets, key=lambda t: t.created_at)
    for new_id, ticket in enumerate(ordered, start=1):
        ticket = ticket.model_copy(update={"id": new_id})
        facts = ticket_facts(ticket, policy)
        out.append(
            ticket.model_copy(
                update={
                    # Unique numbers however many are generated (the generator's repeat at 10,000).
                    "number": f"YM-{ticket.created_at:%Y%m%d}-{ticket.id:06d}",
                    "claim_due_at": facts.claim_due_at,
                    "first_contact_due_at": facts.first_contact_due_at,
                    "resolve_workdays": facts.resolve_workdays,
                }
            )
        )
    return out
