"""build_application(settings): the PTB Application, its services and start/stop hooks."""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest, HTTPXRequest

from bot.channels.telegram.connection import LinkWatch, WatchedRequest
from bot.channels.telegram.flood import Arrival, CallbackAnswers, FloodGate
from bot.channels.telegram.handlers import register
from bot.channels.telegram.inbox import (
    Inbox,
    InboxApplication,
    InboxQueue,
    attach,
    detach,
    tell_staff,
)
from bot.channels.telegram.pump import InboxPump
from bot.channels.telegram.sender import TelegramSender
from bot.channels.telegram.updates import FairProcessor, SendRateLimiter
from bot.channels.telegram.webhook import start_webhook_server
from bot.classify.classifier import Classifier, get_classifier
from bot.config import Settings, WeComSettings
from bot.core.ids import TELEGRAM
from bot.core.ports import Clock, SystemClock
from bot.reporting.web import start_monitor_server
from bot.schedule import Schedule
from bot.services import Services, close_services, open_services
from bot.storage.budget import SharedBudget

logger = logging.getLogger(__name__)

PRIVATE_COMMANDS = [
    BotCommand("start", "开始 / 企业登记"),
    BotCommand("my", "我的工单"),
    BotCommand("ticket", "查看工单：/ticket 编号"),
    BotCommand("reply", "回复：/reply 编号 内容"),
    BotCommand("withdraw", "撤回工单：/withdraw 编号"),
    BotCommand("profile", "企业信息"),
    BotCommand("help", "帮助"),
]
GROUP_COMMANDS = [
    BotCommand("ticket", "查看工单：/ticket 编号"),
    BotCommand("progress", "记录进展：/progress 编号 内容"),
    BotCommand("dispatch", "分拨：/dispatch 编号 团队编号"),
    BotCommand("merge", "合并同一问题：/merge 被合并编号 主单编号"),
    BotCommand("unmerge", "撤销合并：/unmerge 编号"),
    BotCommand("related", "可能相关的工单：/related 编号"),
    BotCommand("stats", "统计：/stats [week|month|year]"),
    BotCommand("export", "导出问题台账（专班群）：/export [起] [止]"),
    BotCommand("extend", "申请延期：/extend 编号 天数 原因"),
    BotCommand("longterm", "申请长期跟踪：/longterm 编号 原因"),
    BotCommand("lead", "设为团长"),
    BotCommand("teams", "群组绑定情况"),
    BotCommand("bind", "绑定本群：/bind 团队编号（管理员）"),
    BotCommand("unbind", "解绑本群（管理员）"),
    BotCommand("help", "帮助"),
]


def build_application(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    clock: Clock | None = None,
    classifier: Classifier | None = None,
    rate_limit: bool = True,
    wecom: WeComSettings | None = None,
    shared: bool = False,
) -> Application:  # type: ignore[type-arg]
    """The bot, ready for run_polling() (or for tests with a fake transport); with `wecom`,
    the WeCom channel runs beside it on the same services and database. `shared` (PostgreSQL,
    bot.channels.telegram.shared): one of several processes on the database, which handles
    the stored updates of the chats it claims; polling and the scheduled work are started by
    whichever process leads."""
    # The inbox: updates are stored by the queue's put (before polling confirms them and before
    # a webhook is answered) and marked handled by the application once their handling
    # committed. Each user's updates pass the flood limit on arrival; chats take turns.
    gate = FloodGate(settings.flood_burst, settings.flood_per_second)
    builder = (
        ApplicationBuilder()
        .token(settings.token())
        .application_class(InboxApplication)
        .update_queue(InboxQueue())
        .concurrent_updates(FairProcessor(arrival=Arrival(gate, CallbackAnswers())))
    )
    if settings.telegram_base_url:
        builder = builder.base_url(settings.telegram_base_url)
    if settings.telegram_base_file_url:
        builder = builder.base_file_url(settings.telegram_base_file_url)
    # One watch on both transports: a dropped link is logged once, and its return once.
    watch = LinkWatch()
    sending = request or HTTPXRequest(connection_pool_size=256)
    polling = updates_request or request or HTTPXRequest(connection_pool_size=1)
    builder = builder.request(WatchedRequest(sending, watch)).get_updates_request(
        WatchedRequest(polling, watch)
    )
    if rate_limit and settings.telegram_rate_limit:
        # Retries are the outbox's job: 429s reach it, queued sends wait here for the limits.
        builder = builder.rate_limiter(SendRateLimiter(max_retries=0))  # type: ignore[arg-type]
    the_clock = clock or SystemClock(settings.timezone)
    the_classifier = classifier

    async def post_init(app: Application) -> None:  # type: ignore[type-arg]
        services = await start_services(
            app, settings, the_clock, the_classifier or get_classifier(), shared=shared
        )
        if wecom is not None:
            from bot.channels.wecom.app import start_wecom

            app.bot_data["wecom"] = await start_wecom(
                services, wecom, host=settings.web_host, port=settings.web_port
            )
        elif settings.webhook() is not None:
            _, secret = settings.webhook() or ("", "")
            app.bot_data["monitor_server"] = await start_webhook_server(
                app,
                secret,
                lambda: services.monitor,
                services.workflow.now,
                settings.web_host,
                settings.web_port,
            )
        elif settings.health_server:
            app.bot_data["monitor_server"] = await start_monitor_server(
                lambda: services.monitor,
                services.workflow.now,
                settings.web_host,
                settings.web_port,
            )

    async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
        runtime = app.bot_data.pop("wecom", None)
        if runtime is not None:
            await runtime.stop()
        monitor_server = app.bot_data.pop("monitor_server", None)
        if monitor_server is not None:
            await monitor_server.cleanup()
        await stop_services(app)

    app = builder.post_init(post_init).post_shutdown(post_shutdown).build()
    register(app)
    return app


async def start_services(
    app: Application,  # type: ignore[type-arg]
    settings: Settings,
    clock: Clock,
    classifier: Classifier,
    *,
    start_delivery: bool = True,
    shared: bool = False,
) -> Services:
    """Build the services on the Telegram channel, attach the inbox and start delivery
    (post_init; tests call it). `shared`: the stored updates go to an InboxPump, and the
    scheduled work waits for the lead (schedule_jobs)."""
    sender = TelegramSender(app.bot)
    services = await open_services(
        settings, clock, classifier, {TELEGRAM: sender}, {TELEGRAM: sender}
    )
    db, delivery = services.db, services.delivery
    app.bot_data["services"] = services
    inbox = Inbox(db, clock)
    pump = InboxPump(app, db, poll=settings.outbox_poll_seconds) if shared else None
    if shared and settings.database_dsn:  # the limits kept by all the processes together
        budget = await SharedBudget.open(settings.database_dsn)
        app.bot_data["budget"] = delivery.budget = budget
        limiter = getattr(app.bot, "rate_limiter", None)
        if isinstance(limiter, SendRateLimiter):
            limiter.budget = budget
    attach(app, inbox, pump)
    db.health.listeners.append(lambda failing, error: tell_staff(app, db, failing, error))
    try:
        await app.bot.set_my_commands(PRIVATE_COMMANDS, scope=BotCommandScopeAllPrivateChats())
        await app.bot.set_my_commands(GROUP_COMMANDS, scope=BotCommandScopeAllGroupChats())
    except TelegramError as exc:
        logger.warning("could not set the command menu: %s", exc)
    if start_delivery:
        delivery.start()
        if not shared:
            schedule_jobs(app, settings, services)
    async with db.read() as repo:
        bound = await repo.users.list_bindings()
    # Plain text: the /teams reply is HTML for the chat, not for a log line.
    where = ", ".join(f"{b.team_id} {b.chat_id}" for b in bound) or "none yet (/bind in each group)"
    logger.info("yimi-bot started; groups bound: %s", where)
    async with db.tx() as repo:
        await repo.inbox.prune_inbox(clock.now() - timedelta(days=7))
    if pump is not None:  # it takes up what was stored before, chat by chat
        app.bot_data["pump"] = pump
        pump.start()
        return services
    replayed = await inbox.replay(app)
    if replayed:
        logger.info("handled %d updates stored before the last stop", replayed)
    return services


def schedule_jobs(
    app: Application,  # type: ignore[type-arg]
    settings: Settings,
    services: Services,
) -> Schedule | None:
    """PTB's job queue ticks the clock each minute; what is due (reminders, the morning list,
    the digest, the backup) is decided from the clock and the database each time
    (bot.schedule), so a restart neither repeats nor skips a daily job."""
    queue = app.job_queue
    if queue is None:
        logger.warning("no job queue: reminders and digests are off")
        return None
    schedule = Schedule(services, settings)

    async def tick(_: object) -> None:
        leadership = services.leadership
        if leadership is not None and not leadership.holds():
            return  # its session ended: the lease may be another's now (it exits at renewal)
        await schedule.tick()

    queue.run_repeating(tick, interval=60, first=5, name="scheduled work")
    return schedule


async def stop_services(app: Application) -> None:  # type: ignore[type-arg]
    """Stop delivery and close the database (post_shutdown)."""
    pump = app.bot_data.pop("pump", None)
    if isinstance(pump, InboxPump):
        await pump.stop()
    detach(app)
    services = app.bot_data.pop("services", None)
    if isinstance(services, Services):
        await close_services(services)
        budget = app.bot_data.pop("budget", None)
        if isinstance(budget, SharedBudget):
            await budget.close()
        logger.info(
            "stopped: %d stored updates handled here, %d messages sent",
            pump.handled if isinstance(pump, InboxPump) else 0,
            services.delivery.sent,
        )
