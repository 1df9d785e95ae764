"""Fixtures: the fake WeCom server, the bot's API client on it, the bot's callback route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.channels.simulator.fakewecom import FakeWeCom
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.callback import PATH, callback_app
from bot.channels.wecom.crypto import CallbackCrypto
from tests.wecom.store import SqliteStore


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as server:
        server.add_department(2, "科技工信服务一米团")
        server.add_department(3, "工信局", parent=2)
        server.add_member("zhangsan", "张三", [2])
        server.add_member("lisi", "李四", [2])
        server.add_member("wangwu", "王五", [3])
        server.add_member("zhaoliu", "赵六", [1])
        server.add_tag(10, "金融服务一米团", ["zhaoliu", "wangwu"], [3])
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(fake: FakeWeCom, clock: Clock) -> AsyncIterator[WeComClient]:
    async with WeComClient(
        fake.corp_id,
        fake.secret,
        agent_id=fake.agent_id,
        base_url=fake.base_url,
        timeout=0.5,
        clock=clock,
    ) as api:
        yield api


@pytest.fixture
async def inbox(fake: FakeWeCom, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """The bot's callback route on 127.0.0.1, storing into SQLite; the fake posts to it."""
    store = await SqliteStore.open(tmp_path / "inbox.db")
    crypto = CallbackCrypto(fake.token, fake.aes_key, fake.corp_id, clock=fake.now)
    runner = web.AppRunner(callback_app(crypto, store))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.callback_url = f"http://127.0.0.1:{runner.addresses[0][1]}{PATH}"
    yield store
    await runner.cleanup()
    await store.close()
