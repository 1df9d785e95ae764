"""The inbox: fetched updates are stored before Telegram is told they arrived, handled from there.

PTB's polling confirms a batch to Telegram (the next getUpdates carries offset = last id + 1)
only after it has put every update of the batch into the application's update queue, and the
webhook handler answers Telegram only after its `update_queue.put` returns. So a queue whose
`put` writes the update to SQLite first covers both modes: an update is durable before it is
confirmed. While the database refuses writes, `put` waits and retries, so nothing is confirmed
that is not stored, and polling resumes by itself; the people waiting are told once (`Stall`).

`InboxApplication.process_update` marks an update handled only when its handling committed.
When storage refused it, the update stays unhandled and `HandlingFailed` asks the update
processor to run it again later (its chat waits meanwhile); `replay` handles, on start, what was
stored but never handled. An update whose handler failed for any other reason (a bug) is marked
handled after the error handler told the user, so it is not retried forever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, Job

from bot.channels.telegram.flood import CallbackAnswers
from bot.channels.telegram.pump import InboxPump
from bot.channels.telegram.sender import chat_of
from bot.channels.telegram.updates import FairProcessor, HandlingFailed
from bot.core.ids import TELEGRAM, qualify
from bot.core.ports import Clock
from bot.render import texts
from bot.services import Services
from bot.storage.db import Database
from bot.storage.health import STORAGE_ERRORS, backoff, is_storage_error

logger = logging.getLogger(__name__)


class InboxQueue(asyncio.Queue[object]):
    """The application's update queue; `put` stores an update durably before queueing it."""

    def __init__(self, retry_base: float = 0.5, retry_most: float = 30.0) -> None:
        super().__init__()
        self.store: Callable[[Update], Awaitable[bool]] | None = None
        self.stall: Stall | None = None
        self.pump: InboxPump | None = None  # shared database: stored updates go to the pump
        self.retry_base, self.retry_most = retry_base, retry_most

    async def put(self, item: object) -> None:
        """Store first; an update already stored (a redelivery) is not queued again. On a
        shared database the update is only stored: every process's pump takes it from there
        (bot.channels.telegram.pump)."""
        if (
            isinstance(item, Update)
            and self.store is not None
            and not await self._store(item, self.store)
        ):
            logger.info("update %s was already received; not handled again", item.update_id)
            return
        if isinstance(item, Update) and self.pump is not None:
            self.pump.wake()
            return
        await super().put(item)

    async def _store(self, update: Update, store: Callable[[Update], Awaitable[bool]]) -> bool:
        """Store, waiting out storage errors (polling waits with it: nothing is confirmed)."""
        attempt = 0
        while True:
            try:
                return await store(update)
            except STORAGE_ERRORS:
                if self.stall is not None:
                    await self.stall.waiting(update)
                await asyncio.sleep(backoff(attempt, self.retry_base, self.retry_most))
                attempt += 1
                if self.store is None:  # stopped meanwhile: Telegram keeps the update
                    raise


class Stall:
    """Tells the people whose updates wait, unstored, that storage is failing (once each)."""

    def __init__(self, app: Application, db: Database) -> None:  # type: ignore[type-arg]
        self.app = app
        self.db = db

    async def waiting(self, update: Update) -> None:
        """This update could not be stored; it and those behind it in Telegram wait."""
        await tell_storage_down(self.app, self.db, update)
        # The updates behind it are unconfirmed at Telegram: an offset of this update's id
        # confirms only what is stored, and shows who else is waiting, so they are told too.
        try:
            behind = await self.app.bot.get_updates(offset=update.update_id, timeout=0)
        except TelegramError as exc:
            logger.debug("could not look at the updates waiting: %s", exc)
            return
        for other in behind:
            if other.update_id != update.update_id:
                await tell_storage_down(self.app, self.db, other)


async def tell_storage_down(app: Application, db: Database, update: Update) -> None:  # type: ignore[type-arg]
    """One clear answer while storage fails: a toast for a press, a message once per chat."""
    chat = update.effective_chat
    query = update.callback_query
    if query is not None:
        answers = getattr(app.update_processor, "answers", None)
        if not isinstance(answers, CallbackAnswers) or answers.claim(query.id):
            try:
                await query.answer(texts.STORAGE_DOWN_TOAST, show_alert=True)
            except TelegramError as exc:
                logger.debug("could not answer a press while storage fails: %s", exc)
        return
    if chat is None or chat.type != chat.PRIVATE:
        return
    if db.health.first_notice(f"telegram:{chat.id}"):
        try:
            await app.bot.send_message(chat.id, texts.STORAGE_DOWN)
        except TelegramError as exc:
            logger.warning("could not tell chat %s that storage fails: %s", chat.id, exc)


async def tell_staff(app: Application, db: Database, failing: bool, error: str) -> None:  # type: ignore[type-arg]
    """The coordinators hear that storage fails and that it recovered (the log, failing that)."""
    text = texts.STORAGE_DOWN_STAFF.format(error=error) if failing else texts.STORAGE_UP_STAFF
    try:
        async with db.read() as repo:
            chats = [chat for _, chat in await repo.users.team_chats("coordinator")]
    except STORAGE_ERRORS:
        chats = []
    chats = [chat for chat in chats if chat.startswith("telegram:")]
    if not chats:
        logger.error("no coordinators' group on Telegram to tell: %s", text)
    for chat in chats:  # every county's coordinators
        try:
            await app.bot.send_message(chat_of(chat), text)
        except TelegramError as exc:
            logger.error("could not tell the coordinators (%s): %s", exc, text)


class InboxApplication(Application):  # type: ignore[type-arg]
    """An Application that marks each update handled in the inbox once its handling committed."""

    inbox: Inbox | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._refused: set[int] = set()

    async def process_update(self, update: object) -> None:
        """Run the handlers; mark the update handled, or raise HandlingFailed to run it again."""
        inbox = self.inbox
        if not isinstance(update, Update) or inbox is None:
            await super().process_update(update)
            return
        self._refused.discard(update.update_id)
        started = time.perf_counter()
        await super().process_update(update)
        services = self.bot_data.get("services")
        if isinstance(services, Services):
            services.monitor.observe(TELEGRAM, time.perf_counter() - started)
        if update.update_id in self._refused:
            self._refused.discard(update.update_id)
            raise HandlingFailed(update.update_id, lambda: self.process_update(update))
        await inbox.db.health.retry(lambda: inbox.handled(update.update_id))

    async def process_error(
        self,
        update: object | None,
        error: Exception,
        job: Job[Any] | None = None,
        coroutine: Any = None,
    ) -> bool:
        """Storage errors: the update is kept for a retry and its sender told once."""
        if not is_storage_error(error) or self.inbox is None:
            return await super().process_error(update, error, job, coroutine)
        if isinstance(update, Update):
            self._refused.add(update.update_id)
            await tell_storage_down(self, self.inbox.db, update)
        else:
            logger.warning("%s: the database refuses writes; it runs again", job or "a task")
        return True

    async def stop(self) -> None:
        """Stop taking queued updates first: they stay in the inbox for the next start."""
        if isinstance(self.update_processor, FairProcessor):
            self.update_processor.abandon()
        await super().stop()


class Inbox:
    """Stores updates (raw JSON) and replays the unhandled ones."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def store(self, update: Update) -> bool:
        """Write the update; False when it was stored before."""
        payload = json.dumps(update.to_dict(), ensure_ascii=False)
        chat = update.effective_chat
        key = qualify(TELEGRAM, chat.id) if chat is not None else ""
        async with self.db.write1() as repo:
            return await repo.inbox.store_update(update.update_id, payload, self.clock.now(), key)

    async def handled(self, update_id: int) -> None:
        """The handling of this update committed."""
        async with self.db.write1() as repo:
            await repo.inbox.mark_update_handled(update_id, self.clock.now())

    async def handled_if_possible(self, update_id: int) -> None:
        """Mark handled an update answered without handling; if storage fails it is replayed."""
        try:
            await self.handled(update_id)
        except STORAGE_ERRORS as exc:
            logger.debug("update %s stays unhandled: %s", update_id, exc)

    async def replay(self, app: Application) -> int:  # type: ignore[type-arg]
        """Handle, in order, the updates stored but not handled before the last stop."""
        async with self.db.read() as repo:
            pending = await repo.inbox.unhandled_updates()
        for update_id, payload in pending:
            logger.info("replaying update %s stored before the last stop", update_id)
            update = Update.de_json(json.loads(payload), app.bot)
            await app.process_update(update)
            if not isinstance(app, InboxApplication):
                await self.handled(update_id)
        return len(pending)


def attach(app: Application, inbox: Inbox, pump: InboxPump | None = None) -> None:  # type: ignore[type-arg]
    """Wire the inbox into an application built with InboxQueue and InboxApplication (with
    `pump`, on a shared database, stored updates are handled by it)."""
    if isinstance(app.update_queue, InboxQueue):
        app.update_queue.store = inbox.store
        app.update_queue.stall = Stall(app, inbox.db)
        app.update_queue.pump = pump
    if isinstance(app, InboxApplication):
        app.inbox = inbox
    arrival = getattr(app.update_processor, "arrival", None)
    if arrival is not None:
        arrival.app = app


def detach(app: Application) -> None:  # type: ignore[type-arg]
    """Stop storing (the database is about to close)."""
    if isinstance(app.update_queue, InboxQueue):
        app.update_queue.store = None
        app.update_queue.stall = None
        app.update_queue.pump = None
    if isinstance(app, InboxApplication):
        app.inbox = None
