"""One of several `yimi-bot run` processes on one PostgreSQL database (issue 10), or the one
process of a webhook deployment on SQLite.

Every process handles stored updates (InboxPump) and delivers the outbox, each chat claimed by
one process at a time (bot.storage.claims). One of them leads (bot.storage.lease): it polls
Telegram (only one process may call getUpdates) and runs the scheduled work (reminders, the
morning list, the digest, the backup), so that work runs once across the processes. The others
try for the lease every second; when the leader dies its lease lapses within LEASE_SECONDS and
one of them starts polling and the schedule. A leader that cannot renew exits (code 75) rather
than poll beside another; a clean stop gives the lease up at once.

With TELEGRAM_WEBHOOK_URL every process serves the webhook (bot.channels.telegram.webhook) and
the leader sets it instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from telegram.ext import Application

from bot.channels.telegram.app import schedule_jobs
from bot.channels.telegram.pump import InboxPump
from bot.config import Settings
from bot.services import Services
from bot.storage import lease
from bot.storage.health import STORAGE_ERRORS
from bot.storage.lease import Leadership

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


def run_shared(app: Application, settings: Settings, *, try_every: float = 1.0) -> None:  # type: ignore[type-arg]
    """Run until SIGTERM or SIGINT (the steps of run_polling, polling only while leading)."""
    asyncio.run(serve(app, settings, try_every=try_every))


async def serve(
    app: Application,  # type: ignore[type-arg]
    settings: Settings,
    *,
    try_every: float = 1.0,
    stop: asyncio.Event | None = None,
    holder: str | None = None,
) -> None:
    """The application on a shared database until `stop` (or a signal) is set; `holder`
    names this process for the lease (host:pid by default)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await app.initialize()
    contender: asyncio.Task[None] | None = None
    try:
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        services = app.bot_data["services"]
        assert isinstance(services, Services)
        contender = loop.create_task(lead_when_free(app, settings, services, try_every, holder))
        await stop.wait()
    finally:
        if contender is not None:
            contender.cancel()
            with contextlib.suppress(BaseException):
                await contender
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        pump = app.bot_data.get("pump")
        if isinstance(pump, InboxPump):  # before the processor drops what it queued
            await pump.stop()
        if app.running:
            await app.stop()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)  # gives the lease up (close_services)
        await app.shutdown()


async def lead_when_free(
    app: Application,  # type: ignore[type-arg]
    settings: Settings,
    services: Services,
    try_every: float,
    holder: str | None = None,
) -> None:
    """Take the lease once it is free, then poll and run the schedule in this process."""
    holder = holder or lease.holder_name()
    told = False
    while services.db.shared:  # one process on SQLite: it leads
        try:
            async with services.db.tx() as repo:
                if await lease.take(repo, holder):
                    break
        except STORAGE_ERRORS as exc:
            logger.warning("lease: database unreachable (%s); trying again", exc)
        if not told:
            told = True
            print(
                "另一个 yimi-bot 进程在轮询 Telegram 并运行定时任务；本进程分担处理和发送，"
                "它停止后接替轮询 / another process polls: this one shares the work",
                flush=True,
            )
        await asyncio.sleep(try_every)
    if services.db.shared:
        leadership = Leadership(services.db, holder)
        leadership.start()
        services.leadership = leadership
    webhook = settings.webhook()
    if webhook is not None:
        # Every process serves the webhook; the leader tells Telegram where it is (again
        # after a takeover: the same address, so nothing changes for Telegram).
        url, secret = webhook
        await app.bot.set_webhook(
            url, secret_token=secret, allowed_updates=ALLOWED_UPDATES, max_connections=40
        )
        logger.info("leading: webhook set, running the scheduled work (%s)", holder)
    else:
        logger.info("leading: polling Telegram and running the scheduled work (%s)", holder)
        assert app.updater is not None
        await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
    if services.db.shared:  # on SQLite start_services has scheduled it already
        schedule_jobs(app, settings, services)
