"""The WeCom channel: what the callback stores is handled here, in order, through the workflow.

Callbacks are stored in ``wecom_inbox`` before they are answered (bot.channels.wecom.callback);
a worker then takes the stored items one by one:

- a member's message in the app chat (``wecom:<userid>``): a command, the text a 退回 or 办结
  waits for, else a note that the app is for staff;
- a click on a card button (template_card_event): the card's chat (a team ``wecom:dept:N`` or
  the member's own) is looked up by task_id and the press runs as on Telegram
  (bot.channels.actions), as the member acting in that chat; its response_code is kept so the
  card can be updated once;
- a 微信客服 announcement (kf_msg_or_event): the firm messages are pulled with kf/sync_msg and
  the event's Token, each page stored together with the cursor after it, so a restart neither
  loses nor repeats one; each firm message (``wxkf:<external_userid>``) is then handled like a
  private message on Telegram, a menu tap like a button.

An item is marked handled only after its handling returned; one that fails is tried again with
backoff, and after MAX_ATTEMPTS the user is told and the item set aside. Every answer goes
through the outbox (durable, paced, retried), never as a passive reply in the HTTP answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict
from typing import Any

from bot.channels.actions import press
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.apidata import KfMessage, WeComError
from bot.channels.wecom.firms import FirmSide
from bot.channels.wecom.messages import AppMessage, KfMsgOrEvent, Message, TemplateCardEvent
from bot.channels.wecom.sender import WeComSender, firm_id, group_of, member_id
from bot.channels.wecom.staff import StaffCommands
from bot.config import WeComSettings
from bot.core.errors import YimiError
from bot.core.ids import WECOM
from bot.core.models import COORDINATOR
from bot.core.ports import Actor, Incoming, clean
from bot.render import texts
from bot.render.keyboards import CallbackError, Reply, decode
from bot.services import Services
from bot.storage.wecom import InboxRow, WeComRepo
from bot.workflow.outbound import enqueue, message

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_BATCH = 500
CONCURRENT_PEOPLE = 16
IDLE_SECONDS = 1.0


def _who(row: InboxRow) -> str:
    """Whose item it is: each person's items are handled in order."""
    for field_name in ("from_user", "external_userid"):
        if field_name in row.payload:
            return f"{field_name}:{row.payload[field_name]}"
    return row.key


class WeComChannel:
    """Stores callbacks (`store`) and handles what was stored (`start`, or `drain` in tests)."""

    def __init__(
        self,
        services: Services,
        client: WeComClient,
        sender: WeComSender,
        settings: WeComSettings,
    ) -> None:
        self.services = services
        self.client = client
        self.sender = sender
        self.settings = settings
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry_at: dict[int, float] = {}
        self.handled = 0
        self.staff = StaffCommands(self)  # what members type in the app chat
        self.firms = FirmSide(self)  # what firms send in WeChat

    # -- storing -------------------------------------------------------------------------

    async def store(self, item: Message) -> bool:
        """The callback's store: durable before the 200; False for a retry already stored."""
        payload = {k: v for k, v in asdict(item).items() if k != "xml"}
        async with self.services.db.tx(urgent=True) as repo:
            new = await WeComRepo(repo).store(
                item.key, type(item).__name__, payload, self.services.workflow.now()
            )
        if new:
            self.wake.set()
        return new

    # -- the worker ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the worker handles stored items (started and not ended)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Handle stored items in the background until `stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="wecom inbox")

    async def stop(self) -> None:
        """Stop the worker (what is stored and not handled is handled after the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.drain()
            except Exception:  # storage failing: keep the loop, try again shortly
                logger.exception("wecom inbox could not be read")
                busy = False
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), IDLE_SECONDS)
            self.wake.clear()

    async def drain(self) -> bool:
        """Handle every stored item that is due; whether any was handled.

        Announcements of 微信客服 messages are pulled together (one kf/sync_msg run from the
        stored cursor with the newest Token answers them all). The rest run in one chain per
        person, chains side by side (API calls overlap), each person's items in order: a chain
        stops at an item that failed, so nothing of theirs overtakes it."""
        async with self.services.db.read() as repo:
            rows = await WeComRepo(repo).unhandled(limit=MAX_BATCH)
        now = asyncio.get_running_loop().time()
        due = [r for r in rows if self._retry_at.get(r.id, 0.0) <= now]
        if not due:
            return False
        announcements = [r for r in due if r.kind == "KfMsgOrEvent"]
        if announcements:
            await self._pull_all(announcements)
        chains: dict[str, list[InboxRow]] = {}
        for row in due:
            if row.kind != "KfMsgOrEvent":
                chains.setdefault(_who(row), []).append(row)
        slots = asyncio.Semaphore(CONCURRENT_PEOPLE)

        async def chain(items: list[InboxRow]) -> None:
            for item in items:
                async with slots:
                    if not await self._one(item):
                        return

        await asyncio.gather(*(chain(items) for items in chains.values()))
        return True

    async def _pull_all(self, rows: list[InboxRow]) -> None:
        by_account: dict[str, list[InboxRow]] = {}
        for row in rows:
            by_account.setdefault(str(row.payload["open_kfid"]), []).append(row)
        for items in by_account.values():
            newest = max(items, key=lambda r: int(str(r.payload.get("create_time", 0))))
            await self._one(newest, also=[r for r in items if r is not newest])

    async def _one(self, row: InboxRow, also: list[InboxRow] | None = None) -> bool:
        """Handle one item (and mark `also` with it); whether it succeeded."""
        now = self.services.workflow.now
        group = [row, *(also or [])]
        started = time.perf_counter()
        try:
            await self._dispatch(row)
        except Exception as exc:
            give_up = row.attempts + 1 >= MAX_ATTEMPTS
            logger.exception("wecom item %s failed (attempt %d)", row.key, row.attempts + 1)
            async with self.services.db.tx() as repo:
                for item in group:
                    await WeComRepo(repo).failed(item.id, repr(exc), give_up=give_up, now=now())
            delay = min(60.0, 2.0 ** (row.attempts + 1))
            for item in group:
                self._retry_at[item.id] = asyncio.get_running_loop().time() + delay
            if give_up:
                await self._tell_failed(row)
            return False
        async with self.services.db.tx() as repo:
            for item in group:
                await WeComRepo(repo).handled(item.id, now())
                self._retry_at.pop(item.id, None)
        self.handled += len(group)
        self.services.monitor.observe(WECOM, time.perf_counter() - started)
        return True

    async def _tell_failed(self, row: InboxRow) -> None:
        chat = None
        if row.kind in ("AppMessage", "TemplateCardEvent"):
            chat = member_id(str(row.payload["from_user"]))
        elif row.kind == "KfMessage":
            chat = firm_id(str(row.payload["external_userid"]))
        if chat is not None:
            with contextlib.suppress(Exception):
                await self.reply(chat, [Reply(texts.ERROR_GENERIC)])

    async def _dispatch(self, row: InboxRow) -> None:
        data: dict[str, Any] = row.payload
        if row.kind == "AppMessage":
            await self._member_message(AppMessage(**data))
        elif row.kind == "TemplateCardEvent":
            await self._member_click(TemplateCardEvent(**data))
        elif row.kind == "KfMsgOrEvent":
            await self.firms.pull_kf(KfMsgOrEvent(**data))
        elif row.kind == "KfMessage":
            await self.firms.firm_message(KfMessage.from_json(data))
        else:
            logger.warning("wecom item %s of unknown kind %s skipped", row.key, row.kind)

    # -- answering -----------------------------------------------------------------------

    async def reply(self, chat_id: str, replies: list[Reply]) -> None:
        """Answers go out through the outbox, in order, after what is already queued there."""
        if not replies:
            return
        now = self.services.workflow.now()
        async with self.services.db.tx() as repo:
            for reply in replies:
                payload = message(texts.clip(reply.text, texts.MAX_TEXT), reply.buttons)
                await enqueue(repo, now, f"chat:{chat_id}", "message", payload)
        self.services.delivery.wake()

    async def run_call(self, chat_id: str, call: Any) -> None:
        try:
            replies = await call
        except YimiError as exc:
            replies = [Reply(exc.reply)]
        await self.reply(chat_id, replies)

    # -- members -------------------------------------------------------------------------

    async def member(self, userid: str, chat_id: str | None = None) -> Actor:
        me = member_id(userid)
        name = await self._name_of(userid)
        return Actor(
            id=me,
            name=name,
            chat_id=chat_id or me,
            private=chat_id is None or chat_id == me,
            is_admin=userid in self.settings.admin_ids,
        )

    async def _name_of(self, userid: str) -> str:
        async with self.services.db.read() as repo:
            user = await repo.users.get_user(member_id(userid))
            bindings = await repo.users.list_bindings()
        if user is not None and user.display_name and user.display_name != userid:
            return user.display_name
        for binding in bindings:
            found = group_of(binding.chat_id)
            if found is None:
                continue
            with contextlib.suppress(WeComError):
                names = await self.sender.names(binding.chat_id)
                if userid in names:
                    return names[userid]
        return userid

    async def _member_message(self, item: AppMessage) -> None:
        actor = await self.member(item.from_user)
        await self.services.workflow.arrived(actor, staff=True)
        text = clean(item.content).strip()
        if item.kind != "text":
            await self.reply(actor.chat_id, [Reply(texts.WECOM_STAFF_ONLY)])
            return
        if text.startswith("/"):
            await self.staff.command(actor, text, item.msg_id)
            return
        workflow = self.services.workflow
        incoming = Incoming(message_id=item.msg_id, text=text)
        team_chat = await self._awaited_in_team(actor)
        if team_chat is not None:  # the reason of a 退回 pressed on a team card
            in_team = await self.member(item.from_user, team_chat)
            await self.run_call(actor.chat_id, workflow.group_message(in_team, incoming))
            return
        if await workflow.awaited(actor) is not None:  # the result of a 办结 pressed here
            await self.run_call(actor.chat_id, workflow.complete_awaited(actor, text))
            return
        await self.reply(actor.chat_id, [Reply(texts.HELP_WECOM)])

    async def _awaited_in_team(self, actor: Actor) -> str | None:
        async with self.services.db.read() as repo:
            user = await repo.users.get_user(actor.id)
        if user is None or not user.awaiting:
            return None
        chat = user.awaiting.split(":", 2)[2]
        return chat if group_of(chat) is not None else None

    async def _member_click(self, item: TemplateCardEvent) -> None:
        async with self.services.db.tx() as repo:
            store = WeComRepo(repo)
            card = await store.card_by_task(item.task_id)
            if card is not None and item.response_code:
                await store.set_response_code(
                    item.task_id, item.response_code, self.services.workflow.now()
                )
        me = member_id(item.from_user)
        actor = await self.member(item.from_user, card.chat_id if card else None)
        await self.services.workflow.arrived(actor, staff=True)
        try:
            pressed = decode(item.event_key)
        except CallbackError:
            logger.info("stale or forged card key %r from %s", item.event_key, me)
            await self.reply(me, [Reply(texts.STALE_BUTTON)])
            return
        if card is None:
            logger.info("click on unknown card %s from %s", item.task_id, me)
            await self.reply(me, [Reply(texts.STALE_BUTTON)])
            return
        await self.run_call(
            me, press(self.services, actor, pressed.action, pressed.ticket_id, pressed.arg)
        )

    async def in_team(self, actor: Actor) -> Actor | None:
        """The member as acting in their team's chat (coordinators' first), for the commands
        whose scope is a team: /stats, /export."""
        async with self.services.db.read() as repo:
            bindings = await repo.users.list_bindings()
        ordered = sorted(bindings, key=lambda b: b.team_id != COORDINATOR)
        for binding in ordered:
            if group_of(binding.chat_id) is not None and await self.sender.is_member(
                binding.chat_id, actor.id
            ):
                return await self.member(actor.id.partition(":")[2], binding.chat_id)
        return None
