"""The neutral world on WeCom: the scenarios' chats delivered by the real WeComSender, over HTTP,
into the fake WeCom server, and read back from what the fake holds as what each chat shows.

The scenarios speak of neutral chats (``test:group-tech``, ``test:wang``, ``test:zhang``); here
each is a WeCom chat: a team group is a department whose members are the group's members, a
person in a team (or staff) is a member's app chat, anyone else is a firm on WeChat
(微信客服). The workflow's ids stay neutral; only delivery goes through WeCom. What a chat
shows is read from the fake at the moment a scenario looks (a card updated in WeCom shows its
new text), so a scenario's assertions hold against what members and firms really received.

The 48-hour window and the 30-a-minute cap are the WeCom edge suite's (tests/wecom/): the firm
counts as in conversation for each message sent to it, and the member cap is off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from bot.channels.simulator.fakewecom import FakeWeCom
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.apidata import SendResult
from bot.channels.wecom.sender import WECOM_LIMITS, WeComSender
from bot.core.ids import raw_of
from bot.core.ports import Clock
from bot.delivery.outbox import Unreachable
from bot.storage.db import Database

# What one send (or edit) of the adapter produced in WeCom: ("app", msgid) or ("kf", msgid).
Ref = tuple[str, str]
_captured: ContextVar[list[Ref] | None] = ContextVar("captured", default=None)


def _note(kind: str, msgid: str) -> None:
    refs = _captured.get()
    if refs is not None:
        refs.append((kind, msgid))


class NotingClient(WeComClient):
    """The real client; it also notes the msgid of each message it sent for the send that
    asked (a context variable, so concurrent chats do not mix)."""

    async def _message(self, touser: Sequence[str], msgtype: str, content: Any) -> SendResult:
        sent = await super()._message(touser, msgtype, content)
        _note("app", sent.msgid)
        return sent

    async def _kf_send(
        self, touser: str, open_kfid: str, msgtype: str, content: Any, msgid: str | None
    ) -> str:
        sent = await super()._kf_send(touser, open_kfid, msgtype, content, msgid)
        _note("kf", sent)
        return sent


@dataclass
class WeComSent:
    """One message as its chat shows it now, read from the fake WeCom server."""

    fake: FakeWeCom
    chat: str
    id: str
    ops: list[list[Ref]] = field(default_factory=list)  # the send, then edits that sent anew

    def _refs(self) -> list[Ref]:
        return self.ops[-1] if self.ops else []

    def _views(self) -> list[tuple[str, dict[str, Any]]]:
        """(msgtype, content) of each message of the latest op, as WeCom shows it now."""
        out = []
        for kind, msgid in self._refs():
            if kind == "app":
                card = self.fake.cards.get(msgid)
                if card is not None:
                    view = next(iter(card.views.values()))
                    out.append((view.msgtype, view.content))
                    continue
                for chat in self.fake.chats.values():
                    found = [m for m in chat if m.msgid == msgid]
                    if found:
                        out.append((found[0].msgtype, found[0].content))
                        break
            else:
                for customer in self.fake.customers.values():
                    got = [m for m in customer.received if m["msgid"] == msgid]
                    if got:
                        out.append((str(got[0]["msgtype"]), got[0][got[0]["msgtype"]]))
                        break
        return out

    @property
    def text(self) -> str:
        parts = []
        for msgtype, content in self._views():
            if msgtype in ("text", "markdown"):
                parts.append(str(content.get("content", "")))
            elif msgtype == "template_card":
                lines = [
                    content.get("main_title", {}).get("title", ""),
                    content.get("sub_title_text", ""),
                    content.get("replace_button", {}).get("text", ""),
                ]
                parts.append("\n".join(str(line) for line in lines if line))
            elif msgtype == "msgmenu":
                parts.append(str(content.get("head_content", "")))
            else:
                parts.append(f"[{msgtype}]")
        return "\n".join(p for p in parts if p)

    @property
    def buttons(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for msgtype, content in self._views():
            if msgtype == "template_card":
                out += [(str(b["text"]), str(b["key"])) for b in content.get("button_list", [])]
            elif msgtype == "msgmenu":
                out += [
                    (str(i["click"]["content"]), str(i["click"]["id"]))
                    for i in content.get("list", [])
                ]
        return out


class WeComWorldSender:
    """The outbox's Sender for the scenarios' neutral chats: each becomes a WeCom chat and goes
    through the real WeComSender; what was sent is kept as live views of the fake."""

    limits = WECOM_LIMITS

    def __init__(self, fake: FakeWeCom, groups: set[str], memberships: Callable[[], Any]) -> None:
        self.fake = fake
        self.groups = groups
        self._memberships = memberships  # the world's Members (who is in which group)
        self.sent: list[WeComSent] = []
        self.blocked: set[str] = set()
        self.raw: list[str] = []
        self.depts: dict[str, int] = {}
        self.wecom: WeComSender | None = None
        self.db: Database | None = None

    async def attach(self, db: Database, clock: Clock) -> None:
        """The real sender, on the world's database (made after the services open; a restart
        makes a new one, as a new process would)."""
        await self.detach()
        client = NotingClient(
            self.fake.corp_id,
            self.fake.secret,
            agent_id=self.fake.agent_id,
            base_url=self.fake.base_url,
            timeout=5.0,
        )
        self.db = db
        # Member lists are cached a minute of the scenario's time, as WeCom's are read.
        self.wecom = WeComSender(
            client, db, clock, self.fake.open_kfid, monotonic=lambda: clock.now().timestamp()
        )

    async def detach(self) -> None:
        if self.wecom is not None:
            await self.wecom.client.aclose()
            self.wecom = None

    # -- neutral chats as WeCom chats ----------------------------------------------------

    async def _org(self) -> None:
        """The fake's departments and members as the world's groups and staff are now."""
        groups: dict[str, set[str]] = self._memberships().groups
        for chat in sorted(set(groups) | self.groups):
            if chat not in self.depts:
                self.depts[chat] = 2 + len(self.depts)
                self.fake.add_department(self.depts[chat], raw_of(chat))
        placed: dict[str, list[int]] = {}
        for chat, people in groups.items():
            for person in people:
                placed.setdefault(person, []).append(self.depts[chat])
        for person, depts in placed.items():
            self.fake.add_member(raw_of(person), raw_of(person), sorted(depts))

    async def _target(self, chat_id: str) -> str:
        await self._org()
        if chat_id in self.depts:
            return f"wecom:dept:{self.depts[chat_id]}"
        name = raw_of(chat_id)
        if name not in self.fake.members:  # staff outside every team group: a member too
            assert self.db is not None
            async with self.db.read() as repo:
                user = await repo.users.get_user(chat_id)
            if user is not None and user.is_staff:
                self.fake.add_member(name, name, [1])
        if name in self.fake.members:
            return f"wecom:{name}"
        customer = self.fake.customers.get(name) or self.fake.add_customer(name)
        customer.last_message_at, customer.sent_since = self.fake.now(), 0  # in conversation
        return f"wxkf:{name}"

    def is_group(self, chat_id: str) -> bool:
        return chat_id in self.groups

    def _sender(self) -> WeComSender:
        assert self.wecom is not None, "attach() first"
        return self.wecom

    async def _send(self, chat_id: str, text: str, send: Callable[[str], Awaitable[str]]) -> str:
        if chat_id in self.blocked:
            raise Unreachable("blocked")
        self.raw.append(text)
        refs: list[Ref] = []
        token = _captured.set(refs)
        try:
            message_id = await send(await self._target(chat_id))
        finally:
            _captured.reset(token)
        self.sent.append(WeComSent(self.fake, chat_id, message_id, [refs]))
        return message_id

    async def send_text(
        self,
        chat_id: str,
        text: str,
        buttons: list[list[dict[str, str]]] | None,
        *,
        reply_to: str | None = None,
        force_reply: bool = False,
    ) -> str:
        return await self._send(
            chat_id, text, lambda target: self._sender().send_text(target, text, buttons)
        )

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: list[list[dict[str, str]]] | None
    ) -> None:
        refs: list[Ref] = []
        token = _captured.set(refs)
        try:
            target = await self._target(chat_id)
            await self._sender().edit_text(target, message_id, text, buttons)
        finally:
            _captured.reset(token)
        if refs:  # WeCom refused the update: the card was sent anew
            for sent in self.sent:
                if sent.chat == chat_id and sent.id == message_id:
                    sent.ops.append(refs)

    async def send_media(self, chat_id: str, media: str, file_id: str, caption: str | None) -> str:
        return await self._send(
            chat_id,
            caption or "",
            lambda target: self._sender().send_media(target, media, file_id, caption),
        )

    async def send_upload(
        self, chat_id: str, filename: str, data: bytes, caption: str | None, *, photo: bool
    ) -> str:
        return await self._send(
            chat_id,
            caption or "",
            lambda target: self._sender().send_upload(target, filename, data, caption, photo=photo),
        )

    def chat(self, chat_id: str) -> list[WeComSent]:
        return [s for s in self.sent if s.chat == chat_id]
