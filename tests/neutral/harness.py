"""A channel-neutral world: the real Workflow, services and delivery loop on a real SQLite file,
with a recording Sender and group membership in memory. Imports no chat platform, so every
channel (Telegram, WeCom) is held to the same story.

Each scenario also runs on WeCom (tests/neutral/conftest.py): ``on_wecom`` names a started fake
WeCom server, and the world's sender is then the real WeComSender delivering into it
(tests/neutral/wecomworld.py), what each chat shows read back from the fake."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.classify.classifier import get_classifier
from bot.config import Settings
from bot.core.ports import Actor, Incoming
from bot.delivery.outbox import ChannelLimits, Unreachable
from bot.render import markup
from bot.render.keyboards import Reply, decode
from bot.services import Services, close_services, open_services

CHANNEL = "test"
# A started FakeWeCom while a scenario runs on WeCom (set by tests/neutral/conftest.py).
on_wecom: Any = None
TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 27, 9, 0, tzinfo=TZ)  # a Friday morning, office hours


class Clock:
    """A clock the scenario moves by hand."""

    def __init__(self) -> None:
        self.current = START

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Sent:
    """One message as a recipient would see it: plain text, buttons by label and data."""

    chat: str
    id: str
    text: str
    buttons: list[tuple[str, str]]


class RecordingSender:
    """A Sender that records what each chat would show (markup rendered as plain text)."""

    limits = ChannelLimits(group_limit=1000, group_period=60.0, group_burst=1000)

    def __init__(self, groups: set[str]) -> None:
        self.groups = groups
        self.sent: list[Sent] = []
        self.blocked: set[str] = set()
        self.raw: list[str] = []  # texts exactly as the workflow stored them

    def is_group(self, chat_id: str) -> bool:
        return chat_id in self.groups

    def _record(self, chat_id: str, text: str, buttons: list[list[dict[str, str]]] | None) -> str:
        if chat_id in self.blocked:
            raise Unreachable("blocked")
        self.raw.append(text)
        flat = [
            (b["text"], b.get("data") or b.get("url", "")) for row in buttons or [] for b in row
        ]
        sent = Sent(chat_id, str(len(self.sent) + 1), markup.plain(text), flat)
        self.sent.append(sent)
        return sent.id

    async def send_text(
        self,
        chat_id: str,
        text: str,
        buttons: list[list[dict[str, str]]] | None,
        *,
        reply_to: str | None = None,
        force_reply: bool = False,
    ) -> str:
        return self._record(chat_id, text, buttons)

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: list[list[dict[str, str]]] | None
    ) -> None:
        for sent in self.sent:
            if sent.chat == chat_id and sent.id == message_id:
                sent.text = markup.plain(text)
                sent.buttons = [
                    (b["text"], b.get("data") or b.get("url", ""))
                    for row in buttons or []
                    for b in row
                ]

    async def send_media(self, chat_id: str, media: str, file_id: str, caption: str | None) -> str:
        return self._record(chat_id, f"[{media}] {caption or ''}", None)

    async def send_upload(
        self, chat_id: str, filename: str, data: bytes, caption: str | None, *, photo: bool
    ) -> str:
        return self._record(chat_id, f"[file {filename}] {caption or ''}", None)

    def chat(self, chat_id: str) -> list[Sent]:
        return [s for s in self.sent if s.chat == chat_id]


@dataclass
class Members:
    """Who is in which group."""

    groups: dict[str, set[str]] = field(default_factory=dict)

    async def is_member(self, chat_id: str, user_id: str) -> bool:
        return user_id in self.groups.get(chat_id, set())


def person(name: str, *, admin: bool = False) -> Actor:
    """Someone in their private chat with the bot."""
    ident = f"{CHANNEL}:{name}"
    return Actor(id=ident, name=name, chat_id=ident, private=True, is_admin=admin)


def in_group(actor: Actor, group: str) -> Actor:
    """The same person acting in a group."""
    return Actor(
        id=actor.id, name=actor.name, chat_id=group, private=False, is_admin=actor.is_admin
    )


def button(replies: list[Reply] | Sent, label: str) -> tuple[str, int, str]:
    """(action, ticket id, argument) of the button whose label contains `label` (in replies, or
    in a sent message: a Sent, or the WeCom world's view of one)."""
    if not isinstance(replies, list):
        found = [data for text, data in replies.buttons if label in text]
    else:
        found = [b.data for r in replies for row in r.buttons or [] for b in row if label in b.text]
    assert found and found[0], f"no button {label!r}"
    callback = decode(found[0])
    return callback.action, callback.ticket_id, callback.arg


class World:
    """The services of one deployment on the neutral channel, and the people in it."""

    TECH = f"{CHANNEL}:group-tech"
    COORD = f"{CHANNEL}:group-coord"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_path=folder / "yimi.db", outbox_poll_seconds=0.05
        )
        self.clock = Clock()
        self.members = Members()
        self.sender: Any = RecordingSender({self.TECH, self.COORD})
        if on_wecom is not None:
            from tests.neutral.wecomworld import WeComWorldSender

            self.sender = WeComWorldSender(on_wecom, {self.TECH, self.COORD}, lambda: self.members)
        self.services: Services | None = None
        self.msg = 0

    @property
    def s(self) -> Services:
        assert self.services is not None
        return self.services

    async def open(self) -> None:
        self.services = await open_services(
            self.settings,
            self.clock,
            get_classifier(),
            {CHANNEL: self.sender},
            {CHANNEL: self.members},
        )
        if on_wecom is not None:
            await self.sender.attach(self.services.db, self.clock)

    async def close(self) -> None:
        if on_wecom is not None:
            await self.sender.detach()
        if self.services is not None:
            await close_services(self.services)
            self.services = None

    async def flush(self) -> None:
        while await self.s.delivery.run_once():
            pass

    def incoming(self, text: str = "", **kw: object) -> Incoming:
        self.msg += 1
        return Incoming(message_id=str(self.msg), text=text, **kw)  # type: ignore[arg-type]

    async def say(self, actor: Actor, text: str) -> list[Reply]:
        if actor.private:
            return await self.s.workflow.private_message(actor, self.incoming(text))
        return await self.s.workflow.group_message(actor, self.incoming(text))

    def receipt(self, firm: Actor) -> str:
        """The firm's latest receipt (✅ 已提交 …)."""
        found = [s.text for s in self.sender.chat(firm.id) if "已提交" in s.text]
        assert found, "no receipt"
        return found[-1]

    async def register(self, firm: Actor, enterprise: str, contact: str, phone: str) -> None:
        w = self.s.workflow
        await w.start(firm)
        for text in (enterprise, contact, phone):
            await w.private_message(firm, self.incoming(text))
        await w.registration_input(firm, town_index=0)
        await w.registration_input(firm, skip=True)

    async def setup_groups(self, admin: Actor, member: Actor, coordinator: Actor) -> None:
        self.members.groups = {self.TECH: {member.id}, self.COORD: {coordinator.id}}
        await self.s.workflow.bind(in_group(admin, self.TECH), "科技工信群", "tech_industry")
        await self.s.workflow.bind(in_group(admin, self.COORD), "专班群", "coordinator")

    @classmethod
    async def staffed(cls, folder: Path) -> World:
        """An open world whose admin bound the tech team (member wang) and the coordinators
        (chen); wang has started the bot as staff."""
        w = cls(folder)
        await w.open()
        member = person("wang")
        await w.setup_groups(person("admin", admin=True), member, person("chen"))
        await w.s.workflow.start(member, "staff")
        return w


NUMBER = re.compile(r"YM-\d{8}-\d{4}")


async def full_loop(folder: Path) -> dict[str, object]:
    """The whole ticket loop on the neutral channel; returns what each person saw (for the
    test that runs it in a process with no chat platform loaded)."""
    w = World(folder)
    await w.open()
    try:
        admin, member = person("admin", admin=True), person("wang")
        coord, firm = person("chen"), person("zhang")
        await w.setup_groups(admin, member, coord)
        await w.s.workflow.start(member, "staff")
        await w.register(firm, "宏远铸造厂", "张伟", "13812345678")
        proposal = await w.say(firm, "厂里变压器老是跳闸，生产线停了")
        _, draft, _ = button(proposal, "确认")
        await w.s.workflow.confirm(firm, draft)
        await w.flush()
        receipt = w.receipt(firm)
        card = w.sender.chat(w.TECH)[-1]
        _, ticket, _ = button(card, "签收")
        await w.s.workflow.claim(in_group(member, w.TECH), ticket)
        await w.flush()
        details = w.sender.chat(member.id)[-1]
        await w.s.workflow.ask_resolve(in_group(member, w.TECH), ticket)
        await w.say(in_group(member, w.TECH), "已协调电力公司更换变压器")
        await w.flush()
        result = w.sender.chat(firm.id)[-1]
        await w.s.workflow.rate(firm, ticket, "satisfied")
        await w.flush()
        async with w.s.db.read() as repo:
            final = await repo.tickets.get_ticket(ticket)
        assert final is not None
        return {
            "receipt": receipt,
            "card": card.text,
            "card_after": w.sender.chat(w.TECH)[0].text,
            "details": details.text,
            "result": result.text,
            "state": final.state.value,
        }
    finally:
        await w.close()
