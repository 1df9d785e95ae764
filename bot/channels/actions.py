"""What a button press does, for every channel: one table from a button's action to the call.

A channel decodes the press (Telegram's callback_data, a WeCom card's button key, a 微信客服
menu item's id: all carry the same encoded `Callback`) and calls `press`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.core.ports import Actor
from bot.render.keyboards import CallbackError, Reply
from bot.services import Services

# Presses on a firm's private message that use it up (Telegram drops their buttons after).
DRAFT_ACTIONS = frozenset({"confirm", "cancel", "pick", "urgent", "rate"})


async def _decide(
    services: Services, actor: Actor, ticket_id: int, arg: str, approve: bool
) -> list[Reply]:
    request_id = int(arg) if arg.isdigit() else -1
    return await services.followup.decide(actor, ticket_id, request_id, approve)


def press(
    services: Services, actor: Actor, action: str, ticket_id: int, arg: str
) -> Awaitable[list[Reply]]:
    """The workflow call of a button; CallbackError for an action that does not exist."""
    workflow = services.workflow
    routes: dict[str, Callable[[], Awaitable[list[Reply]]]] = {
        "confirm": lambda: workflow.confirm(actor, ticket_id),
        "choose": lambda: workflow.choose_team(actor, ticket_id),
        "pick": lambda: workflow.pick_team(actor, ticket_id, arg),
        "cancel": lambda: workflow.cancel_draft(actor, ticket_id),
        "urgent": lambda: workflow.toggle_urgent(actor, ticket_id),
        "claim": lambda: workflow.claim(actor, ticket_id),
        "return": lambda: workflow.ask_return(actor, ticket_id),
        "resolve": lambda: workflow.ask_resolve(actor, ticket_id),
        "contact": lambda: workflow.first_contact(actor, ticket_id),
        "rate": lambda: workflow.rate(actor, ticket_id, arg),
        "dispatch": lambda: workflow.dispatch(actor, ticket_id, arg),
        "discard": lambda: workflow.ask_discard(actor, ticket_id, arg),
        "town": lambda: workflow.registration_input(
            actor, town_index=int(arg) if arg.isdigit() else -1
        ),
        "county": lambda: workflow.registration_input(
            actor, county_index=int(arg) if arg.isdigit() else -1
        ),
        "skip": lambda: workflow.registration_input(actor, skip=True),
        "unmerge": lambda: workflow.unmerge(actor, ticket_id),
        "ext_ok": lambda: _decide(services, actor, ticket_id, arg, True),
        "ext_no": lambda: _decide(services, actor, ticket_id, arg, False),
    }
    route = routes.get(action)
    if route is None:
        raise CallbackError(action)
    return route()
