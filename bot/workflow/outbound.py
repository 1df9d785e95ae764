"""Messages the workflow causes: stored in the outbox with the change that causes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.counties import SEP, scoped, unscoped
from bot.core.models import COORDINATOR, LEADERS, Ticket
from bot.render.keyboards import Keyboard
from bot.storage.db import Repo


def keyboard_payload(buttons: Keyboard | None) -> list[list[dict[str, str]]] | None:
    """Buttons as stored in the outbox."""
    if buttons is None:
        return None
    return [
        [{k: v for k, v in (("text", b.text), ("data", b.data), ("url", b.url)) if v} for b in row]
        for row in buttons
    ]


async def enqueue(
    repo: Repo,
    now: datetime,
    target: str,
    kind: str,
    payload: dict[str, Any],
    ticket_id: int | None = None,
) -> int:
    """Store a message to send to `target` (team:<id> | coordinator | leaders | user:<qualified id> | chat:<qualified id>).

    A group target names a county with '@' (`team:land@weishi`, `coordinator@weishi`, see
    bot.core.counties); one about a ticket without it is the ticket's county. A target with no
    chat yet (group not bound, user never started the bot) waits and is released when the chat
    appears.
    """
    chat_id: str | None = None
    if target.startswith("team:") or unscoped(target)[0] in (COORDINATOR, LEADERS):
        target = await _in_county(repo, target, ticket_id)
        name, county = unscoped(target)
        chat_id = await repo.users.get_team_chat(name.removeprefix("team:"), county)
        if chat_id is None and name == LEADERS and county:  # the city's leaders, if any
            chat_id = await repo.users.get_team_chat(LEADERS)
    elif target.startswith("user:"):
        user = await repo.users.get_user(target[5:])
        if user is not None and user.private_started:
            chat_id = user.id
    elif target.startswith("chat:"):
        chat_id = target[5:]
    elif target.startswith("ticket:") or target == "admins":
        return await repo.outbox.insert_outbox(
            kind, payload, now, target=target, ticket_id=ticket_id, status="pending"
        )
    return await repo.outbox.insert_outbox(
        kind,
        payload,
        now,
        chat_id=chat_id,
        target=target,
        ticket_id=ticket_id,
        status="pending" if chat_id is not None else "waiting",
    )


async def _in_county(repo: Repo, target: str, ticket_id: int | None) -> str:
    """A group target about a ticket, in the ticket's county unless it names one."""
    if SEP in target or ticket_id is None:
        return target
    county = await repo.tickets.county_of(ticket_id)
    return scoped(target, county) if county else target


def message(
    text: str,
    buttons: Keyboard | None = None,
    *,
    link: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """An outbox text payload: `link` records the sent message for replies; `reply_to` names
    the purpose of a linked message of the same ticket in the same chat to reply to."""
    payload: dict[str, Any] = {"text": text}
    if buttons is not None:
        payload["buttons"] = keyboard_payload(buttons)
    if link:
        payload["link"] = link
    if reply_to:
        payload["reply_to"] = reply_to
    return payload


async def to_firm(
    repo: Repo,
    now: datetime,
    ticket: Ticket,
    text: str,
    buttons: Keyboard | None = None,
    *,
    link: str | None = None,
) -> None:
    """A message to the firm that reported the ticket (its private chat with the bot)."""
    payload = message(text, buttons, link=link)
    await enqueue(repo, now, f"user:{ticket.reporter_id}", "message", payload, ticket.id)


async def to_team(repo: Repo, now: datetime, ticket: Ticket, text: str) -> None:
    """A note in the ticket's team group, as a reply to its card (coordinators when unrouted)."""
    target = f"team:{ticket.team_id}" if ticket.team_id else COORDINATOR
    await enqueue(repo, now, target, "message", message(text, reply_to="card"), ticket.id)


async def to_co_teams(repo: Repo, now: datetime, ticket: Ticket, text: str) -> None:
    """A note in each co-handling (协办) team's group, as a reply to its copy of the card."""
    for team in ticket.co_teams:
        if team != ticket.team_id:
            payload = message(text, reply_to="card")
            await enqueue(repo, now, f"team:{team}", "message", payload, ticket.id)


async def to_coordinators(
    repo: Repo,
    now: datetime,
    text: str,
    ticket: Ticket | None = None,
    buttons: Keyboard | None = None,
) -> None:
    """A message to the coordinators' group (waits until one is bound)."""
    payload = message(text, buttons)
    await enqueue(repo, now, COORDINATOR, "message", payload, ticket.id if ticket else None)
