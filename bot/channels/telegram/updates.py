"""How updates are taken: each chat in order, different chats at once; limits on sends only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, BaseUpdateProcessor

# Telegram's flood limits count messages sent, not reads, edits or button answers.
SENDING = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVoice",
        "sendVideo",
        "sendAudio",
        "sendAnimation",
        "sendLocation",
        "sendMediaGroup",
        "sendContact",
        "sendSticker",
        "copyMessage",
        "forwardMessage",
    }
)


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Updates of one chat are handled one after another (a firm's draft stays in order);
    updates of different chats run concurrently, so one slow chat does not hold up the rest."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run `coroutine` once no earlier update of the same chat is running."""
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        try:
            async with lock:
                await coroutine
        finally:
            if not lock.locked() and self._locks.get(chat.id) is lock:
                del self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


class SendRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (30 messages/s overall, 20/min per group) applied to sends only:
    reads such as getChatMember and edits must not eat a group's 20 messages a minute."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        """Limit sends; pass everything else straight through."""
        if endpoint not in SENDING:
            return await callback(*args, **kwargs)
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )


# With max_retries=0 a 429 is an expected outcome that the outbox reschedules (and logs as a
# warning); PTB's limiter would log each one as an error with a traceback.
logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
