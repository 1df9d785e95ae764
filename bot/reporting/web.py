"""/healthz and /metrics as aiohttp routes, on a server that runs anyway or one of their own."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.reporting.monitor import Monitor

logger = logging.getLogger(__name__)

MonitorSource = Callable[[], Monitor | None]


def add_monitor_routes(
    app: web.Application, monitor: MonitorSource, now: Callable[[], datetime]
) -> None:
    """Serve /healthz and /metrics; `monitor` gives the running bot's (None while it starts)."""

    async def healthz(request: web.Request) -> web.Response:
        current = monitor()
        if current is None:
            ok, body = False, {"status": "fail", "database": "not started", "delivery": "stopped"}
        else:
            ok, body = await current.health(now())
        return web.Response(
            status=200 if ok else 503,
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
        )

    async def metrics(request: web.Request) -> web.Response:
        current = monitor()
        if current is None:
            return web.Response(status=503, text="bot not started\n")
        return web.Response(
            body=await current.metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


async def start_monitor_server(
    monitor: MonitorSource, now: Callable[[], datetime], host: str, port: int
) -> web.AppRunner:
    """A server with only /healthz and /metrics (a Telegram-only bot polls and has no other)."""
    app = web.Application()
    add_monitor_routes(app, monitor, now)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0][1] if runner.addresses else port
    logger.info("health and metrics on http://%s:%s/healthz and /metrics", host, bound)
    return runner
