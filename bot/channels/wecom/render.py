"""WeCom's and WeChat's form of the workflow's texts and buttons, in one place.

Neither the app chat nor 微信客服 renders markup: texts are plain (bold dropped, a mention is its
label) and clipped to the byte limits of the API. Buttons become a template card's buttons for
members (button_interaction, at most six: more are spread over several cards) and a msgmenu for
firms (its items come back as text messages carrying the item's id, the button's data). URL
buttons have no counterpart: in WeCom every member is already in the app chat.
"""

from __future__ import annotations

from typing import Any

from bot.render.markup import plain

# WeCom's limits: a text message's content is at most 2,048 bytes; a card's texts far less.
MAX_TEXT_BYTES = 2048
MAX_CARD_BUTTONS = 6
MAX_MENU_ITEMS = 10
TITLE_CHARS = 26
CARD_TEXT_CHARS = 600
SOURCE = "一米团"

Buttons = list[list[dict[str, str]]]


def clip_bytes(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The text cut to `limit` bytes of UTF-8 at a character boundary, marked when cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - len("…".encode())].decode(errors="ignore") + "…"


def text_of(text: str) -> str:
    """A workflow text as WeCom and WeChat show it."""
    return clip_bytes(plain(text))


def actions(buttons: Buttons | None) -> list[tuple[str, str]]:
    """(label, data) of every button that acts (URL buttons dropped)."""
    return [(b["text"], b["data"]) for row in buttons or [] for b in row if b.get("data")]


def _title_and_body(text: str) -> tuple[str, str]:
    lines = plain(text).strip().split("\n")
    title, body = lines[0].strip(), "\n".join(lines[1:]).strip()
    if len(title) > TITLE_CHARS:
        title, body = title[:TITLE_CHARS], (title[TITLE_CHARS:] + "\n" + body).strip()
    if len(body) > CARD_TEXT_CHARS:
        body = body[: CARD_TEXT_CHARS - 1] + "…"
    return title, body


def cards(text: str, buttons: Buttons | None, task_ids: list[str]) -> list[dict[str, Any]]:
    """The template card(s) for a text with buttons: one per six buttons, one task_id each."""
    acting = actions(buttons)
    title, body = _title_and_body(text)
    parts = [acting[i : i + MAX_CARD_BUTTONS] for i in range(0, len(acting), MAX_CARD_BUTTONS)]
    out = []
    for index, (part, task_id) in enumerate(zip(parts, task_ids, strict=True)):
        card: dict[str, Any] = {
            "card_type": "button_interaction",
            "source": {"desc": SOURCE},
            "main_title": {"title": title if index == 0 else f"{title}（续）"},
            "task_id": task_id,
            "button_list": [{"text": label[:10], "style": 1, "key": data} for label, data in part],
        }
        if body and index == 0:
            card["sub_title_text"] = body
        out.append(card)
    return out


def card_parts(buttons: Buttons | None) -> int:
    """How many cards a text with these buttons takes."""
    count = len(actions(buttons))
    return max(1, -(-count // MAX_CARD_BUTTONS))


def done_card(text: str, task_id: str) -> dict[str, Any]:
    """A card with nothing left to press, as an update: the new text, and in place of its
    buttons a grey label (``replace_text``, WeCom's way to end a button_interaction card)."""
    title, body = _title_and_body(text)
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": SOURCE},
        "main_title": {"title": title},
        "task_id": task_id,
        "button_list": [{"text": "已处理", "style": 1, "key": "done"}],
        "replace_text": status_label(text),
    }
    if body:
        card["sub_title_text"] = body
    return card


def status_label(text: str) -> str:
    """What a card's buttons turn into when nothing is left to press: its first line."""
    title, _ = _title_and_body(text)
    return title[:TITLE_CHARS] or "已处理"


def menus(buttons: Buttons | None) -> list[list[tuple[str, str]]]:
    """The msgmenu(s) for a firm: ten items at most in each."""
    acting = [(data, label) for label, data in actions(buttons)]
    return [acting[i : i + MAX_MENU_ITEMS] for i in range(0, len(acting), MAX_MENU_ITEMS)]


# Attachment kinds: the workflow's (Telegram's words) and WeCom's.
TO_WECOM = {"photo": "image", "document": "file", "voice": "voice", "video": "video"}
FROM_WECOM = {"image": "photo", "file": "document", "voice": "voice", "video": "video"}
