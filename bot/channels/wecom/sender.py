"""WeCom's side of delivery and membership: the outbox's Sender for members and firms.

Chats, as qualified ids (bot.core.ids):
- ``wecom:<userid>``: a member's app chat with the 一米团 app (message/send to one user);
- ``wecom:dept:<id>`` / ``wecom:tag:<id>``: a team bound to a WeCom department or tag, this
  channel's "group": what is sent there goes to every member's app chat in one message/send,
  the members read from WeCom (user/simplelist, tag/get) so staff changes apply by themselves;
- ``wxkf:<external_userid>``: a firm on WeChat, through 微信客服 (kf/send_msg).

A text with buttons goes to members as template card(s) and to firms as msgmenu(s). The
message id the workflow links is the first card's task_id; the cards' task_ids, recipients and
response_code are kept in ``wecom_cards`` so that an edit updates every recipient's card
(update_template_card), and a card WeCom no longer updates is sent anew under the same id.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bot.channels.wecom import render
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.apidata import (
    CardStale,
    MenuItem,
    OutOfWindow,
    RetryAfter,
    Undeliverable,
    WeComError,
)
from bot.core.ids import WECOM, WXKF, channel_of, qualify, raw_of
from bot.core.ports import Clock
from bot.delivery.media import WECOM_UPLOAD, MediaFile, check_size
from bot.delivery.outbox import (
    ChannelLimits,
    NotNow,
    Rejected,
    RetryLater,
    Unreachable,
    current_row,
)
from bot.storage.db import Database
from bot.storage.wecom import CardRow, WeComRepo

logger = logging.getLogger(__name__)

# A team's messages reach every member at once (one message/send); WeCom caps 30 a minute to
# one member, so a team "group" is paced below that. No batch cards: a card has six buttons.
WECOM_LIMITS = ChannelLimits(group_limit=30, group_period=60.0, group_burst=30, batch_cards=False)
MEMBERS_TTL = 60.0
TEXT_CARD = "text-"  # task_id prefix of a card sent as plain text (no buttons): edits resend it
SHOWN_KEPT = 10_000
MEDIA_PREFIX = f"{WECOM}-media:"  # attachments sent on WeCom or WeChat: their media_id


def media_ref(media_id: str) -> str:
    """How an attachment that arrived through WeCom is kept (a file id of this channel's)."""
    return MEDIA_PREFIX + media_id


def group_of(chat_id: str) -> tuple[str, int] | None:
    """('dept' | 'tag', id) of a team chat, None for a member's own chat."""
    kind, _, number = raw_of(chat_id).partition(":")
    if channel_of(chat_id) == WECOM and kind in ("dept", "tag") and number.isdigit():
        return kind, int(number)
    return None


def kf_msgid() -> str | None:
    """The msgid of the next kf message of the outbox row being sent (None outside delivery):
    stable, so WeChat does not show a message sent again after a crash twice."""
    row = current_row.get()
    return row.next_id() if row is not None else None


def _map(exc: WeComError) -> Exception:
    if isinstance(exc, RetryAfter):
        return RetryLater(exc.seconds)
    if isinstance(exc, OutOfWindow):
        return NotNow(str(exc))
    if isinstance(exc, Undeliverable):
        return Unreachable(str(exc))
    return Rejected(str(exc))


@dataclass
class _Cached:
    at: float
    names: dict[str, str]


class WeComSender:
    """Implements bot.delivery.outbox.Sender and bot.core.ports.Membership on the WeCom API."""

    limits = WECOM_LIMITS

    def __init__(
        self,
        client: WeComClient,
        db: Database,
        clock: Clock,
        kf_id: str | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.db = db
        self.clock = clock
        self.kf_id = kf_id
        self.monotonic = monotonic
        self._members: dict[str, _Cached] = {}
        self._shown: OrderedDict[str, str] = OrderedDict()  # text card → digest of its text

    # -- who is where --------------------------------------------------------------------

    def is_group(self, chat_id: str) -> bool:
        """A team bound to a department or tag."""
        return group_of(chat_id) is not None

    async def members(self, chat_id: str) -> tuple[str, ...]:
        """The userids a chat's messages go to (a team's read from WeCom, cached a minute)."""
        if group_of(chat_id) is None:
            return (raw_of(chat_id),)
        return tuple(await self.names(chat_id))

    async def names(self, chat_id: str) -> dict[str, str]:
        """A team's members now: userid → name (read from WeCom, cached a minute)."""
        group = group_of(chat_id)
        if group is None:
            return {}
        cached = self._members.get(chat_id)
        if cached is not None and self.monotonic() - cached.at < MEMBERS_TTL:
            return cached.names
        kind, number = group
        names: dict[str, str] = {}
        if kind == "dept":
            for m in await self.client.department_members(number, fetch_child=True):
                names.setdefault(m.userid, m.name or m.userid)
        else:
            tag = await self.client.tag_members(number)
            for userid in tag.userids:
                names.setdefault(userid, userid)
            for party in tag.party_ids:
                for m in await self.client.department_members(party, fetch_child=True):
                    names.setdefault(m.userid, m.name or m.userid)
        self._members[chat_id] = _Cached(self.monotonic(), names)
        return names

    async def is_member(self, chat_id: str, user_id: str) -> bool:
        """Whether a member (``wecom:<userid>``) is in a team's department or tag now."""
        if channel_of(user_id) != WECOM:
            return False
        if group_of(chat_id) is None:
            return chat_id == user_id
        try:
            return raw_of(user_id) in await self.members(chat_id)
        except WeComError as exc:
            logger.warning("members of %s could not be read: %s", chat_id, exc)
            return False

    async def _recipients(self, chat_id: str) -> tuple[str, ...]:
        try:
            userids = await self.members(chat_id)
        except WeComError as exc:
            raise _map(exc) from exc
        if not userids:
            raise Unreachable(f"{chat_id} has no members")
        return userids

    # -- sending -------------------------------------------------------------------------

    def _kf(self) -> str:
        if not self.kf_id:
            raise Rejected("WECOM_KF_ID is not set: firms on WeChat cannot be written to")
        return self.kf_id

    async def send_text(
        self,
        chat_id: str,
        text: str,
        buttons: list[list[dict[str, str]]] | None,
        *,
        reply_to: str | None = None,
        force_reply: bool = False,
    ) -> str:
        """A text, a card (members) or a menu (firms); WeCom has no replies, so no reply_to."""
        try:
            if channel_of(chat_id) == WXKF:
                return await self._to_firm(raw_of(chat_id), text, buttons)
            userids = await self._recipients(chat_id)
            if not render.actions(buttons):
                sent = await self.client.send_text(userids, render.text_of(text))
                row = current_row.get()
                if row is not None and row.kind in ("card", "details"):
                    await self._keep_text_card(chat_id, sent.msgid, userids, text)
                return sent.msgid
            return await self._new_cards(chat_id, userids, text, buttons, message_id=None)
        except WeComError as exc:
            raise _map(exc) from exc

    async def _to_firm(
        self, external: str, text: str, buttons: list[list[dict[str, str]]] | None
    ) -> str:
        menus = render.menus(buttons)
        if not menus:
            return await self.client.kf_send_text(
                external, self._kf(), render.text_of(text), msgid=kf_msgid()
            )
        first = ""
        for index, menu in enumerate(menus):
            msgid = await self.client.kf_send_menu(
                external,
                self._kf(),
                [MenuItem(data, label) for data, label in menu],
                head=render.clip_bytes(render.text_of(text), 1024) if index == 0 else "",
                msgid=kf_msgid(),
            )
            first = first or msgid
        return first

    async def _new_cards(
        self,
        chat_id: str,
        userids: tuple[str, ...],
        text: str,
        buttons: list[list[dict[str, str]]] | None,
        *,
        message_id: str | None,
    ) -> str:
        """Send the card(s) and keep them: under `message_id` when replacing one."""
        task_ids = [uuid.uuid4().hex for _ in range(render.card_parts(buttons))]
        logical = message_id or task_ids[0]
        for index, card in enumerate(render.cards(text, buttons, task_ids)):
            sent = await self.client.send_template_card(userids, card)
            key = logical if index == 0 else f"{logical}#{index}"
            async with self.db.tx() as repo:
                await WeComRepo(repo).save_card(
                    key,
                    chat_id,
                    task_ids[index],
                    userids,
                    sent.response_code or None,
                    self.clock.now(),
                )
        return logical

    async def _keep_text_card(
        self, chat_id: str, message_id: str, userids: tuple[str, ...], text: str
    ) -> None:
        """A card without buttons went out as a text, which WeCom cannot update: kept, so
        that its edits are sent as new versions (only when the text changed)."""
        async with self.db.tx() as repo:
            await WeComRepo(repo).save_card(
                message_id, chat_id, TEXT_CARD + message_id, userids, None, self.clock.now()
            )
        self._remember(message_id, text)

    def _remember(self, message_id: str, text: str) -> None:
        self._shown[message_id] = hashlib.sha1(render.text_of(text).encode()).hexdigest()
        self._shown.move_to_end(message_id)
        while len(self._shown) > SHOWN_KEPT:
            self._shown.popitem(last=False)

    def _unchanged(self, message_id: str, text: str) -> bool:
        digest = hashlib.sha1(render.text_of(text).encode()).hexdigest()
        return self._shown.get(message_id) == digest

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: list[list[dict[str, str]]] | None
    ) -> None:
        """Every recipient's card updated (a new card when WeCom refuses the update); a text
        message cannot be edited on WeCom, nor anything in WeChat: those edits do nothing."""
        async with self.db.read() as repo:
            card = await WeComRepo(repo).card(message_id)
        if card is None:
            logger.debug("edit of %s in %s: not a card, nothing to update", message_id, chat_id)
            return
        stuck = card.task_id.startswith(TEXT_CARD) or not card.response_code
        if stuck and not render.actions(buttons) and self._unchanged(message_id, text):
            return  # its latest version, sent as a text, shows this already
        try:
            parts = render.card_parts(buttons) if render.actions(buttons) else 0
            if parts > 1:  # more buttons than one card holds: the set is sent again
                raise CardStale("a card of several parts is sent anew")
            await self._update(card, text, buttons)
            await self._retire_rest(message_id)
        except CardStale as exc:
            logger.info("card %s in %s sent anew: %s", message_id, chat_id, exc)
            try:
                await self._retire_rest(message_id)
                if render.actions(buttons):
                    userids = await self._recipients(chat_id)
                    await self._new_cards(chat_id, userids, text, buttons, message_id=message_id)
                else:
                    await self.client.send_text(card.userids, render.text_of(text))
                    self._remember(message_id, text)
            except WeComError as again:
                raise _map(again) from again
        except WeComError as exc:
            raise _map(exc) from exc

    async def _update(
        self, card: CardRow, text: str, buttons: list[list[dict[str, str]]] | None
    ) -> None:
        if not card.response_code:
            raise CardStale("no response_code left")
        async with self.db.tx() as repo:  # a code is good once: forget it before using it
            await WeComRepo(repo).set_response_code(card.task_id, None, self.clock.now())
        if render.actions(buttons):
            [new] = render.cards(text, buttons, [card.task_id])
            await self.client.update_template_card(card.userids, card.response_code, card=new)
        else:  # the whole card, so its text follows the ticket too
            await self.client.update_template_card(
                card.userids, card.response_code, card=render.done_card(text, card.task_id)
            )

    async def _retire_rest(self, message_id: str) -> None:
        """The continuation cards of a card set lose their buttons."""
        index = 1
        while True:
            async with self.db.read() as repo:
                part = await WeComRepo(repo).card(f"{message_id}#{index}")
            if part is None:
                return
            if part.response_code:
                async with self.db.tx() as repo:
                    await WeComRepo(repo).set_response_code(part.task_id, None, self.clock.now())
                with contextlib.suppress(CardStale):
                    await self.client.update_template_card(
                        part.userids, part.response_code, replace_name="已更新"
                    )
            index += 1

    async def send_media(self, chat_id: str, media: str, file_id: str, caption: str | None) -> str:
        """An attachment that came through WeCom or WeChat (by media_id); one from another
        channel cannot be passed on by id, so its caption says where to find it."""
        if not file_id.startswith(MEDIA_PREFIX):
            note = f"{caption or '附件'}（来自其他渠道的附件，请在工单详情中查看）"
            return await self.send_text(chat_id, note, None)
        media_id = file_id.removeprefix(MEDIA_PREFIX)
        kind = render.TO_WECOM.get(media, "file")
        try:
            if channel_of(chat_id) == WXKF:
                msgid = await self.client.kf_send_media(
                    raw_of(chat_id), self._kf(), kind, media_id, msgid=kf_msgid()
                )
            else:
                sent = await self.client.send_media(await self._recipients(chat_id), kind, media_id)
                msgid = sent.msgid
            if caption:
                await self.send_text(chat_id, caption, None)
        except WeComError as exc:
            raise _map(exc) from exc
        return msgid

    async def send_upload(
        self, chat_id: str, filename: str, data: bytes, caption: str | None, *, photo: bool
    ) -> str:
        """A file the bot made (the digest chart, a ledger) or one from another channel:
        uploaded, then sent; TooLarge beyond media/upload's limit."""
        kind = "image" if photo else "file"
        check_size("企业微信", WECOM_UPLOAD[kind], len(data))
        content_type = mimetypes.guess_type(filename)[0] or (
            "image/png" if photo else "application/octet-stream"
        )
        try:
            media_id = await self.client.upload_media(kind, filename, data, content_type)
        except WeComError as exc:
            raise _map(exc) from exc
        return await self.send_media(
            chat_id, "photo" if photo else "document", media_ref(media_id), caption
        )

    def owns(self, file_id: str) -> bool:
        """An attachment that came through WeCom or WeChat."""
        return file_id.startswith(MEDIA_PREFIX)

    async def fetch(self, file_id: str) -> MediaFile:
        """media/get: the file a member or a firm sent."""
        try:
            found = await self.client.get_media(file_id.removeprefix(MEDIA_PREFIX))
        except WeComError as exc:
            raise _map(exc) from exc
        return MediaFile(found.filename, found.content_type, found.data)


def member_id(userid: str) -> str:
    """A WeCom userid as a qualified id."""
    return qualify(WECOM, userid)


def firm_id(external_userid: str) -> str:
    """A WeChat customer's external_userid as a qualified id."""
    return qualify(WXKF, external_userid)
