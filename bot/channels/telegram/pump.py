"""Stored updates handled by every bot process on a shared database (PostgreSQL, issue 10).

The process that polls Telegram (or answers its webhook) stores each update with its chat and
handles nothing itself; every process, the poller included, takes chats with updates still to
handle (`bot.storage.claims`: one process per chat at a time, given up when it dies), reads that
chat's updates once it holds the claim and runs them in order through the application's update
processor (the flood gate, fair turns between chats, retries when storage refuses). A chat is
given up when it has nothing left; updates stored for it meanwhile are taken up at the next
round, here or in another process. The poller's own rounds start at once (`wake`), the others'
every `poll` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.storage import claims
from bot.storage.db import Database
from bot.storage.health import STORAGE_ERRORS

logger = logging.getLogger(__name__)


class InboxPump:
    """Claims chats with stored updates and handles them, `chats` at a time."""

    def __init__(
        self,
        app: Application,  # type: ignore[type-arg]
        db: Database,
        *,
        poll: float = 0.2,
        chats: int = 32,
    ) -> None:
        self.app = app
        self.db = db
        self.poll = poll
        self.chats = chats
        self.handled = 0
        self._held: dict[str, int] = {}  # chat key -> the session it was claimed in
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._chat_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    def start(self) -> None:
        """Run the rounds in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="inbox-pump")

    def wake(self) -> None:
        """An update was stored: look now."""
        self._wake.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking chats and updates; the updates being handled finish first (up to
        `grace` seconds), so that a chat is given up only once nothing of it runs here.
        Updates not yet handled stay stored for whoever comes next."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._chat_tasks:
            await asyncio.wait(set(self._chat_tasks), timeout=grace)
        for task in list(self._chat_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._chat_tasks.clear()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.round()
            except STORAGE_ERRORS as exc:
                self.db.health.failed(exc)
            except Exception:
                logger.exception("inbox round failed")
            wait = 5 * self.poll if self.db.health.failing else self.poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def round(self) -> int:
        """Claim chats with updates to handle (as many as there is room for); how many."""
        room = self.chats - len(self._held)
        if room <= 0:
            return 0
        async with self.db.read() as repo:
            # More candidates than room: the first ones may be other processes' chats.
            keys = await repo.inbox.unhandled_chats(self._held, room + 4 * self.chats)
            if not keys:
                return 0
            session = self.db.session
            mine = await claims.claim(repo.conn, claims.INBOX, keys, room)
        for key in mine:
            self._held[key] = session
            task = asyncio.get_running_loop().create_task(self._chat(key, session))
            self._chat_tasks.add(task)
            task.add_done_callback(self._chat_tasks.discard)
        return len(mine)

    async def _chat(self, key: str, session: int) -> None:
        """Handle the chat's updates in order until none is left, then give it up."""
        try:
            while not self._stopping and self.db.session == session:
                async with self.db.read() as repo:
                    pending = await repo.inbox.unhandled_of(key)
                if not pending:
                    break
                for update_id, payload in pending:
                    if self._stopping or self.db.session != session:
                        return  # stopping, or the connection was made again (claim gone)
                    await self._handle(update_id, payload)
        except STORAGE_ERRORS as exc:
            self.db.health.failed(exc)
        except Exception:
            logger.exception("handling the stored updates of %s failed", key)
        finally:
            await self._release(key, session)
            self.wake()  # room for another chat (the finally runs after a return, too)

    async def _handle(self, update_id: int, payload: str) -> None:
        app = self.app
        update = Update.de_json(json.loads(payload), app.bot)
        processor: Any = app.update_processor
        # As PTB's own fetcher does: through the processor (flood gate, turns, retries); it
        # returns once the update was handled and marked so (InboxApplication).
        await processor.process_update(update, app.process_update(update))
        self.handled += 1
        logger.debug("update %s handled from the shared inbox", update_id)

    async def _release(self, key: str, session: int) -> None:
        if self._held.pop(key, None) is None or self.db.session != session:
            return
        with contextlib.suppress(*STORAGE_ERRORS):  # a lost session has lost it anyway
            async with self.db.read() as repo:
                await claims.release(repo.conn, claims.INBOX, [key])
