"""The inbox: fetched updates are stored before Telegram is told they arrived, handled from there.

PTB's polling confirms a batch to Telegram (the next getUpdates carries offset = last id + 1)
only after it has put every update of the batch into the application's update queue, and the
webhook handler answers Telegram only after its `update_queue.put` returns. So a queue whose
`put` writes the update to SQLite first covers both modes: an update is durable before it is
confirmed. `InboxApplication.process_update` marks it handled after the handlers ran (also
when one raised), and `replay` handles, on start, what was stored but never handled.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import Application

from bot.core.ports import Clock
from bot.storage.db import Database

logger = logging.getLogger(__name__)


class InboxQueue(asyncio.Queue[object]):
    """The application's update queue; `put` stores an update durably before queueing it."""

    def __init__(self) -> None:
        super().__init__()
        self.store: Callable[[Update], Awaitable[bool]] | None = None

    async def put(self, item: object) -> None:
        """Store first; an update already stored (a redelivery) is not queued again."""
        if isinstance(item, Update) and self.store is not None and not await self.store(item):
            logger.info("update %s was already received; not handled again", item.update_id)
            return
        await super().put(item)


class InboxApplication(Application):  # type: ignore[type-arg]
    """An Application that marks each update handled in the inbox once its handlers ran."""

    inbox: Inbox | None = None

    async def process_update(self, update: object) -> None:
        """Run the handlers, then mark the update handled (whatever they did)."""
        try:
            await super().process_update(update)
        finally:
            if isinstance(update, Update) and self.inbox is not None:
                await self.inbox.handled(update.update_id)


class Inbox:
    """Stores updates (raw JSON) and replays the unhandled ones."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def store(self, update: Update) -> bool:
        """Write the update; False when it was stored before."""
        payload = json.dumps(update.to_dict(), ensure_ascii=False)
        async with self.db.write1() as repo:
            return await repo.store_update(update.update_id, payload, self.clock.now())

    async def handled(self, update_id: int) -> None:
        """The handlers ran for this update."""
        async with self.db.write1() as repo:
            await repo.mark_update_handled(update_id, self.clock.now())

    async def replay(self, app: Application) -> int:  # type: ignore[type-arg]
        """Handle, in order, the updates stored but not handled before the last stop."""
        async with self.db.read() as repo:
            pending = await repo.unhandled_updates()
        for update_id, payload in pending:
            logger.info("replaying update %s stored before the last stop", update_id)
            update = Update.de_json(json.loads(payload), app.bot)
            try:
                await app.process_update(update)
            finally:
                await self.handled(update_id)
        return len(pending)


def attach(app: Application, inbox: Inbox) -> None:  # type: ignore[type-arg]
    """Wire the inbox into an application built with InboxQueue and InboxApplication."""
    if isinstance(app.update_queue, InboxQueue):
        app.update_queue.store = inbox.store
    if isinstance(app, InboxApplication):
        app.inbox = inbox


def detach(app: Application) -> None:  # type: ignore[type-arg]
    """Stop storing (the database is about to close)."""
    if isinstance(app.update_queue, InboxQueue):
        app.update_queue.store = None
    if isinstance(app, InboxApplication):
        app.inbox = None
