"""Groups: binding, replies to cards (relay to the firm), awaited reasons/results, migration."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.channels.telegram.handlers.common import actor_of, args_text, run, send_replies, services
from bot.core.ids import TELEGRAM, qualify
from bot.core.ports import Incoming
from bot.render import texts
from bot.render.keyboards import Reply

logger = logging.getLogger(__name__)


async def on_bind(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/bind <team_id> (admins, in the group to bind)."""
    actor = actor_of(update, context)
    chat = update.effective_chat
    if actor is None or chat is None:
        return
    if actor.private:
        await send_replies(context, actor.chat_id, [Reply(texts.BIND_PRIVATE)])
        return
    team = args_text(context)[0] if context.args else ""
    await run(context, actor.chat_id, services(context).workflow.bind(actor, chat.title, team))


async def on_unbind(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/unbind (admins)."""
    actor = actor_of(update, context)
    if actor is not None and not actor.private:
        await run(context, actor.chat_id, services(context).workflow.unbind(actor))


async def on_teams(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/teams: the bindings."""
    actor = actor_of(update, context)
    if actor is not None:
        await run(context, actor.chat_id, services(context).workflow.teams())


async def on_group_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A member's text in a group; only replies to the bot's own messages can concern it."""
    message = update.effective_message
    actor = actor_of(update, context)
    if message is None or actor is None:
        return
    replied = message.reply_to_message
    author = replied.from_user if replied is not None else None
    incoming = Incoming(
        message_id=str(message.message_id),
        text=message.text or message.caption or "",
        reply_to=(
            str(replied.message_id) if replied and author and author.id == context.bot.id else None
        ),
    )
    await run(context, actor.chat_id, services(context).workflow.group_message(actor, incoming))


async def on_migrate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A group upgraded to a supergroup keeps its binding."""
    message = update.effective_message
    if message is None or message.migrate_to_chat_id is None:
        return
    await services(context).workflow.migrate_chat(
        qualify(TELEGRAM, message.chat_id), qualify(TELEGRAM, message.migrate_to_chat_id)
    )
