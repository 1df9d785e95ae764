"""Whether a firm's text describes anything: a greeting, nothing readable, or content.

Greetings, thanks, emoji, punctuation and keyboard mashes never open a report: a greeting gets a
short guide, the others a request for a description (issue 15). The rule is deliberately plain:
content is at least two different Chinese characters once greetings and fillers are removed, or
a Latin/digit text of several words (a model number, an English sentence).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Kind = Literal["content", "greeting", "empty"]

# Longest first, so 您好啊 goes before 您好 and 好.
_GREETINGS = sorted(
    {
        "你好",
        "您好",
        "你们好",
        "大家好",
        "哈喽",
        "嗨",
        "喂",
        "在吗",
        "在不在",
        "有人吗",
        "早上好",
        "上午好",
        "中午好",
        "下午好",
        "晚上好",
        "早安",
        "晚安",
        "早",
        "谢谢",
        "谢谢你",
        "谢谢您",
        "多谢",
        "感谢",
        "辛苦了",
        "好的",
        "好",
        "嗯",
        "嗯嗯",
        "哦",
        "噢",
        "ok",
        "okay",
        "hello",
        "hi",
        "hey",
        "thanks",
        "thank you",
        "test",
        "测试",
        "请问",
        "机器人",
        "啊",
        "呀",
        "吗",
        "呢",
        "吧",
        "哈",
        "哈哈",
        "哈哈哈",
        "呵呵",
        "嘿",
    },
    key=len,
    reverse=True,
)
_GREETING_RE = re.compile("|".join(re.escape(g) for g in _GREETINGS), re.IGNORECASE)


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def _readable(text: str) -> str:
    """Letters and digits only (emoji, symbols, punctuation and spaces dropped)."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def kind_of(text: str) -> Kind:
    """'content', 'greeting' (only greetings, thanks, fillers) or 'empty' (nothing readable)."""
    readable = _readable(text)
    if not readable:
        return "empty"
    rest = _readable(_GREETING_RE.sub(" ", text))
    if not rest:
        return "greeting"
    cjk = {ch for ch in rest if _is_cjk(ch)}
    if len(cjk) >= 2:
        return "content"
    words = [w for w in re.split(r"[^0-9A-Za-z]+", _GREETING_RE.sub(" ", text)) if w]
    # Latin or digits only: several words are a sentence; one run of letters is a key mash.
    return "content" if len(words) >= 3 and any(len(w) > 1 for w in words) else "empty"


def has_content(text: str) -> bool:
    """The text says something a team could act on."""
    return kind_of(text) == "content"
