"""Firms on personal WeChat through the 微信客服 account: messages pulled with kf/sync_msg, menu
taps as buttons, typed commands, and which relayed message a firm's text answers (WeChat has no
reply-to)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.channels.actions import press
from bot.channels.wecom.apidata import KfMessage
from bot.channels.wecom.messages import KfMsgOrEvent
from bot.channels.wecom.render import FROM_WECOM
from bot.channels.wecom.sender import firm_id, media_ref
from bot.core.models import TicketState
from bot.core.ports import Actor, Incoming, clean
from bot.render import texts
from bot.render.keyboards import CallbackError, Reply, decode
from bot.storage.wecom import WeComRepo

if TYPE_CHECKING:
    from bot.channels.wecom.channel import WeComChannel

logger = logging.getLogger(__name__)

ANSWER_WINDOW = timedelta(hours=24)
FIRM_NAME = "微信用户"


class FirmSide:
    """What a firm sends in WeChat."""

    def __init__(self, channel: WeComChannel) -> None:
        self.channel = channel

    async def pull_kf(self, item: KfMsgOrEvent) -> None:
        """kf/sync_msg with this event's Token, from the stored cursor; each page and the
        cursor after it are stored in one transaction."""
        async with self.channel.services.db.read() as repo:
            cursor = await WeComRepo(repo).kf_cursor(item.open_kfid)
        async for batch in self.channel.client.kf_sync_all(item.token, item.open_kfid, cursor):
            now = self.channel.services.workflow.now()
            async with self.channel.services.db.tx() as repo:
                store = WeComRepo(repo)
                for kf in batch.messages:
                    if kf.origin == 3 or kf.msgtype == "event":
                        await store.store(f"kfmsg:{kf.msgid}", "KfMessage", kf.raw, now)
                await store.set_kf_cursor(item.open_kfid, batch.next_cursor, now)
        self.channel.wake.set()

    async def firm_message(self, kf: KfMessage) -> None:
        actor = Actor(
            id=firm_id(kf.external_userid),
            name=FIRM_NAME,
            chat_id=firm_id(kf.external_userid),
            private=True,
        )
        workflow = self.channel.services.workflow
        if kf.msgtype == "event":
            event = kf.raw.get("event", {})
            if isinstance(event, dict) and event.get("event_type") == "enter_session":
                # A county's own link or QR code carries scene_param=county-<code>.
                scene = str(event.get("scene_param") or "")
                scene = scene if scene.startswith("county-") else ""
                await self.channel.run_call(actor.chat_id, workflow.start(actor, scene))
            return
        await workflow.arrived(actor)
        if kf.menu_id:
            try:
                pressed = decode(kf.menu_id)
            except CallbackError:
                await self.channel.reply(actor.chat_id, [Reply(texts.STALE_BUTTON)])
                return
            await self.channel.run_call(
                actor.chat_id,
                press(self.channel.services, actor, pressed.action, pressed.ticket_id, pressed.arg),
            )
            return
        text = clean(kf.text).strip()
        if kf.msgtype == "text" and text.startswith("/"):
            await self.firm_command(actor, text, kf.msgid)
            return
        attachment = None
        if kf.media_id and kf.msgtype in FROM_WECOM:
            attachment = (FROM_WECOM[kf.msgtype], media_ref(kf.media_id))
        elif kf.msgtype != "text":
            await self.channel.reply(actor.chat_id, [Reply(texts.UNSUPPORTED_MESSAGE)])
            return
        incoming = Incoming(
            message_id=kf.msgid,
            text=text,
            attachment=attachment,
            reply_to=await self.answering(actor),
        )
        await self.channel.run_call(actor.chat_id, workflow.private_message(actor, incoming))

    async def answering(self, actor: Actor) -> str | None:
        """The relayed message a firm's text answers: WeChat has no reply-to, so a text is an
        answer to the latest message a team relayed within ANSWER_WINDOW on a ticket still
        being handled, unless the firm is writing a new report (a draft is open)."""
        async with self.channel.services.db.read() as repo:
            last = await WeComRepo(repo).last_relay(actor.chat_id)
            draft = await repo.tickets.get_draft(actor.id)
            ticket = await repo.tickets.get_ticket(last[1]) if last else None
        if last is None or draft is not None or ticket is None:
            return None
        if ticket.state not in (TicketState.IN_PROGRESS, TicketState.LONG_TERM):
            return None
        sent = datetime.fromisoformat(last[2])
        if self.channel.services.workflow.now() - sent > ANSWER_WINDOW:
            return None
        return last[0]

    async def firm_command(self, actor: Actor, text: str, msg_id: str) -> None:
        name, _, rest = text[1:].partition(" ")
        workflow = self.channel.services.workflow
        parts = rest.strip().split(maxsplit=1)
        if name == "start":
            # Only a county's link payload: a firm on WeChat is never staff.
            payload = parts[0] if parts and parts[0].startswith("county-") else ""
            call = workflow.start(actor, payload)
        elif name == "help":
            await self.channel.reply(actor.chat_id, [Reply(texts.HELP_PRIVATE)])
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
            await self.channel.reply(actor.chat_id, [Reply(texts.UNKNOWN_COMMAND)])
            return
        await self.channel.run_call(actor.chat_id, call)
