"""The link to the Bot API: a start-up check that says in one line what is wrong, and a watch
on the transport that logs one line when the link goes down and one when it is back.

PTB's polling already retries with backoff (1 s, then ×1.5 up to 30 s) and the outbox retries
sends; what was missing is a readable account of it: without this, a network failure at start
is two tracebacks, and a drop later a traceback per attempt.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from telegram import Bot
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.request import BaseRequest, RequestData

from bot.config import Settings

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
TOKEN_REFUSED = 2  # exit codes of `yimi-bot run`
UNREACHABLE = 3


def explain(exc: TelegramError, settings: Settings) -> tuple[int, str]:
    """An exit code and one line (Chinese, then the error) for a failed getMe."""
    where = settings.telegram_base_url or DEFAULT_BASE_URL
    # PTB's messages may quote the token (InvalidToken does): it never reaches the screen.
    said = exc.message.replace(settings.token(), "<BOT_TOKEN>")
    if isinstance(exc, InvalidToken):
        return TOKEN_REFUSED, (
            "Telegram 拒绝了 BOT_TOKEN（getMe 未授权）：请核对 .env 中的 BOT_TOKEN，"
            "可向 @BotFather 发送 /token 重新获取"
        )
    if isinstance(exc, NetworkError) and not isinstance(exc, BadRequest):
        return UNREACHABLE, (
            f"连不上 Telegram Bot API（{where}）：请检查本机网络、代理（HTTPS_PROXY / ALL_PROXY）"
            f"和 .env 中的 TELEGRAM_BASE_URL（{type(exc).__name__}: {said}）"
        )
    return UNREACHABLE, f"Telegram Bot API（{where}）拒绝了 getMe：{said}"


def make_bot(settings: Settings, request: BaseRequest | None = None) -> Bot:
    """A Bot with the configured token and base URL (not yet initialised)."""
    return Bot(
        settings.token(),
        base_url=settings.telegram_base_url or DEFAULT_BASE_URL,
        request=request,
        get_updates_request=request,
    )


async def check_telegram(settings: Settings, request: BaseRequest | None = None) -> tuple[int, str]:
    """getMe with the configured token and base URL: (0, "") if it answers, else the exit
    code and the one line to print."""
    try:
        async with make_bot(settings, request) as bot:  # initialize() calls getMe
            logger.info("Telegram Bot API reachable as @%s", bot.username)
    except TelegramError as exc:
        return explain(exc, settings)
    return 0, ""


class LinkWatch:
    """Up or down, logged once per change (the requests report every outcome here)."""

    def __init__(self) -> None:
        self.down_since: float | None = None

    def failed(self, what: str) -> None:
        """A request found no link (connection error, timeout, 5xx from a proxy or the API)."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning(
                "Telegram Bot API unreachable (%s); retrying with backoff, polling and sending "
                "resume by themselves",
                what,
            )

    def answered(self) -> None:
        """The API answered (whatever it said)."""
        if self.down_since is not None:
            seconds = time.monotonic() - self.down_since
            self.down_since = None
            logger.info("Telegram Bot API reachable again after %.0f s", seconds)


class WatchedRequest(BaseRequest):
    """A transport that tells a `LinkWatch` how each request went, then behaves as `inner`."""

    def __init__(self, inner: BaseRequest, watch: LinkWatch) -> None:
        self.inner = inner
        self.watch = watch

    @property
    def read_timeout(self) -> float | None:
        """The inner transport's default read timeout."""
        return self.inner.read_timeout

    async def initialize(self) -> None:
        """Start the inner transport."""
        await self.inner.initialize()

    async def shutdown(self) -> None:
        """Stop the inner transport."""
        await self.inner.shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """The inner request; a connection error or a 5xx marks the link down."""
        try:
            code, payload = await self.inner.do_request(
                url,
                method,
                request_data,
                read_timeout=read_timeout,
                write_timeout=write_timeout,
                connect_timeout=connect_timeout,
                pool_timeout=pool_timeout,
            )
        except NetworkError as exc:
            self.watch.failed(f"{type(exc).__name__}: {exc.message}")
            raise
        if code >= 500:
            self.watch.failed(f"HTTP {code}")
        else:
            self.watch.answered()
        return code, payload
