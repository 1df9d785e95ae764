"""What the workflow needs from the outside: who acts, what arrives, the clock, group membership."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

# The characters of the neutral markup (bot.render.markup): no user may send them, so that
# nothing typed can pose as formatting. Removed from everything that arrives.
_MARKUP = re.compile("[\x02-\x06]")


def clean(text: str) -> str:
    """User input without markup characters."""
    return _MARKUP.sub("", text)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, from which chat."""

    id: str  # channel-qualified user id (bot.core.ids)
    name: str
    chat_id: str  # channel-qualified chat id: the user's own for a private chat
    private: bool  # acting in the private chat with the bot (each channel knows how to tell)
    username: str | None = None
    is_admin: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", clean(self.name))

    @property
    def mention(self) -> str:
        """How to address them in a group."""
        return f"@{self.username}" if self.username else self.name


@dataclass(frozen=True, slots=True)
class Incoming:
    """A private message as any chat platform delivers it."""

    message_id: str
    text: str = ""
    attachment: tuple[str, str] | None = None  # (kind, platform file id)
    location: tuple[float, float] | None = None
    contact: tuple[str, str | None] | None = None  # (phone, whose contact card)
    reply_to: str | None = None  # the message it answers, if any

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", clean(self.text))


# Characters that show nothing: a text made only of them (and spaces) is not a report.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u202a\u202b\u202c\u202d\u202e")
)


def visible(text: str) -> bool:
    """Whether the text shows anything at all."""
    return bool(text.translate(_INVISIBLE).strip())


class Clock(Protocol):
    """Source of the current time (tests control it)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock in the configured timezone."""

    def __init__(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)

    def now(self) -> datetime:
        """Now, timezone-aware, to the second."""
        return datetime.now(self.tz).replace(microsecond=0)


class Membership(Protocol):
    """Asks the chat platform whether a user is in a group."""

    async def is_member(self, chat_id: str, user_id: str) -> bool: ...
