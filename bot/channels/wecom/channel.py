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
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.channels.actions import press
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.apidata import KfMessage, WeComError
from bot.channels.wecom.messages import AppMessage, KfMsgOrEvent, Message, TemplateCardEvent
from bot.channels.wecom.render import FROM_WECOM
from bot.channels.wecom.sender import WeComSender, firm_id, group_of, media_ref, member_id
from bot.config import WeComSettings
from bot.core.errors import YimiError
from bot.core.ids import WECOM
from bot.core.models import BINDABLE, COORDINATOR, TEAM_NAMES, TicketState, team_name
from bot.core.ports import Actor, Incoming, clean
from bot.render import texts
from bot.render.keyboards import CallbackError, Reply, decode
from bot.reporting.service import STATS_KINDS, parse_day
from bot.services import Services
from bot.storage.wecom import InboxRow, WeComRepo
from bot.workflow.outbound import enqueue, message

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_BATCH = 500
CONCURRENT_PEOPLE = 16
ANSWER_WINDOW = timedelta(hours=24)
IDLE_SECONDS = 1.0
FIRM_NAME = "微信用户"


def _team_list() -> str:
    return "\n".join(f"{team}：{team_name(team)}" for team in BINDABLE)


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
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry_at: dict[int, float] = {}
        self.handled = 0

    # -- storing -------------------------------------------------------------------------

    async def store(self, item: Message) -> bool:
        """The callback's store: durable before the 200; False for a retry already stored."""
        payload = {k: v for k, v in asdict(item).items() if k != "xml"}
        async with self.services.db.tx(urgent=True) as repo:
            new = await WeComRepo(repo).store(
                item.key, type(item).__name__, payload, self.services.workflow.now()
            )
        if new:
            self._wake.set()
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
                await asyncio.wait_for(self._wake.wait(), IDLE_SECONDS)
            self._wake.clear()

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
                await self._reply(chat, [Reply(texts.ERROR_GENERIC)])

    async def _dispatch(self, row: InboxRow) -> None:
        data: dict[str, Any] = row.payload
        if row.kind == "AppMessage":
            await self._member_message(AppMessage(**data))
        elif row.kind == "TemplateCardEvent":
            await self._member_click(TemplateCardEvent(**data))
        elif row.kind == "KfMsgOrEvent":
            await self._pull_kf(KfMsgOrEvent(**data))
        elif row.kind == "KfMessage":
            await self._firm_message(KfMessage.from_json(data))
        else:
            logger.warning("wecom item %s of unknown kind %s skipped", row.key, row.kind)

    # -- answering -----------------------------------------------------------------------

    async def _reply(self, chat_id: str, replies: list[Reply]) -> None:
        """Answers go out through the outbox, in order, after what is already queued there."""
        if not replies:
            return
        now = self.services.workflow.now()
        async with self.services.db.tx() as repo:
            for reply in replies:
                payload = message(texts.clip(reply.text, texts.MAX_TEXT), reply.buttons)
                await enqueue(repo, now, f"chat:{chat_id}", "message", payload)
        self.services.delivery.wake()

    async def _run_call(self, chat_id: str, call: Any) -> None:
        try:
            replies = await call
        except YimiError as exc:
            replies = [Reply(exc.reply)]
        await self._reply(chat_id, replies)

    # -- members -------------------------------------------------------------------------

    async def _member(self, userid: str, chat_id: str | None = None) -> Actor:
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
        actor = await self._member(item.from_user)
        await self.services.workflow.arrived(actor, staff=True)
        text = clean(item.content).strip()
        if item.kind != "text":
            await self._reply(actor.chat_id, [Reply(texts.WECOM_STAFF_ONLY)])
            return
        if text.startswith("/"):
            await self._command(actor, text, item.msg_id)
            return
        workflow = self.services.workflow
        incoming = Incoming(message_id=item.msg_id, text=text)
        team_chat = await self._awaited_in_team(actor)
        if team_chat is not None:  # the reason of a 退回 pressed on a team card
            in_team = await self._member(item.from_user, team_chat)
            await self._run_call(actor.chat_id, workflow.group_message(in_team, incoming))
            return
        if await workflow.awaited(actor) is not None:  # the result of a 办结 pressed here
            await self._run_call(actor.chat_id, workflow.complete_awaited(actor, text))
            return
        await self._reply(actor.chat_id, [Reply(texts.HELP_WECOM)])

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
        actor = await self._member(item.from_user, card.chat_id if card else None)
        await self.services.workflow.arrived(actor, staff=True)
        try:
            pressed = decode(item.event_key)
        except CallbackError:
            logger.info("stale or forged card key %r from %s", item.event_key, me)
            await self._reply(me, [Reply(texts.STALE_BUTTON)])
            return
        if card is None:
            logger.info("click on unknown card %s from %s", item.task_id, me)
            await self._reply(me, [Reply(texts.STALE_BUTTON)])
            return
        await self._run_call(
            me, press(self.services, actor, pressed.action, pressed.ticket_id, pressed.arg)
        )

    async def _in_team(self, actor: Actor) -> Actor | None:
        """The member as acting in their team's chat (coordinators' first), for the commands
        whose scope is a team: /stats, /export."""
        async with self.services.db.read() as repo:
            bindings = await repo.users.list_bindings()
        ordered = sorted(bindings, key=lambda b: b.team_id != COORDINATOR)
        for binding in ordered:
            if group_of(binding.chat_id) is not None and await self.sender.is_member(
                binding.chat_id, actor.id
            ):
                return await self._member(actor.id.partition(":")[2], binding.chat_id)
        return None

    async def _command(self, actor: Actor, text: str, msg_id: str) -> None:
        name, _, rest = text[1:].partition(" ")
        name = name.split("@")[0].lower()
        args = rest.split()
        svc = self.services
        workflow = svc.workflow
        chat = actor.chat_id
        if name in ("help", "start"):
            await self._reply(chat, [Reply(texts.HELP_WECOM)])
        elif name == "teams":
            await self._run_call(chat, workflow.teams())
        elif name == "bind":
            await self._bind(actor, args)
        elif name == "unbind":
            if len(args) != 1 or group_of(f"{WECOM}:{args[0]}") is None:
                await self._reply(chat, [Reply(texts.WECOM_UNBIND_USAGE)])
                return
            as_group = await self._member(actor.id.partition(":")[2], f"{WECOM}:{args[0]}")
            await self._run_call(chat, workflow.unbind(as_group))
        elif name in ("reply", "progress", "longterm"):
            parts = rest.strip().split(maxsplit=1)
            usage = {
                "reply": texts.REPLY_USAGE,
                "progress": texts.PROGRESS_USAGE,
                "longterm": texts.LONGTERM_USAGE,
            }[name]
            if len(parts) < 2:
                await self._reply(chat, [Reply(usage)])
                return
            number, body = parts
            if name == "reply":
                call = workflow.reply_command(actor, number, body, msg_id)
            elif name == "progress":
                call = workflow.progress(actor, number, body)
            else:
                call = svc.followup.request(actor, number, "long_term", None, body)
            await self._run_call(chat, call)
        elif name == "extend":
            parts = rest.strip().split(maxsplit=2)
            if len(parts) < 3 or not parts[1].isdigit():
                limit = svc.settings.extension_max_workdays
                await self._reply(chat, [Reply(texts.EXTEND_USAGE.format(max=limit))])
                return
            number, days, reason = parts
            await self._run_call(
                chat, svc.followup.request(actor, number, "extension", int(days), reason)
            )
        elif name == "ticket":
            if not args:
                await self._reply(chat, [Reply(texts.TICKET_USAGE)])
                return
            await self._run_call(chat, workflow.view(actor, args[0]))
        elif name == "related":
            if len(args) != 1:
                await self._reply(chat, [Reply(texts.RELATED_USAGE)])
                return
            await self._run_call(chat, workflow.related(actor, args[0]))
        elif name == "dispatch":
            if len(args) != 2:
                usage = texts.DISPATCH_USAGE.format(teams=", ".join(TEAM_NAMES))
                await self._reply(chat, [Reply(usage)])
                return
            await self._run_call(chat, workflow.dispatch_number(actor, args[0], args[1]))
        elif name in ("merge", "合并"):
            if len(args) != 2:
                await self._reply(chat, [Reply(texts.MERGE_USAGE)])
                return
            await self._run_call(chat, workflow.merge(actor, args[0], args[1]))
        elif name in ("unmerge", "撤销合并"):
            if len(args) != 1:
                await self._reply(chat, [Reply(texts.UNMERGE_USAGE)])
                return
            await self._run_call(chat, workflow.unmerge_number(actor, args[0]))
        elif name == "stats":
            kind = STATS_KINDS.get(args[0].lower() if args else "week")
            if kind is None:
                await self._reply(chat, [Reply(texts.STATS_USAGE)])
                return
            in_team = await self._in_team(actor)
            if in_team is None and not actor.is_admin:
                await self._reply(chat, [Reply(texts.WECOM_NOT_IN_TEAM)])
                return
            await self._run_call(chat, svc.reports.stats_for(in_team or actor, kind))
        elif name == "export":
            await self._export(actor, args)
        else:
            await self._reply(chat, [Reply(texts.WECOM_UNSUPPORTED_COMMAND)])

    async def _bind(self, actor: Actor, args: list[str]) -> None:
        chat = actor.chat_id
        where = f"{WECOM}:{args[1]}" if len(args) == 2 else ""
        if len(args) != 2 or group_of(where) is None or args[0].partition("@")[0] not in BINDABLE:
            if not actor.is_admin:
                await self._reply(chat, [Reply(texts.NOT_ADMIN)])
                return
            await self._reply(chat, [Reply(texts.WECOM_BIND_USAGE.format(teams=_team_list()))])
            return
        as_group = await self._member(actor.id.partition(":")[2], where)
        replies: list[Reply] = []
        try:
            replies = await self.services.workflow.bind(as_group, args[1], args[0])
            if actor.is_admin:
                members = await self.sender.members(where)
                if not members:
                    replies.append(Reply(texts.WECOM_BIND_EMPTY.format(where=args[1])))
        except YimiError as exc:
            replies = [Reply(exc.reply)]
        except WeComError as exc:
            logger.warning("members of %s could not be read: %s", where, exc)
            replies.append(Reply(texts.WECOM_BIND_EMPTY.format(where=args[1])))
        await self._reply(chat, replies)

    async def _export(self, actor: Actor, args: list[str]) -> None:
        svc = self.services
        days = [parse_day(a) for a in args[:2]]
        if len(args) > 2 or any(d is None for d in days):
            await self._reply(actor.chat_id, [Reply(texts.EXPORT_USAGE)])
            return
        start = days[0] if days else None
        end = days[1] if len(days) > 1 else None
        in_team = await self._in_team(actor) or actor
        now = svc.workflow.now()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"问题台账-{now:%Y%m%d-%H%M}.xlsx"
            try:
                _, rows = await svc.reports.export_for(in_team, path, start=start, end=end)
            except YimiError as exc:
                await self._reply(actor.chat_id, [Reply(exc.reply)])
                return
            data = path.read_bytes()
        period = f"{start or '…'} 至 {end or '…'}" if args else texts.EXPORT_ALL
        caption = texts.EXPORT_CAPTION.format(
            period=period, rows=rows, who=actor.name, at=f"{now:%Y-%m-%d %H:%M}"
        )
        payload = {"filename": path.name, "data": data.hex(), "caption": caption, "photo": False}
        async with svc.db.tx() as repo:
            await enqueue(repo, now, f"chat:{actor.chat_id}", "upload", payload)
        svc.delivery.wake()

    # -- firms on WeChat -----------------------------------------------------------------

    async def _pull_kf(self, item: KfMsgOrEvent) -> None:
        """kf/sync_msg with this event's Token, from the stored cursor; each page and the
        cursor after it are stored in one transaction."""
        async with self.services.db.read() as repo:
            cursor = await WeComRepo(repo).kf_cursor(item.open_kfid)
        async for batch in self.client.kf_sync_all(item.token, item.open_kfid, cursor):
            now = self.services.workflow.now()
            async with self.services.db.tx() as repo:
                store = WeComRepo(repo)
                for kf in batch.messages:
                    if kf.origin == 3 or kf.msgtype == "event":
                        await store.store(f"kfmsg:{kf.msgid}", "KfMessage", kf.raw, now)
                await store.set_kf_cursor(item.open_kfid, batch.next_cursor, now)
        self._wake.set()

    async def _firm_message(self, kf: KfMessage) -> None:
        actor = Actor(
            id=firm_id(kf.external_userid),
            name=FIRM_NAME,
            chat_id=firm_id(kf.external_userid),
            private=True,
        )
        workflow = self.services.workflow
        if kf.msgtype == "event":
            event = kf.raw.get("event", {})
            if isinstance(event, dict) and event.get("event_type") == "enter_session":
                # A county's own link or QR code carries scene_param=county-<code>.
                scene = str(event.get("scene_param") or "")
                scene = scene if scene.startswith("county-") else ""
                await self._run_call(actor.chat_id, workflow.start(actor, scene))
            return
        await workflow.arrived(actor)
        if kf.menu_id:
            try:
                pressed = decode(kf.menu_id)
            except CallbackError:
                await self._reply(actor.chat_id, [Reply(texts.STALE_BUTTON)])
                return
            await self._run_call(
                actor.chat_id,
                press(self.services, actor, pressed.action, pressed.ticket_id, pressed.arg),
            )
            return
        text = clean(kf.text).strip()
        if kf.msgtype == "text" and text.startswith("/"):
            await self._firm_command(actor, text, kf.msgid)
            return
        attachment = None
        if kf.media_id and kf.msgtype in FROM_WECOM:
            attachment = (FROM_WECOM[kf.msgtype], media_ref(kf.media_id))
        elif kf.msgtype != "text":
            await self._reply(actor.chat_id, [Reply(texts.UNSUPPORTED_MESSAGE)])
            return
        incoming = Incoming(
            message_id=kf.msgid,
            text=text,
            attachment=attachment,
            reply_to=await self._answering(actor),
        )
        await self._run_call(actor.chat_id, workflow.private_message(actor, incoming))

    async def _answering(self, actor: Actor) -> str | None:
        """The relayed message a firm's text answers: WeChat has no reply-to, so a text is an
        answer to the latest message a team relayed within ANSWER_WINDOW on a ticket still
        being handled, unless the firm is writing a new report (a draft is open)."""
        async with self.services.db.read() as repo:
            last = await WeComRepo(repo).last_relay(actor.chat_id)
            draft = await repo.tickets.get_draft(actor.id)
            ticket = await repo.tickets.get_ticket(last[1]) if last else None
        if last is None or draft is not None or ticket is None:
            return None
        if ticket.state not in (TicketState.IN_PROGRESS, TicketState.LONG_TERM):
            return None
        sent = datetime.fromisoformat(last[2])
        if self.services.workflow.now() - sent > ANSWER_WINDOW:
            return None
        return last[0]

    async def _firm_command(self, actor: Actor, text: str, msg_id: str) -> None:
        name, _, rest = text[1:].partition(" ")
        workflow = self.services.workflow
        parts = rest.strip().split(maxsplit=1)
        if name == "start":
            # Only a county's link payload: a firm on WeChat is never staff.
            payload = parts[0] if parts and parts[0].startswith("county-") else ""
            call = workflow.start(actor, payload)
        elif name == "help":
            await self._reply(actor.chat_id, [Reply(texts.HELP_PRIVATE)])
            return
        elif name == "my":
            call = workflow.my_tickets(actor)
        elif name == "profile":
            call = workflow.profile(actor, bool(parts) and parts[0] in ("edit", "修改"))
        elif name == "withdraw" and parts:
            call = workflow.withdraw(actor, parts[0])
        elif name == "ticket" and parts:
            call = workflow.view(actor, parts[0])
        elif name == "reply" and len(parts) == 2:
            call = workflow.reply_command(actor, parts[0], parts[1], msg_id)
        else:
            await self._reply(actor.chat_id, [Reply(texts.UNKNOWN_COMMAND)])
            return
        await self._run_call(actor.chat_id, call)
