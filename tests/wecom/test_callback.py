"""/wecom/callback over a real socket on 127.0.0.1, signed and encrypted by the reference code."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot.channels.wecom.callback import MAX_BODY, PATH, callback_app
from bot.channels.wecom.crypto import CallbackCrypto
from bot.channels.wecom.messages import Message
from tests.wecom.reference import ref_encrypt, ref_envelope, ref_signature
from tests.wecom.store import SqliteStore

TOKEN = "yimiToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP = "ww0a1b2c3d4e5f6789"


class Server:
    def __init__(self, url: str, store: SqliteStore) -> None:
        self.url = url
        self.store = store
        self.http = httpx.AsyncClient(base_url=url, timeout=5.0)

    def signed(self, encrypt: str, *, ts: int | None = None, nonce: str = "n") -> dict[str, str]:
        stamp = str(int(time.time()) if ts is None else ts)
        return {
            "msg_signature": ref_signature(TOKEN, stamp, nonce, encrypt),
            "timestamp": stamp,
            "nonce": nonce,
        }

    async def post(self, plain: bytes, *, corp: str = CORP, **kw: object) -> httpx.Response:
        encrypt = ref_encrypt(AES_KEY, corp, plain)
        params = self.signed(encrypt, **kw)  # type: ignore[arg-type]
        return await self.http.post(PATH, params=params, content=ref_envelope(CORP, "1", encrypt))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    store = await SqliteStore.open(tmp_path / "inbox.db")
    runner = web.AppRunner(callback_app(CallbackCrypto(TOKEN, AES_KEY, CORP), store))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    served = Server(f"http://127.0.0.1:{port}", store)
    yield served
    await served.http.aclose()
    await runner.cleanup()
    await store.close()


def text(msg_id: str, content: str = "你好") -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[lisi]]>"
        f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]>"
        f"</MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>"
        "<AgentID>1000002</AgentID></xml>"
    ).encode()


async def test_url_verification_answers_the_echostr_plaintext(server: Server) -> None:
    echostr = ref_encrypt(AES_KEY, CORP, b"5927782489442352469")
    assert "+" in echostr or "/" in echostr or "=" in echostr  # characters URLs mangle
    started = time.monotonic()
    answer = await server.http.get(PATH, params={**server.signed(echostr), "echostr": echostr})
    assert time.monotonic() - started < 1.0
    assert answer.status_code == 200
    assert answer.content == b"5927782489442352469"  # no quotes, no newline, no BOM


async def test_url_verification_with_an_unencoded_plus(server: Server) -> None:
    while "+" not in (echostr := ref_encrypt(AES_KEY, CORP, b"42")):
        pass
    query = "&".join(f"{k}={v}" for k, v in {**server.signed(echostr), "echostr": echostr}.items())
    answer = await server.http.get(f"{PATH}?{query}")
    assert (answer.status_code, answer.content) == (200, b"42")


async def test_url_verification_refuses_bad_signatures_and_other_corps(server: Server) -> None:
    echostr = ref_encrypt(AES_KEY, CORP, b"1")
    params = {**server.signed(echostr), "echostr": echostr}
    for bad in (
        {**params, "msg_signature": "0" * 40},
        {**params, "nonce": "other"},
        {k: v for k, v in params.items() if k != "echostr"},
    ):
        assert (await server.http.get(PATH, params=bad)).status_code in (400, 403)
    other = ref_encrypt(AES_KEY, "ww_other", b"1")
    answer = await server.http.get(PATH, params={**server.signed(other), "echostr": other})
    assert answer.status_code == 403


async def test_a_message_is_stored_before_the_empty_200(server: Server) -> None:
    answer = await server.post(text("7001", "/teams"))
    assert (answer.status_code, answer.content) == (200, b"")
    assert await server.store.keys() == ["msg:7001"]


async def test_retries_are_stored_once(server: Server) -> None:
    for _ in range(3):  # WeCom retries what it got no 200 for within 5 s
        assert (await server.post(text("7002"))).status_code == 200
    assert await server.post(text("7003"))
    assert await server.store.keys() == ["msg:7002", "msg:7003"]


async def test_refused_callbacks_are_logged_and_never_stored(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.channels.wecom.callback")
    encrypt = ref_encrypt(AES_KEY, CORP, text("8001"))
    envelope = ref_envelope(CORP, "1", encrypt)
    good = server.signed(encrypt)
    cases = {
        "bad signature": (403, {**good, "msg_signature": "f" * 40}, envelope),
        "replay": (403, server.signed(encrypt, ts=int(time.time()) - 301), envelope),
        "no timestamp": (403, {**good, "timestamp": ""}, envelope),
        "not xml": (400, good, b"hello"),
        "no Encrypt": (400, good, b"<xml><ToUserName>x</ToUserName></xml>"),
    }
    for name, (status, params, body) in cases.items():
        answer = await server.http.post(PATH, params=params, content=body)
        assert answer.status_code == status, name
    assert (await server.post(text("8002"), corp="ww_other")).status_code == 403
    too_big = await server.http.post(PATH, params=good, content=b"<xml>" + b" " * MAX_BODY)
    assert too_big.status_code == 413
    assert await server.store.keys() == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(cases) + 2
    assert all(TOKEN not in r.getMessage() for r in warnings)


async def test_ignored_events_are_answered_not_stored(server: Server) -> None:
    enter = (
        f"<xml><ToUserName>{CORP}</ToUserName><FromUserName>lisi</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType>"
        "<Event>enter_agent</Event><AgentID>1</AgentID></xml>"
    ).encode()
    assert (await server.post(enter)).status_code == 200
    assert await server.store.keys() == []


async def test_a_store_failure_is_not_answered_200(tmp_path: Path) -> None:
    async def broken(message: Message) -> bool:
        raise OSError("disk full")

    runner = web.AppRunner(callback_app(CallbackCrypto(TOKEN, AES_KEY, CORP), broken))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            encrypt = ref_encrypt(AES_KEY, CORP, text("9001"))
            stamp = str(int(time.time()))
            params = {
                "msg_signature": ref_signature(TOKEN, stamp, "n", encrypt),
                "timestamp": stamp,
                "nonce": "n",
            }
            answer = await http.post(PATH, params=params, content=ref_envelope(CORP, "1", encrypt))
            assert answer.status_code == 500  # WeCom will retry it
    finally:
        await runner.cleanup()
