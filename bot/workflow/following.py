"""Merged firms follow their main ticket (合并; the rules are in merging.py): whatever the main
ticket's firm hears from the team, each merged firm hears too, masked; the result passes to each
merged ticket for its own rating; a main ticket withdrawn or cancelled releases its merged
tickets; a merged firm's 未解决 reopens its own ticket (no channel)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from bot.core.models import COORDINATOR, Ticket, TicketState, team_name
from bot.core.ports import Actor
from bot.core.privacy import mask_name, mask_phone
from bot.render import texts
from bot.render.keyboards import rating_keyboard
from bot.storage.db import Repo
from bot.workflow.base import Ground
from bot.workflow.outbound import enqueue, message, to_coordinators, to_firm, to_team

logger = logging.getLogger(__name__)


def scrub(text: str, tickets: Sequence[Ticket]) -> str:
    """The text with every involved firm's contact name and phone masked: what the claimer
    wrote to the main firm goes to the merged firms too."""
    for t in tickets:
        if t.contact_phone:
            text = text.replace(t.contact_phone, mask_phone(t.contact_phone))
        if t.contact_name and len(t.contact_name) >= 2:
            text = text.replace(t.contact_name, mask_name(t.contact_name))
    return text


async def followers(repo: Repo, main: Ticket) -> list[Ticket]:
    """The tickets merged into `main` that still wait for its handling."""
    return await repo.tickets.merged_tickets(main.id, (TicketState.MERGED,))


async def main_of(repo: Repo, ticket: Ticket) -> Ticket | None:
    """The main ticket of a ticket still merged (waiting for the main's handling)."""
    if ticket.state != TicketState.MERGED or ticket.merged_into is None:
        return None
    return await repo.tickets.get_ticket(ticket.merged_into)


async def fan_out(
    ground: Ground,
    repo: Repo,
    main: Ticket,
    action: str,
    render: Callable[[Ticket], str],
    **payload: Any,
) -> int:
    """What the main ticket's firm was just told, to every merged firm under its own number
    (logged on the merged ticket as `action`). How many firms."""
    merged = await followers(repo, main)
    now = ground.now()
    involved = [main, *merged]
    for ticket in merged:
        await ground._event(repo, ticket, None, action, main=main.number, **payload)
        await to_firm(repo, now, ticket, scrub(render(ticket), involved), link="relay")
    return len(merged)


async def tell_firms(
    ground: Ground, repo: Repo, main: Ticket, template: str, text: str, action: str
) -> None:
    """A team's words (`template` with team, number, text) to the main ticket's firm, and as
    progress to every firm merged into it, each under its own number."""
    team = team_name(main.team_id)
    await to_firm(
        repo,
        ground.now(),
        main,
        template.format(team=team, number=main.number, text=text),
        link="relay",
    )
    await fan_out(
        ground,
        repo,
        main,
        action,
        lambda t: template.format(team=team, number=t.number, text=text),
        text=text,
    )


async def follow_claim(ground: Ground, repo: Repo, main: Ticket, actor: Actor) -> None:
    """The main ticket was claimed: its claimer is the merged tickets' too; their firms told."""
    now = ground.now()
    for ticket in await followers(repo, main):
        await repo.tickets.update_ticket(
            ticket.id,
            claimed_by=actor.id,
            claimed_by_name=actor.name,
            claimed_at=now,
            updated_at=now,
        )
    await fan_out(
        ground,
        repo,
        main,
        "main_claimed",
        lambda t: texts.CLAIM_FIRM.format(
            number=t.number, team=team_name(main.team_id), name=actor.name
        ),
    )


async def card_back(ground: Ground, repo: Repo, ticket: Ticket, team: str | None) -> None:
    """The ticket is on its own again: its card in the group it now belongs to is edited back
    (buttons and all, with the card_edit the caller queued) and a note answers it there; where
    it has no card yet (a cross-team merge moved it), a new card is sent."""
    now = ground.now()
    chat = await repo.users.get_team_chat(team or COORDINATOR, ticket.county)
    cards = await repo.tickets.card_messages(ticket.id)
    if chat is None or not any(c == chat for c, _, p in cards if p in ("card", "coord_card")):
        await ground._send_card(repo, ticket.id, team)
        return
    note = texts.UNMERGED_GROUP.format(number=ticket.number)
    target = f"team:{team}" if team else COORDINATOR
    await enqueue(repo, now, target, "message", message(note, reply_to="card"), ticket.id)


async def follow_route(repo: Repo, main: Ticket, **fields: Any) -> None:
    """The main ticket was returned or re-routed: the merged tickets follow (team, claimer)."""
    for ticket in await followers(repo, main):
        await repo.tickets.update_ticket(ticket.id, **fields)


async def pass_result(ground: Ground, repo: Repo, main: Ticket, result: str) -> None:
    """办结 of the main ticket: each merged ticket gets the result and its own rating."""
    now = ground.now()
    merged = await followers(repo, main)
    involved = [main, *merged]
    for ticket in merged:
        await repo.tickets.update_ticket(
            ticket.id,
            state=TicketState.PENDING_CONFIRM.value,
            result_text=result,
            resolved_at=now,
            resolve_workdays=max(
                ground.calendar.work_days_between(ticket.submitted_at or now, now), 0.0
            ),
            updated_at=now,
        )
        await ground._event(
            repo, ticket, None, "main_resolved", TicketState.PENDING_CONFIRM, main=main.number
        )
        await ground._card_changed(repo, ticket.id)
        text = texts.RESOLVE_FIRM.format(
            number=ticket.number, team=team_name(main.team_id), result=result
        )
        await to_firm(
            repo, now, ticket, scrub(text, involved), rating_keyboard(ticket.id), link="result"
        )


async def release(ground: Ground, repo: Repo, main: Ticket) -> None:
    """The main ticket was withdrawn or cancelled: the tickets merged into it go back to the
    team on their own, unclaimed, with a new card and a new 签收 deadline."""
    now = ground.now()
    merged = await followers(repo, main)
    for ticket in merged:
        state = TicketState.PENDING_CLAIM if ticket.team_id else TicketState.PENDING_DISPATCH
        await repo.tickets.update_ticket(
            ticket.id,
            state=state.value,
            merged_into=None,
            claimed_by=None,
            claimed_by_name=None,
            claimed_at=None,
            dispatched_at=now,
            claim_due_at=ground.policy_for(ticket.county).claim_due(now),
            updated_at=now,
        )
        await ground._event(repo, ticket, None, "main_released", state, main=main.number)
        await ground._card_changed(repo, ticket.id)
        await card_back(ground, repo, ticket, ticket.team_id)
        await to_firm(repo, now, ticket, texts.MAIN_RELEASED_FIRM.format(number=ticket.number))
    if merged:
        numbers = "、".join(t.number or "" for t in merged)
        await to_team(
            repo, now, main, texts.MAIN_RELEASED_GROUP.format(main=main.number, numbers=numbers)
        )
        logger.info("ticket %s cancelled: %d merged tickets released", main.number, len(merged))


async def reopen_merged(ground: Ground, repo: Repo, actor: Actor, ticket: Ticket) -> str:
    """A merged firm says the main's result did not solve its problem: its ticket leaves the
    merge and is reopened in the main's team with the main's claimer. The firm's reply."""
    now = ground.now()
    count = ticket.reopen_count + 1
    await repo.tickets.update_ticket(
        ticket.id,
        state=TicketState.IN_PROGRESS.value,
        merged_into=None,
        reopen_count=count,
        satisfaction="unsolved",
        rated_at=now,
        updated_at=now,
    )
    await ground._event(
        repo,
        ticket,
        actor.id,
        "reopened",
        TicketState.IN_PROGRESS,
        rating="unsolved",
        unmerged_from=ticket.merged_into_number,
    )
    await card_back(ground, repo, ticket, ticket.team_id)
    owner = ticket.claimed_by_name or "未签收"
    note = texts.MERGED_REOPEN_GROUP.format(
        number=ticket.number, main=ticket.merged_into_number, count=count, owner=owner
    )
    await to_team(repo, now, ticket, note)
    await to_coordinators(
        repo,
        now,
        texts.MERGED_REOPEN_COORD.format(
            number=ticket.number, main=ticket.merged_into_number, team=team_name(ticket.team_id)
        ),
        ticket,
    )
    if ticket.claimed_by:  # the claimer now talks to this firm directly
        await enqueue(repo, now, f"user:{ticket.claimed_by}", "details", {}, ticket.id)
        await ground._event(repo, ticket, ticket.claimed_by, "details_viewed")
    logger.info("ticket %s left the merge into %s: not solved", ticket.number, ticket.merged_into)
    return texts.RATE_REOPEN_FIRM.format(number=ticket.number, rating="不满意")
