"""Attachments across channels, on both fakes over HTTP: a firm on Telegram and its team on WeCom,
and a firm on WeChat and its team on Telegram. The claimer gets the file itself (downloaded on
one platform, uploaded to the other); a file over a platform's limit becomes a note; each
attachment is in the ticket's event log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.channels.simulator.fakeapi import FakeBotAPI
from bot.channels.simulator.fakewecom import FakeWeCom
from bot.channels.telegram.sender import TelegramSender
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.sender import WeComSender, media_ref
from bot.classify.classifier import get_classifier
from bot.config import Settings
from bot.core.ids import TELEGRAM, WECOM, WXKF
from bot.core.ports import Actor, Incoming
from bot.services import Services, add_channel, close_services, open_services
from tests.neutral.harness import Clock, button

pytestmark = pytest.mark.usefixtures("backend")

TG_FIRM, TG_TEAM, TG_MEMBER = 42, -100500, 7
REPORT = "厂里变压器老是跳闸，生产线停了"
PICTURE = b"\xff\xd8\xff\xe0 a JPEG from the workshop" * 100


@dataclass
class Both:
    """One county with Telegram and WeCom configured on one database."""

    services: Services
    tg: FakeBotAPI
    wc: FakeWeCom
    clock: Clock
    n: int = 0

    def incoming(self, text: str = "", attachment: tuple[str, str] | None = None) -> Incoming:
        self.n += 1
        return Incoming(message_id=str(self.n), text=text, attachment=attachment)

    async def flush(self) -> None:
        while await self.services.delivery.run_once():
            pass

    async def report(self, firm: Actor, attachment: tuple[str, str]) -> int:
        """The firm registers, reports with the attachment, confirms: the ticket id."""
        w = self.services.workflow
        await w.start(firm)
        for text in ("宏远铸造厂", "张伟", "13812345678"):
            await w.private_message(firm, self.incoming(text))
        await w.registration_input(firm, town_index=0)
        await w.registration_input(firm, skip=True)
        await w.private_message(firm, self.incoming("现场照片", attachment))
        proposal = await w.private_message(firm, self.incoming(REPORT))
        _, draft, _ = button(proposal, "确认")
        await w.confirm(firm, draft)
        await self.flush()
        return draft

    async def claim(self, member: Actor, team_chat: str, ticket: int) -> None:
        await self.services.workflow.start(member, "staff")
        acting = Actor(id=member.id, name=member.name, chat_id=team_chat, private=False)
        await self.services.workflow.claim(acting, ticket)
        await self.flush()

    async def attachment_events(self, ticket: int) -> list[dict[str, object]]:
        async with self.services.db.read() as repo:
            events = await repo.tickets.events(ticket)
        return [e.payload for e in events if e.action == "attachment"]


def private(ident: str, name: str) -> Actor:
    return Actor(id=ident, name=name, chat_id=ident, private=True)


@pytest.fixture
async def both(tmp_path: Path) -> AsyncIterator[Both]:
    async with FakeBotAPI() as tg, FakeWeCom(enforce_limits=False) as wc:
        tg.add_user(TG_FIRM, "张", "伟")
        tg.add_user(TG_MEMBER, "李", "四")
        tg.add_group(TG_TEAM, "科技工信", [TG_MEMBER])
        wc.add_department(2, "科技工信服务一米团")
        wc.add_member("zhangsan", "张三", [2])
        wc.add_customer("wmFirm01", "王经理")
        clock = Clock()
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_path=tmp_path / "yimi.db", outbox_poll_seconds=0.05
        )
        request = HTTPXRequest(read_timeout=5.0)
        async with Bot(
            tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url, request=request
        ) as bot:
            telegram = TelegramSender(bot)
            services = await open_services(
                settings, clock, get_classifier(), {TELEGRAM: telegram}, {TELEGRAM: telegram}
            )
            client = WeComClient(
                wc.corp_id, wc.secret, agent_id=wc.agent_id, base_url=wc.base_url, timeout=5.0
            )
            wecom = WeComSender(client, services.db, clock, wc.open_kfid)
            add_channel(services, (WECOM, WXKF), wecom, wecom)
            try:
                yield Both(services, tg, wc, clock)
            finally:
                await close_services(services)
                await client.aclose()


async def bind(both: Both, chat: str) -> None:
    async with both.services.db.tx() as repo:
        await repo.users.bind(chat, "tech_industry", "科技工信", "telegram:1", both.clock.now())


def wecom_images(both: Both, userid: str) -> list[bytes]:
    return [
        both.wc.media[str(m.content["media_id"])][2]
        for m in both.wc.chats[userid]
        if m.msgtype in ("image", "file")
    ]


async def test_a_photo_from_telegram_reaches_the_wecom_claimer(both: Both) -> None:
    await bind(both, "wecom:dept:2")
    photo = both.tg.store_file(PICTURE, "photos", ".jpg", "image/jpeg")
    ticket = await both.report(private(f"telegram:{TG_FIRM}", "张伟"), ("photo", photo.file_id))
    await both.claim(private("wecom:zhangsan", "张三"), "wecom:dept:2", ticket)
    # The bot downloaded it from Telegram (getFile) and uploaded it to WeCom (media/upload).
    assert both.tg.calls_to("getFile")
    assert wecom_images(both, "zhangsan") == [PICTURE]
    [upload] = both.wc.calls_to("media/upload")
    assert upload.body is not None and upload.body["size"] == len(PICTURE)
    [event] = await both.attachment_events(ticket)
    assert event["how"] == "forwarded" and event["to"] == "wecom:zhangsan"


async def test_a_picture_from_wechat_reaches_the_telegram_claimer(both: Both) -> None:
    await bind(both, f"telegram:{TG_TEAM}")
    media_id = both.wc.store_media("现场.jpg", "image/jpeg", PICTURE)
    firm = private("wxkf:wmFirm01", "王经理")
    ticket = await both.report(firm, ("photo", media_ref(media_id)))
    await both.claim(private(f"telegram:{TG_MEMBER}", "李四"), f"telegram:{TG_TEAM}", ticket)
    photos = [m for m in both.tg.chat_messages(TG_MEMBER) if "photo" in m]
    assert len(photos) == 1
    assert both.tg.files[photos[0]["photo"][-1]["file_id"]].data == PICTURE  # uploaded anew
    assert both.wc.calls_to("media/get")
    [event] = await both.attachment_events(ticket)
    assert event["how"] == "forwarded" and event["to"] == f"telegram:{TG_MEMBER}"


async def test_a_file_over_telegrams_download_limit_becomes_a_note(both: Both) -> None:
    await bind(both, "wecom:dept:2")
    big = both.tg.store_file(b"0" * (21 * 1024 * 1024), "documents", ".pdf", "application/pdf")
    ticket = await both.report(private(f"telegram:{TG_FIRM}", "张伟"), ("document", big.file_id))
    await both.claim(private("wecom:zhangsan", "张三"), "wecom:dept:2", ticket)
    assert wecom_images(both, "zhangsan") == []
    notes = [m.text for m in both.wc.chats["zhangsan"] if "上限" in m.text]
    assert notes and "Telegram" in notes[0] and "20 MB" in notes[0]
    [event] = await both.attachment_events(ticket)
    assert event["how"] == "too_large"


async def test_a_photo_over_wecoms_image_limit_becomes_a_note(both: Both) -> None:
    await bind(both, "wecom:dept:2")
    photo = both.tg.store_file(b"\xff" * (11 * 1024 * 1024), "photos", ".jpg", "image/jpeg")
    ticket = await both.report(private(f"telegram:{TG_FIRM}", "张伟"), ("photo", photo.file_id))
    await both.claim(private("wecom:zhangsan", "张三"), "wecom:dept:2", ticket)
    assert wecom_images(both, "zhangsan") == [] and not both.wc.calls_to("media/upload")
    notes = [m.text for m in both.wc.chats["zhangsan"] if "上限" in m.text]
    assert notes and "企业微信" in notes[0] and "10 MB" in notes[0] and "11.0 MB" in notes[0]
    [event] = await both.attachment_events(ticket)
    assert event["how"] == "too_large"
