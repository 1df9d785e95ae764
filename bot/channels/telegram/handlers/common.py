"""Shared plumbing for handlers: services, the actor, replies, workflow errors."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from datetime import timedelta

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import ContextTypes

from bot.channels.telegram.render import html
from bot.channels.telegram.sender import chat_of, reply_markup, retry_seconds
from bot.core.errors import YimiError
from bot.core.ids import TELEGRAM, qualify
from bot.core.ports import Actor, clean
from bot.render import texts
from bot.render.keyboards import Reply
from bot.services import Services
from bot.workflow.outbound import enqueue, message

logger = logging.getLogger(__name__)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    """The services of this application."""
    found = context.application.bot_data["services"]
    assert isinstance(found, Services)
    return found


def actor_of(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Actor | None:
    """Who acts in which chat, or None for updates without a user and chat."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or user.is_bot:
        return None
    name = user.full_name.strip() or (user.username or str(user.id))
    return Actor(
        id=qualify(TELEGRAM, user.id),
        name=name,
        chat_id=qualify(TELEGRAM, chat.id),
        private=chat.type == chat.PRIVATE,
        username=user.username,
        is_admin=user.id in services(context).settings.admin_ids,
    )


async def send_replies(
    context: ContextTypes.DEFAULT_TYPE,
    chat_id: str,
    replies: Sequence[Reply],
) -> None:
    """Immediate replies in the acting chat (the durable messages went to the outbox).

    A reply that meets flood control or a network error is not dropped: it and the replies
    after it (to keep their order) go to the outbox, whose delivery loop retries them.
    """
    later: list[Reply] = []
    wait = 0.0
    for reply in replies:
        if later:
            later.append(reply)
            continue
        try:
            await context.bot.send_message(
                chat_of(chat_id),
                html(reply.text),
                parse_mode=ParseMode.HTML,
                reply_markup=reply_markup(reply, context.bot.username),
                disable_web_page_preview=True,
            )
        except BadRequest as exc:  # a NetworkError subclass: refused, not worth retrying
            logger.warning("reply to chat %s refused: %s", chat_id, exc)
        except (RetryAfter, NetworkError) as exc:  # flood control, timeouts, 5xx
            wait = retry_seconds(exc) if isinstance(exc, RetryAfter) else 0.0
            later.append(reply)
            logger.warning("reply to chat %s deferred to the outbox: %s", chat_id, exc)
        except TelegramError as exc:
            logger.warning("reply to chat %s failed: %s", chat_id, exc)
    if later:
        await _defer(context, chat_id, later, wait)
        services(context).delivery.wake()


async def _defer(
    context: ContextTypes.DEFAULT_TYPE, chat_id: str, replies: list[Reply], wait: float
) -> None:
    """Store replies that could not be sent now; the outbox sends them in order, after `wait`."""
    the = services(context)
    now = the.workflow.now()
    async with the.db.tx() as repo:
        for reply in replies:
            payload = message(texts.clip(reply.text, texts.MAX_TEXT), reply.buttons)
            if reply.force_reply:
                payload["force_reply"] = True
            row = await enqueue(repo, now, f"chat:{chat_id}", "message", payload)
            if wait:
                await repo.outbox.update_outbox(row, next_at=now + timedelta(seconds=wait))


async def run(
    context: ContextTypes.DEFAULT_TYPE, chat_id: str, call: Awaitable[list[Reply]]
) -> None:
    """Run a workflow call and show its replies, or the Chinese text of its error."""
    try:
        replies = await call
    except YimiError as exc:
        replies = [Reply(exc.reply)]
    await send_replies(context, chat_id, replies)


def args_text(context: ContextTypes.DEFAULT_TYPE) -> list[str]:
    """Command arguments (never None), without markup characters."""
    return [clean(arg) for arg in context.args or []]
