"""On arrival, before an update waits its turn: the per-user flood limit and early button answers.

A user over the limit gets one notice (a press: a toast) and then silence until the limit
has refilled; such updates are answered here and marked handled, never run. A press that will
wait behind other updates of its chat is answered at once (Telegram shows a spinner and gives
up on the answer after a few seconds); any other press is answered by its handler, or here if
the handler has not done so within ANSWER_WITHIN seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from telegram import CallbackQuery, Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes

from bot.render import texts

logger = logging.getLogger(__name__)

ANSWER_WITHIN = 3.0  # seconds a handler has to answer a press before it is answered here


@dataclass
class _Bucket:
    tokens: float
    at: float
    noticed_at: float | None = None


class FloodGate:
    """A token bucket per user: `burst` updates at once, then `rate` a second."""

    def __init__(
        self,
        burst: int = 8,
        rate: float = 0.5,
        *,
        quiet: float = 60.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.rate, self.quiet, self.now = burst, rate, quiet, now
        self._buckets: dict[int, _Bucket] = {}

    def admit(self, user_id: int) -> bool:
        """Take a token; False when the user is over the limit."""
        now = self.now()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            if len(self._buckets) >= 10_000:
                self._forget_full(now)
            bucket = self._buckets[user_id] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def notice_due(self, user_id: int) -> bool:
        """Whether to tell this throttled user (once, then not again for `quiet` seconds)."""
        bucket = self._buckets[user_id]
        now = self.now()
        if bucket.noticed_at is not None and now - bucket.noticed_at < self.quiet:
            return False
        bucket.noticed_at = now
        return True

    def _forget_full(self, now: float) -> None:
        """Drop users whose bucket has refilled (they are as new)."""
        for user_id, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self.rate >= self.burst:
                del self._buckets[user_id]


class CallbackAnswers:
    """Who answers each press: the first to claim its query id (a press is answered once)."""

    def __init__(self, keep: int = 4096) -> None:
        self._claimed: OrderedDict[str, None] = OrderedDict()
        self._keep = keep

    def claim(self, query_id: str) -> bool:
        """True for the first caller only."""
        if query_id in self._claimed:
            return False
        self._claimed[query_id] = None
        if len(self._claimed) > self._keep:
            self._claimed.popitem(last=False)
        return True


def answers_of(context: ContextTypes.DEFAULT_TYPE) -> CallbackAnswers | None:
    """The application's registry of answered presses (None when updates bypass it)."""
    found = getattr(context.application.update_processor, "answers", None)
    return found if isinstance(found, CallbackAnswers) else None


class Arrival:
    """What happens to an update as it arrives (see the module docstring)."""

    def __init__(self, gate: FloodGate, answers: CallbackAnswers) -> None:
        self.gate = gate
        self.answers = answers
        self.app: Application | None = None  # type: ignore[type-arg]
        self.refused_count = 0
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def admit(self, update: object) -> bool:
        """Decide at once (no await: arrival order is kept): False when over the limit."""
        if not isinstance(update, Update):
            return True
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None or user.is_bot:
            return True
        # Only private chats and presses: a group member's chatter is not throttled here.
        if chat.type != chat.PRIVATE and update.callback_query is None:
            return True
        return self.gate.admit(user.id)

    async def refused(self, update: Update) -> None:
        """Answer an update over the limit (one notice, or a toast for a press) and close it."""
        user, chat = update.effective_user, update.effective_chat
        assert user is not None and chat is not None and self.app is not None
        self.refused_count += 1
        query = update.callback_query
        if query is not None:
            await self._answer(query, texts.FLOOD_TOAST)
        elif self.gate.notice_due(user.id):
            logger.info("user %s is over the flood limit; updates not handled meanwhile", user.id)
            try:
                await self.app.bot.send_message(chat.id, texts.FLOOD_NOTICE)
            except TelegramError as exc:
                logger.warning("could not send the flood notice to %s: %s", chat.id, exc)
        inbox = getattr(self.app, "inbox", None)
        if inbox is not None:
            await inbox.handled_if_possible(update.update_id)

    async def queued(self, update: Update, waits: bool) -> None:
        """A press that waits behind others is answered now; any other within ANSWER_WITHIN."""
        query = update.callback_query
        if query is None:
            return
        if waits:
            await self._answer(query, None)
            return
        loop = asyncio.get_running_loop()
        self._timers[query.id] = loop.call_later(ANSWER_WITHIN, self._late, query)

    def _late(self, query: CallbackQuery) -> None:
        self._timers.pop(query.id, None)
        task = asyncio.get_running_loop().create_task(self._answer(query, None))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, query: CallbackQuery, text: str | None) -> None:
        if not self.answers.claim(query.id):
            return
        try:
            await query.answer(text, show_alert=text is not None)
        except TelegramError as exc:
            logger.warning("answerCallbackQuery failed: %s", exc)

    def close(self) -> None:
        """Cancel the pending watchdogs (shutting down)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
