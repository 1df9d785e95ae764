"""Telegram's side of delivery and membership: PTB calls, errors mapped by type."""

from __future__ import annotations

import logging
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

from bot.delivery.outbox import NotModified, Rejected, RetryLater, Transient, Unreachable
from bot.render.keyboards import CONTACT_BUTTON, Reply
from bot.render.texts import SHARE_PHONE_LABEL
from bot.workflow.ports import keyboard_payload

logger = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply


def inline_markup(buttons: list[list[dict[str, str]]] | None) -> InlineKeyboardMarkup | None:
    """Stored buttons as a Telegram inline keyboard."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b["text"], url=b["url"])
                if "url" in b
                else InlineKeyboardButton(b["text"], callback_data=b.get("data"))
                for b in row
            ]
            for row in buttons
        ]
    )


def reply_markup(reply: Reply) -> Markup | None:
    """The markup for an immediate reply."""
    if reply.buttons:
        return inline_markup(keyboard_payload(reply.buttons))
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
    """Implements bot.delivery.outbox.Sender and bot.workflow.ports.Membership with a PTB Bot."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send_text(
        self,
        chat_id: int,
        text: str,
        buttons: list[list[dict[str, str]]] | None,
        *,
        reply_to: int | None = None,
        force_reply: bool = False,
    ) -> int:
        """sendMessage with HTML and an inline keyboard."""
        markup: Markup | None = inline_markup(buttons)
        if markup is None and force_reply:
            markup = ForceReply(selective=True)
        params = (
            ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            if reply_to
            else None
        )
        try:
            sent = await self.bot.send_message(
                chat_id,
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                reply_parameters=params,
                disable_web_page_preview=True,
            )
        except TelegramError as exc:
            raise _map(exc) from exc
        return sent.message_id

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, buttons: list[list[dict[str, str]]] | None
    ) -> None:
        """editMessageText in place."""
        try:
            await self.bot.edit_message_text(
                text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=inline_markup(buttons),
                disable_web_page_preview=True,
            )
        except TelegramError as exc:
            raise _map(exc) from exc

    async def send_media(self, chat_id: int, media: str, file_id: str, caption: str | None) -> int:
        """An attachment by file id."""
        try:
            if media == "photo":
                sent = await self.bot.send_photo(chat_id, file_id, caption=caption)
            elif media == "voice":
                sent = await self.bot.send_voice(chat_id, file_id, caption=caption)
            elif media == "video":
                sent = await self.bot.send_video(chat_id, file_id, caption=caption)
            else:
                sent = await self.bot.send_document(chat_id, file_id, caption=caption)
        except TelegramError as exc:
            raise _map(exc) from exc
        return sent.message_id

    async def send_upload(
        self, chat_id: int, filename: str, data: bytes, caption: str | None, *, photo: bool
    ) -> int:
        """A file made by the bot (the digest chart, a ledger)."""
        try:
            if photo:
                sent = await self.bot.send_photo(
                    chat_id, InputFile(data, filename=filename), caption=caption
                )
            else:
                sent = await self.bot.send_document(
                    chat_id, InputFile(data, filename=filename), caption=caption
                )
        except TelegramError as exc:
            raise _map(exc) from exc
        return sent.message_id

    async def is_member(self, chat_id: int, user_id: int) -> bool:
        """getChatMember: member, admin, owner or restricted-but-present."""
        try:
            member = await self.bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:
            logger.warning("getChatMember %s/%s failed: %s", chat_id, user_id, exc)
            return False
        if member.status in (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED):
            return False
        return bool(
            member.status != ChatMemberStatus.RESTRICTED or getattr(member, "is_member", False)
        )
