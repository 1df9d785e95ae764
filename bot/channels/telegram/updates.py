"""How updates are taken: each chat in order, chats in turn by a fixed pool; limits on sends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, BaseUpdateProcessor

from bot.channels.telegram.flood import Arrival, CallbackAnswers
from bot.storage.budget import Bucket, SharedBudget
from bot.storage.health import backoff

logger = logging.getLogger(__name__)

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


class HandlingFailed(Exception):
    """An update's handling did not commit (storage failed): `retry` runs it again."""

    def __init__(self, update_id: int, retry: Callable[[], Awaitable[Any]]) -> None:
        super().__init__(f"update {update_id} not handled yet")
        self.update_id = update_id
        self.retry = retry


@dataclass
class _Item:
    run: Awaitable[Any]
    done: asyncio.Future[None]
    attempt: int = 0


class FairProcessor(BaseUpdateProcessor):
    """Each chat's updates in order, one at a time, by a fixed pool of workers taking the chats
    in turn: a chat with a backlog holds one worker at most, so it never blocks other chats.

    PTB's own limit (a semaphore taken before this processor sees the update) is set out of
    reach: with it, a flooding chat's waiting updates would hold every slot. An update whose
    handling storage refused (HandlingFailed) stays at the head of its chat, which waits and
    tries again with backoff; other chats go on.
    """

    def __init__(
        self,
        workers: int = 16,
        arrival: Arrival | None = None,
        *,
        retry_base: float = 1.0,
        retry_most: float = 60.0,
    ) -> None:
        super().__init__(2**31 - 1)
        self.workers = workers
        self.arrival = arrival
        self.answers = arrival.answers if arrival is not None else CallbackAnswers()
        self.retry_base, self.retry_most = retry_base, retry_most
        self._chats: dict[int, deque[_Item]] = {}
        self._ready: asyncio.Queue[int] = asyncio.Queue()
        self._busy: set[int] = set()
        self._pool: list[asyncio.Task[None]] = []
        self._parked: dict[int, asyncio.TimerHandle] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Queue the update behind its chat's earlier ones; return once it was handled."""
        chat = update.effective_chat if isinstance(update, Update) else None
        if not isinstance(update, Update) or chat is None or not self._pool:
            await coroutine
            return
        if self.arrival is not None and not self.arrival.admit(update):
            _close(coroutine)
            await self.arrival.refused(update)
            return
        waits = chat.id in self._chats or len(self._busy) >= len(self._pool)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._chats.get(chat.id)
        if queue is None:
            queue = self._chats[chat.id] = deque()
            self._ready.put_nowait(chat.id)
        queue.append(_Item(coroutine, done))
        if self.arrival is not None:
            await self.arrival.queued(update, waits)
        await done

    async def _work(self) -> None:
        while True:
            chat = await self._ready.get()
            queue = self._chats[chat]
            item = queue[0]
            self._busy.add(chat)
            try:
                await item.run
            except HandlingFailed as failed:
                self._park(chat, item, failed)
                continue
            except Exception as exc:
                queue.popleft()
                if not item.done.done():
                    item.done.set_exception(exc)
            except BaseException:
                if not item.done.done():
                    item.done.set_result(None)  # shutting down: it stays in the inbox
                raise
            else:
                queue.popleft()
                if not item.done.done():
                    item.done.set_result(None)
            finally:
                self._busy.discard(chat)
            self._next(chat)

    def _park(self, chat: int, item: _Item, failed: HandlingFailed) -> None:
        """Storage refused the handling: the chat waits (its order kept), then tries again."""
        item.run, item.attempt = failed.retry(), item.attempt + 1
        delay = backoff(item.attempt - 1, self.retry_base, self.retry_most)
        logger.warning("update %s not handled (storage); retry in %.1fs", failed.update_id, delay)
        self._parked[chat] = asyncio.get_running_loop().call_later(delay, self._unpark, chat)

    def _unpark(self, chat: int) -> None:
        self._parked.pop(chat, None)
        self._ready.put_nowait(chat)

    def _next(self, chat: int) -> None:
        if self._chats[chat]:
            self._ready.put_nowait(chat)  # to the back of the line: chats take turns
        else:
            del self._chats[chat]

    async def initialize(self) -> None:
        """Start the workers."""
        if not self._pool:
            self._pool = [
                asyncio.create_task(self._work(), name=f"updates-worker-{i}")
                for i in range(self.workers)
            ]

    def abandon(self) -> None:
        """Stop taking queued updates (they stay unhandled in the inbox for the next start)."""
        for timer in self._parked.values():
            timer.cancel()
        self._parked.clear()
        for chat, queue in list(self._chats.items()):
            keep = [queue.popleft()] if chat in self._busy and queue else []
            for item in queue:
                _close(item.run)
                if not item.done.done():
                    item.done.set_result(None)
            queue.clear()
            queue.extend(keep)
            if not keep:
                del self._chats[chat]
        if self.arrival is not None:
            self.arrival.close()

    async def shutdown(self) -> None:
        """Stop the workers."""
        self.abandon()
        for task in self._pool:
            task.cancel()
        for task in self._pool:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pool = []
        self._chats.clear()
        self._busy.clear()
        self._ready = asyncio.Queue()


def _close(run: Awaitable[Any]) -> None:
    """A coroutine that will not run is closed (no "never awaited" warning)."""
    if isinstance(run, Coroutine):
        run.close()


# Telegram's limits as shared buckets (several processes, bot.storage.budget), drawn so that
# no window of the limit's length holds more than it allows (capacity + rate x period <= limit,
# with a little room for the jitter between reserving and arriving): 30 messages in any second
# (2 at once, 28 a second), 20 in any minute per group (6 at once, then 14 a minute).
OVERALL = ("telegram", 28.0, 2.0)  # key, messages a second, at once
PER_GROUP = (14.0 / 60.0, 6.0)


class SendRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (30 messages/s overall, 20/min per group) applied to sends only:
    reads such as getChatMember and edits must not eat a group's 20 messages a minute.

    With `budget` (several processes on PostgreSQL) the same limits are kept for all the
    processes together: each send reserves its tokens in the database and waits its turn."""

    budget: SharedBudget | None = None

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
        if self.budget is not None:
            buckets = [Bucket(*OVERALL)]
            chat = str(data.get("chat_id", ""))
            if chat.startswith(("-", "@")):  # a group or a channel
                buckets.append(Bucket(f"telegram:{chat}", *PER_GROUP))
            wait = await self.budget.reserve(buckets)
            if wait > 0:
                await asyncio.sleep(wait)
            return await callback(*args, **kwargs)
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )


# With max_retries=0 a 429 is an expected outcome that the outbox reschedules (and logs as a
# warning); PTB's limiter would log each one as an error with a traceback.
logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
