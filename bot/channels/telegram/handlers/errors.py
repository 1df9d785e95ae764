"""The error handler: log with the traceback first, then a short alert (never the token)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot.render import texts

logger = logging.getLogger(__name__)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log it; tell the user their input is kept."""
    error = context.error
    if update is None and isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        # Polling lost the link: PTB retries with backoff and the link watch
        # (bot.channels.telegram.connection) logs the drop and the return, once each.
        logger.debug("polling failed: %s", error)
        return
    logger.error("error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, texts.ERROR_GENERIC)
        except TelegramError as exc:
            logger.warning("could not tell the user about the error: %s", exc)
