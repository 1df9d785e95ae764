"""Updates by webhook (TELEGRAM_WEBHOOK_URL): the real application behind its own web server,
the fake Bot API posting updates to it as Telegram does. A request without the secret token,
or with another, is refused with 403, logged and never handled; the real ones are stored and
handled (on SQLite by the one process, on PostgreSQL by the shared inbox)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr, ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import burst as bench

from bot.channels.telegram.app import build_application
from bot.channels.telegram.shared import serve
from bot.channels.telegram.webhook import SECRET_HEADER
from bot.config import Settings
from bot.storage.db import Database

SECRET = "the-webhook-secret_1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def inbox_rows(db_path: Path, url: str | None) -> int:
    db = await Database.at(db_path, url)
    try:
        async with db.read() as repo:
            rows = await repo.conn.execute_fetchall("SELECT COUNT(*) FROM inbox")
    finally:
        await db.close()
    return int(rows[0][0])


async def test_updates_by_webhook_need_the_secret_and_are_handled(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    firm = bench.FIRM0
    db_path = tmp_path / "webhook.db"
    url = Settings(_env_file=None).database_dsn  # type: ignore[call-arg]
    if url:
        monkey_url = url
        bench._PG_DATABASES[db_path] = monkey_url
        bench.PG_SERVER = object()  # type: ignore[assignment]  # url_for reads the mapping
    try:
        await bench.seed(db_path, [firm])
        api = bench.world(0.0, False, [firm])
        await api.start()
        port = free_port()
        hook = f"http://127.0.0.1:{port}/telegram/webhook"
        settings = bench.settings_for(api, db_path).model_copy(
            update={
                "telegram_webhook_url": hook,
                "telegram_webhook_secret": SecretStr(SECRET),
                "web_port": port,
            }
        )
        app = build_application(settings, shared=url is not None)
        stop = asyncio.Event()
        running = asyncio.create_task(serve(app, settings, stop=stop))
        try:
            while not api.webhook:  # the leader set the webhook, with the secret
                await asyncio.sleep(0.05)
            assert api.webhook["url"] == hook and api.webhook["secret_token"] == SECRET

            forged = {
                "update_id": 999_001,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": firm, "type": "private"},
                    "from": {"id": firm, "is_bot": False, "first_name": "x"},
                    "text": "伪造的消息",
                },
            }
            caplog.set_level(logging.WARNING, "bot.channels.telegram.webhook")
            async with aiohttp.ClientSession() as session:
                for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"}):
                    async with session.post(hook, data=json.dumps(forged), headers=headers) as r:
                        assert r.status == 403
            refusals = [r for r in caplog.records if "refused (403)" in r.getMessage()]
            assert len(refusals) == 3
            assert await inbox_rows(db_path, url) == 0  # never stored, never handled

            api.send_text(firm, firm, "厂里变压器老是跳闸，停电影响生产")
            reply = await api.wait_for_message(firm, "确认提交", timeout=30)
            assert reply
            assert await inbox_rows(db_path, url) == 1
            assert [status for _, _, status in api.webhook_posts] == [200]
            assert "伪造" not in json.dumps(api.chat_messages(firm), ensure_ascii=False)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await running
            await api.stop()
    finally:
        bench._PG_DATABASES.pop(db_path, None)
        bench.PG_SERVER = None


def test_a_webhook_needs_a_well_formed_secret() -> None:
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    assert plain.webhook() is None  # long polling
    bare = Settings(_env_file=None, telegram_webhook_url="https://bot.example.cn/telegram/webhook")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        bare.webhook()
    with pytest.raises(ValidationError, match="1-256"):
        Settings(_env_file=None, telegram_webhook_secret="with spaces!")  # type: ignore[call-arg]
    good = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_webhook_url="https://bot.example.cn/telegram/webhook",
        telegram_webhook_secret=SecretStr(SECRET),
    )
    assert good.webhook() == ("https://bot.example.cn/telegram/webhook", SECRET)
