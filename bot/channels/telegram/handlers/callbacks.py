"""Inline button presses: decoded, checked against the database by the workflow."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.channels.actions import DRAFT_ACTIONS, press
from bot.channels.telegram.flood import answers_of
from bot.channels.telegram.handlers.common import actor_of, send_replies, services
from bot.core.errors import YimiError
from bot.render import texts
from bot.render.keyboards import CallbackError, Reply, decode

logger = logging.getLogger(__name__)


async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any inline button: act, then answer (unless it was answered on arrival)."""
    query = update.callback_query
    actor = actor_of(update, context)
    if query is None or actor is None:
        return
    toast = ""
    try:
        callback = decode(query.data)
        replies = await press(
            services(context), actor, callback.action, callback.ticket_id, callback.arg
        )
        if callback.action in DRAFT_ACTIONS and query.message is not None:
            await _drop_buttons(query.message.chat.id, query.message.message_id, context)
    except CallbackError:
        logger.info("stale or forged callback %r from %s", query.data, actor.id)
        replies, toast = [], texts.STALE_BUTTON
    except YimiError as exc:
        replies, toast = [], exc.reply
    answers = answers_of(context)
    answered_early = answers is not None and not answers.claim(query.id)
    if not answered_early:
        try:
            await query.answer(toast[:190] if toast else None, show_alert=bool(toast))
        except TelegramError as exc:
            logger.warning("answerCallbackQuery failed: %s", exc)
    if toast and (actor.private or answered_early):  # a toast that can no longer pop up
        replies = [Reply(toast)]
    await send_replies(context, actor.chat_id, replies)


async def _drop_buttons(chat_id: int, message_id: int, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A used draft keyboard is removed so that it is not pressed twice."""
    try:
        await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
    except TelegramError as exc:
        logger.debug("could not drop buttons: %s", exc)
