"""Telegram's rendering of the neutral markup: HTML, with every user value escaped here only."""

from __future__ import annotations

from html import escape

from bot.core.ids import TELEGRAM, channel_of, raw_of
from bot.render import markup
from bot.render.texts import MAX_TEXT, clip


def html(text: str) -> str:
    """Neutral markup as Telegram HTML (parse_mode=HTML), clipped to Telegram's 4096."""
    return markup.convert(
        clip(text, MAX_TEXT),
        text_part=lambda s: escape(s),
        bold_part=lambda s: f"<b>{s}</b>",
        mention_part=_mention,
    )


def _mention(user_id: str, label: str) -> str:
    if channel_of(user_id) == TELEGRAM:
        return f'<a href="tg://user?id={raw_of(user_id)}">{escape(label)}</a>'
    return escape(label)


def button_url(url: str, bot_username: str) -> str:
    """A neutral button URL as Telegram's: the staff deep link, else as it is."""
    if url == markup.STAFF_START_URL:
        return f"https://t.me/{bot_username}?start=staff"
    return url
