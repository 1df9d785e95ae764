"""The neutral inline markup of every text the workflow stores or returns.

Texts are plain strings in which user values stand as they were typed (never escaped here) and
formatting is marked by control characters no user can send (`clean` removes them from input):
bold, a mention of a user, and a deep link to start a private chat with the bot. Each channel
turns them into its own form in one place (Telegram: HTML with escaping,
bot/channels/telegram/render.py; a plain-text channel: `plain`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

BOLD = "\x02"
END = "\x03"
MENTION = "\x04"  # MENTION <qualified user id> SEP <label> END_MENTION
SEP = "\x05"
END_MENTION = "\x06"
# The URL of a button that opens the private chat with the bot as staff: each channel knows
# its own deep link (Telegram: https://t.me/<bot>?start=staff).
STAFF_START_URL = "yimi:start-staff"

_MARKERS = re.compile("[\x02-\x06]")
_MENTIONS = re.compile("\x04([^\x04-\x06]*)\x05([^\x04-\x06]*)\x06")
_BOLDS = re.compile("\x02([^\x02\x03]*)\x03")


def bold(text: str) -> str:
    """`text` in bold."""
    return f"{BOLD}{text}{END}"


def mention(user_id: str, label: str) -> str:
    """A mention of a user (a channel that cannot mention shows the label)."""
    return f"{MENTION}{user_id}{SEP}{label}{END_MENTION}"


def clean(text: str) -> str:
    """User input with any markup characters removed (they cannot be typed, but can be sent)."""
    return _MARKERS.sub("", text)


def plain(text: str) -> str:
    """The text as a channel without formatting shows it."""
    return _MARKERS.sub("", _MENTIONS.sub(r"\2", text))


def convert(
    text: str,
    *,
    text_part: Callable[[str], str],
    bold_part: Callable[[str], str],
    mention_part: Callable[[str, str], str],
) -> str:
    """Render markup: `text_part(s)` for every run of text, `bold_part(rendered)` around a bold
    run, `mention_part(user_id, label)` for a mention; stray markers are dropped."""
    out: list[str] = []
    pos = 0
    for m in _MENTIONS.finditer(text):
        out.append(_bolds(text[pos : m.start()], text_part, bold_part))
        out.append(mention_part(m.group(1), m.group(2)))
        pos = m.end()
    out.append(_bolds(text[pos:], text_part, bold_part))
    return "".join(out)


def _bolds(text: str, text_part: Callable[[str], str], bold_part: Callable[[str], str]) -> str:
    out: list[str] = []
    pos = 0
    for m in _BOLDS.finditer(text):
        out.append(text_part(_MARKERS.sub("", text[pos : m.start()])))
        out.append(bold_part(text_part(m.group(1))))
        pos = m.end()
    out.append(text_part(_MARKERS.sub("", text[pos:])))
    return "".join(out)
