"""/healthz and /metrics over HTTP on 127.0.0.1: Telegram-only (when asked), WeCom, simulator."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot.channels.simulator.server import Simulator
from bot.channels.telegram.app import build_application
from bot.classify.classifier import get_classifier
from bot.config import Settings
from tests.conftest import FIRM_A, World
from tests.fakes import FakeClock
from tests.test_burst import POWER, confirm_queued
from tests.test_simulator_server import sim_settings


class ServedWorld(World):
    """The World, started as `yimi-bot run` starts it (post_init: delivery loop, jobs, server)."""

    async def start(self) -> None:
        self.app = build_application(
            self.settings,
            request=self.telegram,
            clock=self.clock,
            classifier=get_classifier(),
            rate_limit=False,
        )
        await self.app.initialize()
        assert self.app.post_init is not None
        await self.app.post_init(self.app)

    async def stop(self) -> None:
        if self.app is not None:
            assert self.app.post_shutdown is not None
            await self.app.post_shutdown(self.app)
            await self.app.shutdown()
            self.app = None

    @property
    def base(self) -> str:
        assert self.app is not None
        runner = self.app.bot_data["monitor_server"]
        assert isinstance(runner, web.AppRunner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture(autouse=True)
def timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def served(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ServedWorld]:
    w = ServedWorld(tmp_path, clock)
    w.settings = w.settings.model_copy(update={"health_server": True, "web_port": 0})
    await w.start()
    yield w
    await w.stop()


def sample(metrics: str, name: str, **labels: str) -> float:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name + (f"{{{inner}}}" if labels else "")) + r" ([0-9.e+-]+)$"
    found = re.search(pattern, metrics, re.MULTILINE)
    assert found, f"{name} {labels} not in metrics"
    return float(found.group(1))


async def test_healthz_and_metrics_of_a_telegram_only_bot(served: ServedWorld) -> None:
    w = served
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await confirm_queued(w, FIRM_A, "张伟", POWER)
    w.telegram.fail_next.append(("sendMessage", 429, "Too Many Requests: retry after 1", 1))
    await w.flush()
    w.clock.advance(seconds=2)
    await w.flush()
    async with httpx.AsyncClient(base_url=w.base) as client:
        for _ in range(100):  # the running delivery loop may hold the row a moment longer
            health = await client.get("/healthz")
            body = health.json()
            if body["outbox_pending"] == 0:
                break
            w.clock.advance(seconds=2)
            await asyncio.sleep(0.05)
        assert health.status_code == 200, health.text
        assert body["status"] == "ok" and body["database"] == "ok"
        assert body["delivery"] == "running" and body["outbox_pending"] == 0
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    metrics = response.text
    assert sample(metrics, "yimi_tickets", state="pending_claim", team="tech_industry") == 1
    assert sample(metrics, "yimi_outbox_messages", status="sent") > 0
    assert sample(metrics, "yimi_outbox_messages", status="pending") == 0
    assert sample(metrics, "yimi_delivery_failures_total", kind="retry_later") == 1
    assert sample(metrics, "yimi_delivery_failures_total", kind="rejected") == 0
    handled = sample(metrics, "yimi_update_handling_seconds_count", channel="telegram")
    assert handled >= 8  # /bind ×3, registration, the report and its confirmation


async def test_healthz_fails_when_delivery_stops_and_messages_wait(served: ServedWorld) -> None:
    w = served
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await w.services.delivery.stop()
    async with httpx.AsyncClient(base_url=w.base) as client:
        await confirm_queued(w, FIRM_A, "张伟", POWER)  # the card and receipt wait
        w.clock.advance(minutes=15)
        response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["delivery"] == "stopped"
    assert body["outbox_pending"] >= 1 and body["oldest_pending_seconds"] >= 900


async def test_no_server_on_telegram_unless_asked(tmp_path: Path, clock: FakeClock) -> None:
    w = ServedWorld(tmp_path, clock)
    await w.start()
    try:
        assert w.app is not None and "monitor_server" not in w.app.bot_data
    finally:
        await w.stop()


async def test_the_simulator_page_serves_healthz_and_metrics(tmp_path: Path) -> None:
    settings: Settings = sim_settings(tmp_path)
    sim = Simulator(settings, port=0)
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.url) as client:
            health = await client.get("/healthz")
            metrics = await client.get("/metrics")
        assert health.status_code == 200, health.text
        assert health.json()["delivery"] == "running"
        assert metrics.status_code == 200 and "yimi_outbox_messages" in metrics.text
    finally:
        await sim.stop()
