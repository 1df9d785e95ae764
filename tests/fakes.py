"""Telegram replaced at the transport: a recording BaseRequest, update builders, a test clock."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from telegram.request import BaseRequest, RequestData

TZ = ZoneInfo("Asia/Shanghai")
BOT_ID = 777000
BOT_USERNAME = "yimi_test_bot"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Sent:
    """A message the bot sent (edits applied in place)."""

    chat_id: int
    message_id: int
    text: str
    markup: dict[str, Any] | None
    reply_to: int | None = None
    method: str = "sendMessage"
    edits: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def buttons(self) -> list[str]:
        """Labels of the inline buttons."""
        if not self.markup or "inline_keyboard" not in self.markup:
            return []
        return [b["text"] for row in self.markup["inline_keyboard"] for b in row]

    def data(self, label: str) -> str:
        """Callback data of the button with this label."""
        assert self.markup is not None, f"no buttons on {self.text!r}"
        for row in self.markup["inline_keyboard"]:
            for button in row:
                if button["text"] == label:
                    return str(button["callback_data"])
        raise AssertionError(f"no button {label!r} in {self.buttons()}")


class FakeTelegram(BaseRequest):
    """Answers Bot API calls from memory and records them; no network."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[int, list[Sent]] = defaultdict(list)
        self.members: dict[int, set[int]] = defaultdict(set)
        self.blocked: set[int] = set()  # users who never started the bot / blocked it
        self.fail_next: list[tuple[str, int, str, int | None]] = []
        # For `doctor`: BotFather's privacy mode, groups gone, the bot's status per group.
        self.privacy_mode = False
        self.gone: set[int] = set()
        self.bot_status: dict[int, str] = {}  # method, code, text, retry
        self._ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self.answers: list[dict[str, Any]] = []

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def next_id(self, chat_id: int) -> int:
        return next(self._ids[chat_id])

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        if request_data is not None and request_data.contains_files:
            files = request_data.multipart_data or {}
            params["_files"] = dict(files)  # part name → (filename, content, mime type)
        self.calls.append((name, params))
        for i, (fail_method, code, text, retry) in enumerate(self.fail_next):
            if fail_method == name:
                del self.fail_next[i]
                body: dict[str, Any] = {"ok": False, "error_code": code, "description": text}
                if retry is not None:
                    body["parameters"] = {"retry_after": retry}
                return code, json.dumps(body).encode()
        result = self._answer(name, params)
        if isinstance(result, tuple):
            code, text = result
            return code, json.dumps({"ok": False, "error_code": code, "description": text}).encode()
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def _answer(self, name: str, p: dict[str, Any]) -> Any:
        if name == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "一米团",
                "username": BOT_USERNAME,
                "can_join_groups": True,
                "can_read_all_group_messages": not self.privacy_mode,
            }
        if name == "getUpdates":  # nobody writes: an empty long poll
            return []
        if name in ("setMyCommands", "deleteWebhook", "setChatMenuButton", "sendChatAction"):
            return True
        if name == "answerCallbackQuery":
            self.answers.append(p)
            return True
        if name == "getChat":
            chat = int(p["chat_id"])
            if chat in self.gone:
                return 400, "Bad Request: chat not found"
            return {
                "id": chat,
                "type": "supergroup",
                "title": f"群 {chat}",
                "accent_color_id": 0,
                "max_reaction_count": 11,
            }
        if name == "getChatMember":
            chat, user = int(p["chat_id"]), int(p["user_id"])
            status = "member" if user in self.members[chat] else "left"
            if user == BOT_ID:  # the bot is in every group unless a test says otherwise
                status = self.bot_status.get(chat, "member")
            return {"status": status, "user": {"id": user, "is_bot": False, "first_name": "U"}}
        if name in ("sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendVideo"):
            chat = int(p["chat_id"])
            if chat > 0 and chat in self.blocked:
                return 403, "Forbidden: bot can't initiate conversation with a user"
            text = str(p.get("text") or p.get("caption") or "")
            if name == "sendMessage":
                _check_html(text)
            markup = p.get("reply_markup")
            if isinstance(markup, str):
                markup = json.loads(markup)
            reply = p.get("reply_parameters")
            if isinstance(reply, str):
                reply = json.loads(reply)
            sent = Sent(
                chat,
                self.next_id(chat),
                text,
                markup,
                reply_to=reply.get("message_id") if reply else None,
                method=name,
                params=p,
            )
            self.messages[chat].append(sent)
            return self._message_json(sent)
        if name in ("editMessageText", "editMessageReplyMarkup"):
            chat, mid = int(p["chat_id"]), int(p["message_id"])
            target = next((m for m in self.messages[chat] if m.message_id == mid), None)
            if target is None:
                return 400, "Bad Request: message to edit not found"
            markup = p.get("reply_markup")
            if isinstance(markup, str):
                markup = json.loads(markup)
            new_text = str(p["text"]) if name == "editMessageText" else target.text
            if new_text == target.text and markup == target.markup:
                return 400, "Bad Request: message is not modified"
            if name == "editMessageText":
                _check_html(new_text)
            target.text, target.markup = new_text, markup
            target.edits += 1
            return self._message_json(target)
        return 404, "Not Found: method not found"

    def _message_json(self, sent: Sent) -> dict[str, Any]:
        chat: dict[str, Any] = (
            {"id": sent.chat_id, "type": "private", "first_name": "U"}
            if sent.chat_id > 0
            else {"id": sent.chat_id, "type": "supergroup", "title": "G"}
        )
        data: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": 0,
            "chat": chat,
            "from": {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "一米团",
                "username": BOT_USERNAME,
            },
            "text": sent.text,
        }
        if sent.markup and "inline_keyboard" in sent.markup:
            data["reply_markup"] = sent.markup
        return data

    # -- reading what people see -------------------------------------------------------------

    def chat(self, chat_id: int) -> list[Sent]:
        return self.messages[chat_id]

    def last(self, chat_id: int) -> Sent:
        assert self.messages[chat_id], f"nothing was sent to chat {chat_id}"
        return self.messages[chat_id][-1]

    def texts(self, chat_id: int) -> str:
        return "\n---\n".join(m.text for m in self.messages[chat_id])

    def find(self, chat_id: int, contains: str) -> Sent:
        for sent in reversed(self.messages[chat_id]):
            if contains in sent.text:
                return sent
        raise AssertionError(
            f"no message containing {contains!r} in chat {chat_id}:\n" + self.texts(chat_id)
        )


_ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
}


def _check_html(text: str) -> None:
    """Fail a test loudly when the bot sends HTML that Telegram would refuse."""
    import re

    stack: list[str] = []
    for match in re.finditer(r"<(/?)([a-zA-Z-]+)[^>]*>", text):
        closing, tag = match.group(1), match.group(2).lower()
        assert tag in _ALLOWED_TAGS, f"tag <{tag}> in {text!r}"
        if closing:
            assert stack and stack[-1] == tag, f"unbalanced </{tag}> in {text!r}"
            stack.pop()
        else:
            stack.append(tag)
    assert not stack, f"unclosed tags {stack} in {text!r}"
    stripped = re.sub(r"<[^>]+>", "", text)
    assert "<" not in stripped and ">" not in stripped, f"raw < or > in {text!r}"
    assert not re.search(r"&(?!lt;|gt;|amp;|quot;|#\d+;|#x[0-9a-fA-F]+;)", stripped), (
        f"raw & in {text!r}"
    )
    assert 0 < len(stripped) <= 4096, f"length {len(stripped)}"


class Updates:
    """Builds Bot API update dicts as Telegram sends them."""

    def __init__(self, telegram: FakeTelegram) -> None:
        self.telegram = telegram
        self._update_ids = itertools.count(1)

    def _user(self, user_id: int, name: str, username: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": name}
        if username:
            data["username"] = username
        return data

    def _chat(self, chat_id: int, name: str) -> dict[str, Any]:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": name}
        return {"id": chat_id, "type": "supergroup", "title": name}

    def message(
        self,
        chat_id: int,
        user_id: int,
        name: str,
        text: str | None = None,
        *,
        reply_to: int | None = None,
        username: str | None = None,
        extra: dict[str, Any] | None = None,
        message_id: int | None = None,
        edited: bool = False,
    ) -> dict[str, Any]:
        mid = message_id if message_id is not None else self.telegram.next_id(chat_id)
        msg: dict[str, Any] = {
            "message_id": mid,
            "date": 1_800_000_000,
            "chat": self._chat(chat_id, name),
            "from": self._user(user_id, name, username),
        }
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                msg["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
                ]
        if reply_to is not None:
            original = next(m for m in self.telegram.messages[chat_id] if m.message_id == reply_to)
            msg["reply_to_message"] = {
                **self.telegram._message_json(original),
            }
        if extra:
            msg.update(extra)
        if edited:
            msg["edit_date"] = 1_800_000_100
            return {"update_id": next(self._update_ids), "edited_message": msg}
        return {"update_id": next(self._update_ids), "message": msg}

    def callback(
        self,
        chat_id: int,
        user_id: int,
        name: str,
        message: Sent,
        data: str,
        username: str | None = None,
    ) -> dict[str, Any]:
        uid = next(self._update_ids)
        return {
            "update_id": uid,
            "callback_query": {
                "id": str(uid),
                "chat_instance": str(chat_id),
                "data": data,
                "from": self._user(user_id, name, username),
                "message": self.telegram._message_json(message),
            },
        }
