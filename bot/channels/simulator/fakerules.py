"""What Telegram refuses, for the fake Bot API: HTML parse errors, text and rate limits, faults."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]
FaultKind = Literal["429", "500", "502", "timeout", "403", "network"]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description and optional parameters."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSON:
        """The JSON body Telegram sends with this error."""
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(description: str, parameters: JSON | None = None) -> ApiError:
    """A 400 ``Bad Request: ...`` error."""
    return ApiError(400, f"Bad Request: {description}", parameters)


def forbidden(description: str) -> ApiError:
    """A 403 ``Forbidden: ...`` error."""
    return ApiError(403, f"Forbidden: {description}")


def too_many_requests(retry_after: int) -> ApiError:
    """A 429 error with ``parameters.retry_after`` as Telegram sends it."""
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------------------------
# HTML parse mode: a port of tdlib's parse_html (td/telegram/MessageEntity.cpp), so the same
# markup fails with the same message at the same byte offset.

_ALLOWED_TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "span", "pre", "code"}
    | {"tg-spoiler", "tg-emoji", "blockquote"}
)
_SPACE = frozenset(b" \t\r\n\0\v\f")
_NAMED = {b"lt": 0x3C, b"gt": 0x3E, b"amp": 0x26, b"quot": 0x22}
_SIMPLE_TYPES = {
    "i": "italic",
    "em": "italic",
    "b": "bold",
    "strong": "bold",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}


def _decode_entity(t: bytes, pos: int) -> tuple[int, int]:
    """Decode ``&lt;``, ``&#NN;``, ``&#xNN;`` at pos: (code point or 0, position after it)."""
    end = pos + 1
    res = 0
    if t[end] == 0x23:  # '#'
        end += 1
        if t[end] == 0x78:  # 'x'
            end += 1
            while chr(t[end]) in "0123456789abcdefABCDEF" and t[end]:
                res = res * 16 + int(chr(t[end]), 16)
                end += 1
        else:
            while 0x30 <= t[end] <= 0x39:
                res = res * 10 + t[end] - 0x30
                end += 1
        if res == 0 or res >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(t[end]).isascii() and chr(t[end]).isalpha():
            end += 1
        res = _NAMED.get(t[pos + 1 : end], 0)
        if not res:
            return 0, pos
    if t[end] == 0x3B:  # ';'
        end += 1
    return res, end


@dataclass
class _Open:
    tag: str
    argument: str
    offset: int
    begin: int


def _close_entity(entities: list[JSON], opened: _Open, length: int, result: bytearray) -> None:
    """Append the entity an end tag closes (tdlib merges <pre><code class=...> into one)."""
    tag, arg, off = opened.tag, opened.argument, opened.offset
    if tag in _SIMPLE_TYPES:
        entities.append({"type": _SIMPLE_TYPES[tag], "offset": off, "length": length})
    elif tag == "tg-emoji":
        entities.append(
            {"type": "custom_emoji", "offset": off, "length": length, "custom_emoji_id": arg}
        )
    elif tag == "a":
        url = arg or result[opened.begin :].decode("utf-8", "replace")
        if url and " " not in url:
            if "://" not in url and not url.startswith("tg:"):
                url = "http://" + url
            entities.append({"type": "text_link", "offset": off, "length": length, "url": url})
    elif tag in ("pre", "code"):
        last = entities[-1] if entities else None
        same = last is not None and last["offset"] == off and last["length"] == length
        if tag == "pre" and same and last and last["type"] == "code" and last.get("_lang"):
            last["type"], last["language"] = "pre", last.pop("_lang")
        elif tag == "code" and same and last and last["type"] == "pre" and arg:
            last["language"] = arg
        else:
            entity: JSON = {"type": tag, "offset": off, "length": length}
            if tag == "code" and arg:
                entity["_lang"] = arg
            entities.append(entity)
    elif tag == "blockquote":
        kind = "expandable_blockquote" if arg == "1" else "blockquote"
        entities.append({"type": kind, "offset": off, "length": length})


def _start_tag(t: bytes, i: int, begin: int) -> tuple[str, str, int]:
    """Parse a start tag whose name starts at i: (tag, argument, index of the closing '>')."""
    while t[i] not in _SPACE and t[i] != 0x3E:
        i += 1
    if t[i] == 0:
        raise ValueError(f"Unclosed start tag at byte offset {begin}")
    tag = t[begin + 1 : i].decode("utf-8", "replace").lower()
    if tag not in _ALLOWED_TAGS:
        raise ValueError(f'Unsupported start tag "{tag}" at byte offset {begin}')
    argument = ""
    while t[i] != 0x3E:
        while t[i] != 0 and t[i] in _SPACE:
            i += 1
        if t[i] == 0x3E:
            break
        name_begin = i
        while t[i] not in _SPACE and t[i] not in (0x3D, 0x3E):
            i += 1
        name = t[name_begin:i]
        if not name:
            raise ValueError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        while t[i] != 0 and t[i] in _SPACE:
            i += 1
        if t[i] != 0x3D:
            if tag == "blockquote" and name == b"expandable":
                argument = "1"
            continue
        i += 1
        while t[i] != 0 and t[i] in _SPACE:
            i += 1
        if t[i] == 0:
            raise ValueError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        value = bytearray()
        if t[i] not in (0x22, 0x27):
            token_begin = i
            while chr(t[i]).isascii() and (chr(t[i]).isalnum() or t[i] in (0x2E, 0x2D)):
                i += 1
            value += t[token_begin:i].lower()
            if t[i] not in _SPACE and t[i] != 0x3E:
                raise ValueError(f"Unexpected end of name token at byte offset {token_begin}")
        else:
            quote = t[i]
            i += 1
            while t[i] != quote and t[i] != 0:
                if t[i] == 0x26:
                    cp, j = _decode_entity(t, i)
                    if cp:
                        value += chr(cp).encode("utf-8", "surrogatepass")
                        i = j
                        continue
                value.append(t[i])
                i += 1
            if t[i] == quote:
                i += 1
        if t[i] == 0:
            raise ValueError(f"Unclosed start tag at byte offset {begin}")
        text = value.decode("utf-8", "replace")
        if tag == "a" and name == b"href":
            argument = text
        elif tag == "code" and name == b"class" and text.startswith("language-"):
            argument = text[9:]
        elif tag == "span" and name == b"class" and text.startswith("tg-"):
            argument = text[3:]
        elif tag == "tg-emoji" and name == b"emoji-id":
            argument = text
        elif tag == "blockquote" and name == b"expandable":
            argument = "1"
    if tag == "span" and argument != "spoiler":
        raise ValueError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    return tag, argument, i


def parse_html(markup: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse mode: (plain text, entities), or ValueError with tdlib's message."""
    t = markup.encode("utf-8") + b"\0"
    result = bytearray()
    entities: list[JSON] = []
    stack: list[_Open] = []
    u16 = 0
    surrogate = False
    i = 0
    while i < len(t) - 1:
        c = t[i]
        if c == 0x26:
            cp, j = _decode_entity(t, i)
            if cp:
                surrogate = surrogate or 0xD800 <= cp <= 0xDFFF
                result += chr(cp).encode("utf-8", "surrogatepass")
                u16 += 1 + (cp > 0xFFFF)
                i = j
                continue
        if c != 0x3C:
            if c & 0xC0 != 0x80:
                u16 += 1 + (c >= 0xF0)
            result.append(c)
            i += 1
            continue
        begin = i
        i += 1
        if t[i] != 0x2F:
            tag, argument, i = _start_tag(t, i, begin)
            stack.append(_Open(tag, argument, u16, len(result)))
            i += 1
            continue
        if not stack:
            raise ValueError(f"Unexpected end tag at byte offset {begin}")
        while t[i] not in _SPACE and t[i] != 0x3E:
            i += 1
        end_name = t[begin + 2 : i].decode("utf-8", "replace")
        while t[i] in _SPACE and t[i] != 0:
            i += 1
        if t[i] != 0x3E:
            raise ValueError(f"Unclosed end tag at byte offset {begin}")
        opened = stack.pop()
        if end_name and end_name != opened.tag:
            raise ValueError(
                f"Unmatched end tag at byte offset {begin}, "
                f'expected "</{opened.tag}>", found "</{end_name}>"'
            )
        if u16 > opened.offset:
            _close_entity(entities, opened, u16 - opened.offset, result)
        i += 1
    if stack:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    if surrogate:
        raise ValueError(
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units"
        )
    for entity in entities:
        entity.pop("_lang", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return result.decode("utf-8"), entities


def _strip(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Trim surrounding whitespace the way Telegram does, moving and clipping entities."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept: list[JSON] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def format_text(
    text: str, parse_mode: str | None, entities: list[JSON] | None, *, caption: bool = False
) -> tuple[str, list[JSON]]:
    """Text as Telegram stores it: parsed, trimmed and checked; raises ApiError like Telegram."""
    if parse_mode and parse_mode.lower() == "html" and not entities:
        try:
            text, entities = parse_html(text)
        except ValueError as err:
            raise bad_request(f"can't parse entities: {err}") from None
    text, entities = _strip(text, list(entities or []))
    if caption:
        if len(text) > MAX_CAPTION:
            raise bad_request("message caption is too long")
    elif not text:
        raise bad_request("message text is empty")
    elif len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, entities


def check_reply_markup(markup: JSON | None) -> None:
    """Refuse inline buttons whose callback_data Telegram refuses (empty or over 64 bytes)."""
    if not markup or "inline_keyboard" not in markup:
        return
    for row in markup["inline_keyboard"]:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                raise bad_request("BUTTON_DATA_INVALID")


# ---------------------------------------------------------------------------------------------
# Rate limits


class SlidingWindow:
    """At most ``limit`` events in any ``period`` seconds."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._times: deque[float] = deque()

    def retry_after(self, now: float, count: int = 1) -> int:
        """0 if ``count`` more events fit now, else whole seconds until they do."""
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()
        excess = len(self._times) + count - self.limit
        if excess <= 0:
            return 0
        if count > self.limit:
            return math.ceil(self.period)
        free_at = self._times[excess - 1] + self.period
        return max(1, math.ceil(free_at - now))

    def record(self, now: float, count: int = 1) -> None:
        """Count ``count`` events at ``now``."""
        self._times.extend([now] * count)


class RateLimits:
    """Telegram's flood limits: messages per second overall and per minute in each group."""

    def __init__(self, global_limit: tuple[int, float], group_limit: tuple[int, float]) -> None:
        self.global_limit = global_limit
        self.group_limit = group_limit
        self._global = SlidingWindow(*global_limit)
        self._groups: dict[int, SlidingWindow] = {}

    def check(self, now: float, chat_id: int, is_group: bool, count: int = 1) -> None:
        """Raise a 429 ApiError if sending ``count`` messages to the chat now is over a limit."""
        waits = [self._global.retry_after(now, count)]
        if is_group:
            waits.append(self._group(chat_id).retry_after(now, count))
        if max(waits):
            raise too_many_requests(max(waits))

    def record(self, now: float, chat_id: int, is_group: bool, count: int = 1) -> None:
        """Count messages that were sent."""
        self._global.record(now, count)
        if is_group:
            self._group(chat_id).record(now, count)

    def _group(self, chat_id: int) -> SlidingWindow:
        if chat_id not in self._groups:
            self._groups[chat_id] = SlidingWindow(*self.group_limit)
        return self._groups[chat_id]


# ---------------------------------------------------------------------------------------------
# Fault injection


@dataclass
class Fault:
    """One injected failure: which method, how it fails, how many more times."""

    method: str | None
    kind: FaultKind
    times: int = 1
    retry_after: int = 1
    hang: float = 30.0
    after_effect: bool = False

    def matches(self, method: str) -> bool:
        """None matches every method but getUpdates, which must be named to be hit."""
        if self.method is None:
            return method.lower() != "getupdates"
        return self.method.lower() == method.lower()


@dataclass
class Faults:
    """The failures the next calls will meet, in the order they were injected."""

    pending: list[Fault] = field(default_factory=list)

    def inject(
        self,
        method: str | None,
        kind: FaultKind,
        times: int = 1,
        retry_after: int = 1,
        *,
        hang: float = 30.0,
        after_effect: bool = False,
    ) -> Fault:
        """Make the next ``times`` calls of ``method`` (None: any but getUpdates) fail.

        "timeout" holds the connection ``hang`` seconds (or until the server stops), then closes
        it; "network" closes it at once. With ``after_effect`` the call takes effect first and
        only its answer is lost or replaced, as when Telegram sent a message but the reply
        never arrived.
        """
        fault = Fault(method, kind, times, retry_after, hang, after_effect)
        self.pending.append(fault)
        return fault

    def clear(self) -> None:
        """Forget every pending fault."""
        self.pending.clear()

    def take(self, method: str) -> Fault | None:
        """The fault this call meets, if any (consumes one of its ``times``)."""
        for fault in self.pending:
            if fault.matches(method):
                fault.times -= 1
                if fault.times <= 0:
                    self.pending.remove(fault)
                return fault
        return None

    def error(self, fault: Fault) -> ApiError | None:
        """The JSON error answer of a fault, or None for faults that break the connection."""
        if fault.kind == "429":
            return too_many_requests(fault.retry_after)
        if fault.kind == "500":
            return ApiError(500, "Internal Server Error")
        if fault.kind == "403":
            return forbidden("bot was blocked by the user")
        return None
