"""Fixtures: the real Application over a fake transport, a real SQLite file, a test clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from telegram import Update
from telegram.ext import Application

from bot.channels.telegram.app import build_application, start_services, stop_services
from bot.classify.classifier import get_classifier
from bot.config import Settings
from bot.services import Services
from tests.fakes import TZ, FakeClock, FakeTelegram, Sent, Updates
from tests.postgres import POSTGRES

ADMIN = 900
FIRM_A, FIRM_A2, FIRM_B = 101, 102, 201
MEMBER_TECH, MEMBER_TECH2, MEMBER_FIN, COORD, OUTSIDER = 301, 302, 401, 501, 601
TECH_GROUP, FIN_GROUP, COORD_GROUP, STRAY_GROUP = -1001, -1002, -1009, -1077


class World:
    """Two firms, two teams, a coordinators' group, an admin; drives the real Application."""

    def __init__(self, tmp_path: Path, clock: FakeClock) -> None:
        self.tmp_path = tmp_path
        self.clock = clock
        self.telegram = FakeTelegram()
        self.updates = Updates(self.telegram)
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            bot_token="123456:TEST-TOKEN",
            database_path=tmp_path / "yimi.db",
            admin_ids=[ADMIN],
            towns=["城关镇", "大营镇", "尉氏县产业集聚区"],
        )
        self.app: Application | None = None  # type: ignore[type-arg]
        for chat, members in {
            TECH_GROUP: {MEMBER_TECH, MEMBER_TECH2, ADMIN},
            FIN_GROUP: {MEMBER_FIN, ADMIN},
            COORD_GROUP: {COORD, ADMIN},
            STRAY_GROUP: {OUTSIDER},
        }.items():
            self.telegram.members[chat] = set(members)

    @property
    def services(self) -> Services:
        assert self.app is not None
        found = self.app.bot_data["services"]
        assert isinstance(found, Services)
        return found

    async def start(self) -> None:
        self.app = build_application(
            self.settings, request=self.telegram, clock=self.clock, rate_limit=False
        )
        await self.app.initialize()
        await start_services(
            self.app, self.settings, self.clock, get_classifier(), start_delivery=False
        )

    async def stop(self) -> None:
        if self.app is not None:
            await stop_services(self.app)
            await self.app.shutdown()
            self.app = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def process(self, update: dict[str, Any]) -> None:
        assert self.app is not None
        await self.app.process_update(Update.de_json(update, self.app.bot))
        await self.flush()

    async def flush(self) -> None:
        """Deliver the outbox until nothing is due."""
        for _ in range(50):
            if await self.services.delivery.run_once() == 0:
                return
        raise AssertionError("outbox did not drain")

    async def say(
        self, chat: int, user: int, name: str, text: str | None = None, **kw: Any
    ) -> None:
        await self.process(self.updates.message(chat, user, name, text, **kw))

    async def press(
        self, chat: int, user: int, name: str, message: Sent, label: str, **kw: Any
    ) -> None:
        await self.process(
            self.updates.callback(chat, user, name, message, message.data(label), **kw)
        )

    async def bind_all(self) -> None:
        await self.say(TECH_GROUP, ADMIN, "管理员", "/bind tech_industry")
        await self.say(FIN_GROUP, ADMIN, "管理员", "/bind finance")
        await self.say(COORD_GROUP, ADMIN, "管理员", "/bind coordinator")

    async def register(
        self, user: int, enterprise: str, contact: str, phone: str, town_label: str = "城关镇"
    ) -> None:
        await self.say(user, user, contact, "/start")
        await self.say(user, user, contact, enterprise)
        await self.say(user, user, contact, contact)
        await self.say(user, user, contact, phone)
        await self.press(user, user, contact, self.telegram.last(user), town_label)
        await self.press(user, user, contact, self.telegram.last(user), "跳过")


@pytest.fixture
def clock() -> FakeClock:
    # A Friday morning in working hours.
    return FakeClock(datetime(2026, 11, 27, 9, 0, tzinfo=TZ))


@pytest.fixture
async def world(tmp_path: Path, clock: FakeClock) -> AsyncIterator[World]:
    w = World(tmp_path, clock)
    await w.start()
    yield w
    await w.stop()


@pytest.fixture(scope="session", autouse=True)
def _postgres_server() -> Iterator[None]:
    """Stops the run's PostgreSQL server (started by the first test that asks) at the end."""
    yield
    POSTGRES.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test on both backends: on PostgreSQL, DATABASE_URL names a new database (the
    Settings every part of the bot reads, as in a deployment)."""
    if request.param == "postgresql":
        monkeypatch.setenv("DATABASE_URL", await POSTGRES.fresh_database())
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    return str(request.param)
