"""start_wecom(services, settings): the WeCom channel on open services, serving its callback.

The API client, the Sender (for members and for firms on WeChat), the channel's inbox worker
and the callback server on WEB_HOST:WEB_PORT; `WeComRuntime.stop` undoes it in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from aiohttp import web

from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.callback import PATH, callback_app
from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.crypto import CallbackCrypto
from bot.channels.wecom.sender import WeComSender
from bot.classify.classifier import get_classifier
from bot.config import Settings, WeComSettings
from bot.core.ids import WECOM, WXKF
from bot.core.ports import SystemClock
from bot.reporting.web import add_monitor_routes
from bot.schedule import run_jobs
from bot.services import Services, add_channel, close_services, open_services

logger = logging.getLogger(__name__)


@dataclass
class WeComRuntime:
    """What start_wecom started."""

    client: WeComClient
    sender: WeComSender
    channel: WeComChannel
    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        """Stop taking callbacks, stop the worker, close the HTTP client."""
        await self.runner.cleanup()
        await self.channel.stop()
        await self.client.aclose()


async def start_wecom(
    services: Services,
    wecom: WeComSettings,
    *,
    host: str,
    port: int,
    client: WeComClient | None = None,
    start_worker: bool = True,
) -> WeComRuntime:
    """Add the WeCom channel to `services` and serve /wecom/callback (port 0: any free port)."""
    api = client or WeComClient(
        wecom.corp_id, wecom.secret, agent_id=wecom.agent_id, base_url=wecom.api_base
    )
    sender = WeComSender(api, services.db, services.workflow.ground.clock, wecom.kf_id)
    add_channel(services, (WECOM, WXKF), sender, sender)
    channel = WeComChannel(services, api, sender, wecom)
    crypto = CallbackCrypto(wecom.token, wecom.aes_key, wecom.corp_id)
    served = callback_app(crypto, channel.store)
    add_monitor_routes(served, lambda: services.monitor, services.workflow.now)
    runner = web.AppRunner(served, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    url = f"http://{host}:{bound}{PATH}"
    if start_worker:
        channel.start()
    logger.info("WeCom callback listening on %s (API %s)", url, wecom.api_base)
    return WeComRuntime(api, sender, channel, runner, url)


async def run_wecom(settings: Settings, wecom: WeComSettings) -> None:
    """`yimi-bot run` with WeCom and no Telegram: the services, the channel, delivery and the
    scheduled work, until SIGINT or SIGTERM."""
    clock = SystemClock(settings.timezone)
    services = await open_services(settings, clock, get_classifier(), {}, {})
    runtime: WeComRuntime | None = None
    jobs: asyncio.Task[None] | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        runtime = await start_wecom(services, wecom, host=settings.web_host, port=settings.web_port)
        services.delivery.start()
        jobs = asyncio.create_task(run_jobs(services), name="scheduled work")
        logger.info("yimi-bot started on WeCom")
        await stop.wait()
    finally:
        if jobs is not None:
            jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jobs
        if runtime is not None:
            await runtime.stop()
        await close_services(services)
