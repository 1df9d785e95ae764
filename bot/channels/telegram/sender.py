"""Telegram's side of delivery and membership: PTB calls, errors mapped by type.

Chat and user ids arrive channel-qualified ('telegram:-100123') and texts in neutral markup:
both are turned into Telegram's here (bot.channels.telegram.render).
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
import warnings
from datetime import timedelta

from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram.render import button_url, html
from bot.core.ids import raw_of
from bot.delivery.media import (
    TELEGRAM_DOWNLOAD,
    TELEGRAM_UPLOAD,
    MediaFile,
    TooLarge,
    check_size,
)
from bot.delivery.outbox import (
    ChannelLimits,
    NotModified,
    Rejected,
    RetryLater,
    Transient,
    Unreachable,
)
from bot.render.keyboards import CONTACT_BUTTON, Reply
from bot.render.texts import SHARE_PHONE_LABEL
from bot.workflow.outbound import keyboard_payload

logger = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply


# Telegram: about 30 messages a second overall (PTB's limiter) and 20 a minute into one group.
TELEGRAM_LIMITS = ChannelLimits(group_limit=20, group_period=60.0, group_burst=6, batch_cards=True)


def chat_of(chat_id: str) -> int:
    """A qualified Telegram chat or user id as the Bot API's integer."""
    return int(raw_of(chat_id))


def inline_markup(
    buttons: list[list[dict[str, str]]] | None, bot_username: str = "yimi_bot"
) -> InlineKeyboardMarkup | None:
    """Stored buttons as a Telegram inline keyboard."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b["text"], url=button_url(b["url"], bot_username))
                if "url" in b
                else InlineKeyboardButton(b["text"], callback_data=b.get("data"))
                for b in row
            ]
            for row in buttons
        ]
    )


def reply_markup(reply: Reply, bot_username: str = "yimi_bot") -> Markup | None:
    """The markup for an immediate reply."""
    if reply.buttons:
        return inline_markup(keyboard_payload(reply.buttons), bot_username)
    if reply.reply_keyboard:
        rows = [
            [
                KeyboardButton(SHARE_PHONE_LABEL, request_contact=True)
                if label == CONTACT_BUTTON
                else KeyboardButton(label)
                for label in row
            ]
            for row in reply.reply_keyboard
        ]
        return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)
    if reply.remove_keyboard:
        return ReplyKeyboardRemove()
    if reply.force_reply:
        return ForceReply(selective=True)
    return None


def retry_seconds(exc: RetryAfter) -> float:
    """Seconds to wait after flood control (PTB gives an int or, opted in, a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        after = exc.retry_after
    return after.total_seconds() if isinstance(after, timedelta) else float(after)


def _map(exc: TelegramError) -> Exception:
    """Telegram errors as delivery errors, by type (BadRequest is a NetworkError: check first)."""
    if isinstance(exc, RetryAfter):
        return RetryLater(retry_seconds(exc))
    if isinstance(exc, Forbidden):
        return Unreachable(exc.message)
    if isinstance(exc, BadRequest):
        text = exc.message.lower()
        if "not modified" in text:
            return NotModified(exc.message)
        if "chat not found" in text or "user not found" in text:
            return Unreachable(exc.message)
        return Rejected(exc.message)
    if isinstance(exc, NetworkError):
        return Transient(exc.message)
    return Rejected(exc.message)


class TelegramSender:
    """Implements bot.delivery.outbox.Sender and bot.core.ports.Membership with a PTB Bot."""

    limits = TELEGRAM_LIMITS

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    def is_group(self, chat_id: str) -> bool:
        """Telegram's group and supergroup ids are negative."""
        return chat_of(chat_id) < 0

    @property
    def username(self) -> str:
        """The bot's username once getMe has run (for deep links)."""
        return self.bot.username if self.bot._bot_user else "yimi_bot"

    async def send_text(
        self,
        chat_id: str,
        text: str,
        buttons: list[list[dict[str, str]]] | None,
        *,
        reply_to: str | None = None,
        force_reply: bool = False,
    ) -> str:
        """sendMessage with HTML and an inline keyboard."""
        markup: Markup | None = inline_markup(buttons, self.username)
        if markup is None and force_reply:
            markup = ForceReply(selective=True)
        params = (
            ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)
            if reply_to
            else None
        )
        try:
            sent = await self.bot.send_message(
                chat_of(chat_id),
                html(text),
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                reply_parameters=params,
                disable_web_page_preview=True,
            )
        except TelegramError as exc:
            raise _map(exc) from exc
        return str(sent.message_id)

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: list[list[dict[str, str]]] | None
    ) -> None:
        """editMessageText in place."""
        try:
            await self.bot.edit_message_text(
                html(text),
                chat_id=chat_of(chat_id),
                message_id=int(message_id),
                parse_mode=ParseMode.HTML,
                reply_markup=inline_markup(buttons, self.username),
                disable_web_page_preview=True,
            )
        except TelegramError as exc:
            raise _map(exc) from exc

    async def send_media(self, chat_id: str, media: str, file_id: str, caption: str | None) -> str:
        """An attachment by file id."""
        chat = chat_of(chat_id)
        try:
            if media == "photo":
                sent = await self.bot.send_photo(chat, file_id, caption=caption)
            elif media == "voice":
                sent = await self.bot.send_voice(chat, file_id, caption=caption)
            elif media == "video":
                sent = await self.bot.send_video(chat, file_id, caption=caption)
            else:
                sent = await self.bot.send_document(chat, file_id, caption=caption)
        except TelegramError as exc:
            raise _map(exc) from exc
        return str(sent.message_id)

    async def send_upload(
        self, chat_id: str, filename: str, data: bytes, caption: str | None, *, photo: bool
    ) -> str:
        """A file made by the bot (the digest chart, a ledger) or one from another channel;
        TooLarge beyond what a bot may upload."""
        check_size("Telegram", TELEGRAM_UPLOAD["photo" if photo else "document"], len(data))
        chat = chat_of(chat_id)
        try:
            if photo:
                sent = await self.bot.send_photo(
                    chat, InputFile(data, filename=filename), caption=caption
                )
            else:
                sent = await self.bot.send_document(
                    chat, InputFile(data, filename=filename), caption=caption
                )
        except TelegramError as exc:
            raise _map(exc) from exc
        return str(sent.message_id)

    def owns(self, file_id: str) -> bool:
        """Telegram's file ids carry no channel prefix (other channels' ids do: ``x:...``)."""
        return bool(file_id) and ":" not in file_id

    async def fetch(self, file_id: str) -> MediaFile:
        """getFile and download (a bot gets files of at most 20 MB)."""
        try:
            found = await self.bot.get_file(file_id)
            if found.file_size is not None:
                check_size("Telegram", TELEGRAM_DOWNLOAD, found.file_size)
            data = bytes(await found.download_as_bytearray())
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise TooLarge("Telegram", TELEGRAM_DOWNLOAD) from exc
            raise _map(exc) from exc
        except TelegramError as exc:
            raise _map(exc) from exc
        name = posixpath.basename(found.file_path or "") or "file"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return MediaFile(name, content_type, data)

    async def is_member(self, chat_id: str, user_id: str) -> bool:
        """getChatMember: member, admin, owner or restricted-but-present."""
        try:
            member = await self.bot.get_chat_member(chat_of(chat_id), chat_of(user_id))
        except TelegramError as exc:
            logger.warning("getChatMember %s/%s failed: %s", chat_id, user_id, exc)
            return False
        if member.status in (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED):
            return False
        return bool(
            member.status != ChatMemberStatus.RESTRICTED or getattr(member, "is_member", False)
        )
