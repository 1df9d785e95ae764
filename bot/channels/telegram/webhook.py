"""Telegram's webhook: updates posted to WEB_HOST:WEB_PORT/telegram/webhook, at any process.

Every request must carry the secret given to setWebhook (header
X-Telegram-Bot-Api-Secret-Token, compared in constant time); a request without it, or with
another, is answered 403, logged and never handled. An accepted update is stored before Telegram
is answered (the InboxQueue's put), so an update Telegram was told arrived is never lost; a
redelivered one is not handled twice. Which process handles it is the inbox pump's business
(bot.channels.telegram.pump), so the load balancer may send any update anywhere.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.reporting.web import MonitorSource, add_monitor_routes

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def add_webhook_route(web_app: web.Application, app: Application, secret: str) -> None:  # type: ignore[type-arg]
    """POST /telegram/webhook: check the secret, store the update, answer."""
    expected = secret.encode()

    async def on_update(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            logger.warning(
                "webhook request from %s refused (403): %s secret token",
                request.remote,
                "wrong" if given else "no",
            )
            return web.Response(status=403, text="forbidden\n")
        try:
            data = await request.json()
            update = Update.de_json(data, app.bot)
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning(
                "webhook request from %s is not an update (%s): 400", request.remote, exc
            )
            return web.Response(status=400, text="not an update\n")
        await app.update_queue.put(update)  # stored before Telegram hears it arrived
        return web.Response(status=200)

    web_app.router.add_post(WEBHOOK_PATH, on_update)


async def start_webhook_server(
    app: Application,  # type: ignore[type-arg]
    secret: str,
    monitor: MonitorSource,
    now: Callable[[], datetime],
    host: str,
    port: int,
) -> web.AppRunner:
    """The webhook route with /healthz and /metrics on WEB_HOST:WEB_PORT."""
    web_app = web.Application()
    add_webhook_route(web_app, app, secret)
    add_monitor_routes(web_app, monitor, now)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0][1] if runner.addresses else port
    logger.info("Telegram webhook on http://%s:%s%s", host, bound, WEBHOOK_PATH)
    return runner
