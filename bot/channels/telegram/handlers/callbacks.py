"""Inline button presses: decoded, checked against the database by the workflow."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.channels.telegram.handlers.common import actor_of, send_replies, services
from bot.core.errors import YimiError
from bot.core.ports import Actor
from bot.render import texts
from bot.render.keyboards import CallbackError, Reply, decode
from bot.services import Services

logger = logging.getLogger(__name__)


async def _decide(
    services_: Services, actor: Actor, ticket_id: int, arg: str, approve: bool
) -> list[Reply]:
    request_id = int(arg) if arg.isdigit() else -1
    return await services_.followup.decide(actor, ticket_id, request_id, approve)


def _route(
    services_: Services, actor: Actor, action: str, ticket_id: int, arg: str
) -> Awaitable[list[Reply]]:
    workflow = services_.workflow
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
        "town": lambda: workflow.registration_input(
            actor, town_index=int(arg) if arg.isdigit() else -1
        ),
        "skip": lambda: workflow.registration_input(actor, skip=True),
        "ext_ok": lambda: _decide(services_, actor, ticket_id, arg, True),
        "ext_no": lambda: _decide(services_, actor, ticket_id, arg, False),
    }
    route = routes.get(action)
    if route is None:
        raise CallbackError(action)
    return route()


async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any inline button: answer at once, then act."""
    query = update.callback_query
    actor = actor_of(update, context)
    if query is None or actor is None:
        return
    toast = ""
    try:
        callback = decode(query.data)
        replies = await _route(
            services(context), actor, callback.action, callback.ticket_id, callback.arg
        )
        if (
            callback.action in ("confirm", "cancel", "pick", "urgent", "rate")
            and query.message is not None
        ):
            await _drop_buttons(query.message.chat.id, query.message.message_id, context)
    except CallbackError:
        logger.info("stale or forged callback %r from %s", query.data, actor.id)
        replies, toast = [], texts.STALE_BUTTON
    except YimiError as exc:
        replies, toast = [], exc.reply
    if toast and not actor.private:
        toast = toast[:190]
    try:
        await query.answer(toast[:190] if toast else None, show_alert=bool(toast))
    except TelegramError as exc:
        logger.warning("answerCallbackQuery failed: %s", exc)
    if toast and actor.private:
        replies = [Reply(toast)]
    await send_replies(context, actor.chat_id, replies)


async def _drop_buttons(chat_id: int, message_id: int, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A used draft keyboard is removed so that it is not pressed twice."""
    try:
        await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
    except TelegramError as exc:
        logger.debug("could not drop buttons: %s", exc)
