"""The callback route ``/wecom/callback``: URL verification (GET) and messages (POST).

GET answers the decrypted ``echostr`` (WeCom allows 1 s). POST verifies ``msg_signature`` and the
timestamp, decrypts, checks the corp id, parses, and hands the message to the injected
``store(message) -> bool`` (the durable inbox: True when new, False for a retry it already has)
*before* answering 200 with an empty body, so WeCom's retries (no 200 within 5 s) are stored
once and nothing answered is lost. Every reply goes out later through the API: the HTTP answer
never carries a passive XML reply. A request that fails a check is answered 4xx and logged at
WARNING (reason and peer, never the token or the body) and is never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.channels.wecom.crypto import (
    BadCiphertext,
    BadSignature,
    CallbackCrypto,
    CryptoError,
    Replayed,
    WrongReceiver,
)
from bot.channels.wecom.messages import BadXml, Message, Unhandled, find_encrypt, parse_message

__all__ = ["MAX_BODY", "PATH", "Store", "add_callback_route", "callback_app"]

logger = logging.getLogger(__name__)

PATH = "/wecom/callback"
# Callback bodies are a few hundred bytes; anything near this is not from WeCom.
MAX_BODY = 256 * 1024

Store = Callable[[Message], Awaitable[bool]]

_STATUS: dict[type[CryptoError], int] = {
    BadSignature: 403,
    Replayed: 403,
    WrongReceiver: 403,
    BadCiphertext: 400,
}


def _param(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    # Base64 has no spaces: a '+' sent without percent-encoding arrives decoded as ' '.
    return value.replace(" ", "+") if name == "echostr" else value


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    logger.warning(
        "wecom callback refused (%s %s): %s; from %s",
        request.method,
        status,
        reason,
        request.remote,
    )
    return web.Response(status=status, text="")


class CallbackHandler:
    """GET and POST of the callback URL for one app (one Token, EncodingAESKey and corp id)."""

    def __init__(self, crypto: CallbackCrypto, store: Store) -> None:
        self.crypto = crypto
        self.store = store

    async def on_verify(self, request: web.Request) -> web.StreamResponse:
        """URL verification: answer echostr decrypted, as plain text, nothing around it."""
        echostr = _param(request, "echostr")
        if not echostr:
            return _refuse(request, 400, "no echostr")
        try:
            plain = self.crypto.open(
                _param(request, "msg_signature"),
                _param(request, "timestamp"),
                _param(request, "nonce"),
                echostr,
            )
        except CryptoError as exc:
            return _refuse(request, _STATUS.get(type(exc), 400), str(exc))
        logger.info("wecom callback URL verified")
        return web.Response(body=plain, content_type="text/plain")

    async def on_callback(self, request: web.Request) -> web.StreamResponse:
        """A message or event: verified, decrypted, parsed and stored before the 200."""
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refuse(request, 413, "body too large")
        try:
            plain = self.crypto.open(
                _param(request, "msg_signature"),
                _param(request, "timestamp"),
                _param(request, "nonce"),
                find_encrypt(body),
            )
            message = parse_message(plain)
        except CryptoError as exc:
            return _refuse(request, _STATUS.get(type(exc), 400), str(exc))
        except BadXml as exc:
            return _refuse(request, 400, str(exc))
        if isinstance(message, Unhandled):
            logger.info("wecom callback ignored: %s", message.key)
            return web.Response(text="")
        if await self.store(message):
            logger.info("wecom callback stored: %s", message.key)
        else:
            logger.info("wecom callback %s was already stored (a retry)", message.key)
        return web.Response(text="")


def add_callback_route(app: web.Application, crypto: CallbackCrypto, store: Store) -> None:
    """Serve ``/wecom/callback`` on an existing aiohttp application."""
    handler = CallbackHandler(crypto, store)
    app.router.add_get(PATH, handler.on_verify)
    app.router.add_post(PATH, handler.on_callback)


def callback_app(crypto: CallbackCrypto, store: Store) -> web.Application:
    """An aiohttp application serving only the callback route (bodies capped at MAX_BODY)."""
    app = web.Application(client_max_size=MAX_BODY)
    add_callback_route(app, crypto, store)
    return app
