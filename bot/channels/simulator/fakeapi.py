"""A fake Telegram Bot API on 127.0.0.1 (aiohttp) for tests, benchmarks and the simulator.

The bot talks to it exactly as to api.telegram.org (``ApplicationBuilder().base_url(api.base_url)
.base_file_url(api.base_file_url)``); tests and the browser simulator play the users and groups
through the methods inherited from :class:`~bot.channels.simulator.fakeworld.FakeWorld`. Telegram's rules that
the bot must live with are enforced (see :mod:`bot.channels.simulator.fakerules`): HTML parse errors, text
limits, 403 for users who never started or blocked the bot, flood limits with ``retry_after``,
and injected faults (``api.faults.inject``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from bot.channels.simulator.fakerules import (
    JSON,
    ApiError,
    Fault,
    Faults,
    RateLimits,
    bad_request,
    check_reply_markup,
    forbidden,
    format_text,
)
from bot.channels.simulator.fakeworld import (
    ALL_UPDATES,
    DEFAULT_UPDATES,
    FakeChat,
    FakeEvent,
    FakeWorld,
    StoredFile,
    file_dict,
    photo_sizes,
)

__all__ = ["Call", "FakeBotAPI", "Upload"]

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
# Form fields Telegram reads as strings; every other form value is JSON (numbers, objects ...).
_STRING_FIELDS = frozenset(
    "text caption parse_mode callback_query_id url file_id title description short_description "  # noqa: SIM905
    "name action language_code secret_token inline_message_id emoji phone_number first_name "
    "last_name vcard business_connection_id message_effect_id ip_address photo document voice "
    "sticker video audio animation address".split()
)
# Content a copied or forwarded message keeps.
_HEADER_FIELDS = frozenset(
    {"message_id", "from", "chat", "date", "edit_date", "reply_to_message", "reply_markup"}
    | {"forward_origin"}
)
_MEDIA = ("photo", "document", "voice", "audio", "video", "animation", "sticker")
_ADMIN_RIGHTS: JSON = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_pin_messages": True,
}


@dataclass
class Upload:
    """A file sent in a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    """One Bot API request as the fake saw it; ``status`` None while running or if dropped."""

    method: str
    params: JSON
    time: float
    status: int | None = None
    response: JSON | None = None


class FakeBotAPI(FakeWorld):
    """The Bot API side of the fake: an aiohttp server answering the bot's HTTP calls."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        enforce_limits: bool = True,
        global_limit: tuple[int, float] = (30, 1.0),
        group_limit: tuple[int, float] = (20, 60.0),
        bot_username: str = "yimi_test_bot",
        bot_id: int | None = None,
        bot_name: str = "一米测试机器人",
        group_privacy: bool = False,
    ) -> None:
        super().__init__(
            bot_id=bot_id if bot_id is not None else int(token.split(":")[0]),
            bot_username=bot_username,
            bot_name=bot_name,
            group_privacy=group_privacy,
        )
        self.token = token
        self.host = host
        self.latency = latency
        self.enforce_limits = enforce_limits
        self.limits = RateLimits(global_limit, group_limit)
        self.faults = Faults()
        self.calls: list[Call] = []
        self.webhook: JSON | None = None
        # A load balancer in front of several bot processes: webhook posts go round these.
        self.webhook_urls: list[str] = []
        self.webhook_posts: list[tuple[str, int, int]] = []  # (url, update_id, HTTP status)
        self._pusher: asyncio.Task[None] | None = None
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.menu_buttons: dict[int | None, JSON] = {}
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._poll_generation = 0
        self._explicit_allowed = False
        # Bot API methods are the _m_<method> functions; Telegram ignores the case of the name.
        self._methods: dict[str, Callable[[JSON], Any]] = {
            name[3:].lower(): getattr(self, name) for name in dir(self) if name.startswith("_m_")
        }

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on host:port (port 0: a free one, see ``port``)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._on_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._on_file)
        self._closing.clear()
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self._requested_port).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Answer pending long polls, drop hung connections and stop listening."""
        self._closing.set()
        self._changed()
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
            self._pusher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: PTB appends ``{token}/{method}``."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"http://{self.host}:{self.port}/file/bot"

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method (case-insensitive)."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    # -- HTTP -----------------------------------------------------------------------------

    async def _on_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _json(ApiError(401, "Unauthorized").payload(), 401)
        method = request.match_info["method"]
        call = Call(method, await _read_params(request), time.monotonic())
        self.calls.append(call)
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self.faults.take(method)
        if fault is None or fault.after_effect:
            call.status, call.response = await self._dispatch(method, call.params)
        if fault is not None:
            call.status, call.response = None, None
            return await self._fail(request, call, fault)
        self._changed()
        return _json(call.response or {}, call.status or 200)

    async def _dispatch(self, method: str, params: JSON) -> tuple[int, JSON]:
        try:
            if method.lower() == "getupdates":
                result: Any = await self._get_updates(params)
            elif method.lower() in self._methods:
                result = self._methods[method.lower()](params)
            else:
                raise ApiError(404, "Not Found: method not found")
        except ApiError as err:
            return err.code, err.payload()
        return 200, {"ok": True, "result": result}

    async def _fail(self, request: web.Request, call: Call, fault: Fault) -> web.StreamResponse:
        error = self.faults.error(fault)
        if error is not None:
            call.status, call.response = error.code, error.payload()
            self._changed()
            return _json(error.payload(), error.code)
        if fault.kind == "502":
            call.status = 502
            self._changed()
            body = "<html><head><title>502 Bad Gateway</title></head></html>"
            return web.Response(status=502, text=body, content_type="text/html")
        if fault.kind == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.hang)
        self._changed()
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never written: the connection is gone

    async def _on_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.file_path == path:
                return web.Response(
                    body=stored.data, content_type=stored.mime_type or "application/octet-stream"
                )
        return web.Response(status=404, text="Not Found")

    # -- lookups --------------------------------------------------------------------------

    def _find_chat(self, chat_id: Any) -> FakeChat:
        """The chat named by chat_id, refusing unknown and migrated chats as Telegram does."""
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            username = chat_id.removeprefix("@").lower()
            found = [u.id for u in self.users.values() if (u.username or "").lower() == username]
            chat = self.chats.get(found[0]) if found else None
        else:
            chat = self.chats.get(int(chat_id))
        if chat is None:
            raise bad_request("chat not found")
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        return chat

    def _target(self, chat_id: Any) -> FakeChat:
        """A chat the bot may write to now, else Telegram's 403."""
        chat = self._find_chat(chat_id)
        if chat.user is not None:
            if chat.user.blocked:
                raise forbidden("bot was blocked by the user")
            if not chat.user.started:
                raise forbidden("bot can't initiate conversation with a user")
        elif not chat.bot_member:
            raise forbidden(f"bot is not a member of the {chat.type} chat")
        return chat

    def _bot_message(self, params: JSON, key: str = "message_id") -> tuple[FakeChat, JSON]:
        if "inline_message_id" in params:
            raise bad_request("message to edit not found")
        chat = self._find_chat(params.get("chat_id"))
        message = chat.messages.get(int(params.get(key) or 0))
        if message is None:
            raise bad_request("message to edit not found")
        if message["from"]["id"] != self.bot_id:
            raise bad_request("message can't be edited")
        return chat, message

    def _file(self, params: JSON, field: str, folder: str, suffix: str, mime: str) -> StoredFile:
        value = params.get(field)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if isinstance(value, Upload):
            name = value.filename if folder == "documents" else None
            return self.store_file(value.data, folder, suffix, value.content_type or mime, name)
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return self.store_file(b"", folder, suffix, mime, value.rsplit("/", 1)[-1] or None)
        if value is None:
            raise bad_request(f"there is no {field} in the request")
        raise bad_request("wrong file identifier/HTTP URL specified")

    # -- sending --------------------------------------------------------------------------

    def _send(self, params: JSON, fields: JSON, count: int = 1) -> JSON:
        """Store a bot message in chat_id after Telegram's checks; returns the Message."""
        chat = self._target(params.get("chat_id"))
        markup = params.get("reply_markup")
        check_reply_markup(markup)
        reply = self._reply_to(chat, params)
        now = time.monotonic()
        if self.enforce_limits:
            self.limits.check(now, chat.id, chat.is_group, count)
        if reply is not None:
            fields["reply_to_message"] = reply
        if markup and "inline_keyboard" in markup:
            fields["reply_markup"] = markup
        message = self._store(chat, self.bot_user(), fields)
        if markup and "keyboard" in markup:
            self._set_keyboard(chat, markup)
        elif markup and markup.get("remove_keyboard"):
            self._set_keyboard(chat, None)
        if self.enforce_limits:
            self.limits.record(now, chat.id, chat.is_group, count)
        return copy.deepcopy(message)

    def _reply_to(self, chat: FakeChat, params: JSON) -> JSON | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id"):
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply"),
            }
        if not reply:
            return None
        if int(reply["message_id"]) in chat.messages:
            return self._reply_target(chat, int(reply["message_id"]))
        if reply.get("allow_sending_without_reply"):
            return None
        raise bad_request("message to be replied not found")

    def _caption(self, params: JSON) -> JSON:
        if not params.get("caption"):
            return {}
        text, entities = format_text(
            str(params["caption"]),
            params.get("parse_mode"),
            params.get("caption_entities"),
            caption=True,
        )
        return {"caption": text, "caption_entities": entities} if entities else {"caption": text}

    def _m_sendMessage(self, p: JSON) -> JSON:
        text, entities = format_text(
            str(p.get("text") or ""), p.get("parse_mode"), p.get("entities")
        )
        fields: JSON = {"text": text}
        if entities:
            fields["entities"] = entities
        return self._send(p, fields)

    def _m_sendPhoto(self, p: JSON) -> JSON:
        self._find_chat(p.get("chat_id"))
        stored = self._file(p, "photo", "photos", ".jpg", "image/jpeg")
        return self._send(p, {"photo": photo_sizes(stored), **self._caption(p)})

    def _m_sendDocument(self, p: JSON) -> JSON:
        self._find_chat(p.get("chat_id"))
        stored = self._file(p, "document", "documents", "", "application/octet-stream")
        return self._send(p, {"document": file_dict(stored), **self._caption(p)})

    def _m_sendVoice(self, p: JSON) -> JSON:
        self._find_chat(p.get("chat_id"))
        stored = self._file(p, "voice", "voice", ".oga", "audio/ogg")
        voice = {**file_dict(stored), "duration": int(p.get("duration") or 1)}
        return self._send(p, {"voice": voice, **self._caption(p)})

    def _m_sendLocation(self, p: JSON) -> JSON:
        location = {"latitude": float(p["latitude"]), "longitude": float(p["longitude"])}
        return self._send(p, {"location": location})

    def _m_sendMediaGroup(self, p: JSON) -> list[JSON]:
        media = p.get("media") or []
        if not 2 <= len(media) <= 10:
            raise bad_request("wrong number of media in the album")
        chat = self._target(p.get("chat_id"))
        if self.enforce_limits:
            self.limits.check(time.monotonic(), chat.id, chat.is_group, len(media))
        group_id = str(int(time.time() * 1000))
        sent = []
        for item in media:
            item_params = {**p, **item, "media": None, item["type"]: item["media"]}
            if item["type"] == "photo":
                content: JSON = {
                    "photo": photo_sizes(
                        self._file(item_params, "photo", "photos", ".jpg", "image/jpeg")
                    )
                }
            else:
                stored = self._file(
                    item_params, item["type"], "documents", "", "application/octet-stream"
                )
                content = {item["type"]: file_dict(stored)}
            content.update(self._caption(item), media_group_id=group_id)
            sent.append(self._send({**p, "reply_markup": None}, content, count=1))
        return sent

    def _content(self, p: JSON, verb: str) -> JSON:
        source = self._find_chat(p.get("from_chat_id"))
        message = source.messages.get(int(p.get("message_id") or 0))
        if message is None:
            raise bad_request(f"message to {verb} not found")
        content = {k: copy.deepcopy(v) for k, v in message.items() if k not in _HEADER_FIELDS}
        if not any(key in content for key in ("text", "location", "contact", *_MEDIA)):
            raise bad_request(f"message can't be {verb.replace('copy', 'copi')}ed")
        return content | {"_from": message["from"], "_date": message["date"]}

    def _m_copyMessage(self, p: JSON) -> JSON:
        content = self._content(p, "copy")
        del content["_from"], content["_date"]
        if "caption" in p:
            content.pop("caption_entities", None)
            content.pop("caption", None)
            content.update(self._caption(p))
        return {"message_id": self._send(p, content)["message_id"]}

    def _m_forwardMessage(self, p: JSON) -> JSON:
        content = self._content(p, "forward")
        origin = {"type": "user", "sender_user": content.pop("_from"), "date": content.pop("_date")}
        return self._send({**p, "reply_markup": None}, {"forward_origin": origin, **content})

    # -- editing --------------------------------------------------------------------------

    def _edit(self, chat: FakeChat, message: JSON, changes: JSON) -> JSON:
        if all((message.get(key) or None) == (value or None) for key, value in changes.items()):
            raise bad_request(NOT_MODIFIED)
        for key, value in changes.items():
            if value:
                message[key] = value
            else:
                message.pop(key, None)
        message["edit_date"] = int(time.time())
        self._emit(FakeEvent("edit", chat.id, copy.deepcopy(message)))
        return copy.deepcopy(message)

    def _inline_markup(self, p: JSON) -> JSON | None:
        markup = p.get("reply_markup")
        check_reply_markup(markup)
        return markup if markup and "inline_keyboard" in markup else None

    def _m_editMessageText(self, p: JSON) -> JSON:
        chat, message = self._bot_message(p)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text, entities = format_text(
            str(p.get("text") or ""), p.get("parse_mode"), p.get("entities")
        )
        changes = {"text": text, "entities": entities, "reply_markup": self._inline_markup(p)}
        return self._edit(chat, message, changes)

    def _m_editMessageCaption(self, p: JSON) -> JSON:
        chat, message = self._bot_message(p)
        if not any(key in message for key in _MEDIA):
            raise bad_request("there is no caption in the message to edit")
        caption = self._caption(p)
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
            "reply_markup": self._inline_markup(p),
        }
        return self._edit(chat, message, changes)

    def _m_editMessageReplyMarkup(self, p: JSON) -> JSON:
        chat, message = self._bot_message(p)
        return self._edit(chat, message, {"reply_markup": self._inline_markup(p)})

    def _m_deleteMessage(self, p: JSON) -> bool:
        chat = self._find_chat(p.get("chat_id"))
        message_id = int(p.get("message_id") or 0)
        message = chat.messages.get(message_id)
        if message is None:
            raise bad_request("message to delete not found")
        own = message["from"]["id"] == self.bot_id
        if not (own or chat.type == "private" or chat.bot_admin):
            raise bad_request("message can't be deleted")
        del chat.messages[message_id]
        self._emit(FakeEvent("delete", chat.id, data={"message_id": message_id}))
        return True

    # -- callback queries, chat actions ---------------------------------------------------

    def _m_answerCallbackQuery(self, p: JSON) -> bool:
        query_id = str(p.get("callback_query_id") or "")
        if query_id not in self.callback_answers or self.callback_answers[query_id] is not None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        keys = ("text", "show_alert", "url", "cache_time")
        answer = {key: p[key] for key in keys if key in p}
        self.callback_answers[query_id] = answer
        message = self.callback_queries.get(query_id, {}).get("message", {})
        chat_id = message.get("chat", {}).get("id")
        self._emit(FakeEvent("callback_answer", chat_id, data={"query_id": query_id, **answer}))
        return True

    def _m_sendChatAction(self, p: JSON) -> bool:
        chat = self._target(p.get("chat_id"))
        self._emit(FakeEvent("chat_action", chat.id, data={"action": p.get("action")}))
        return True

    # -- chats and members ----------------------------------------------------------------

    def _m_getChat(self, p: JSON) -> JSON:
        chat = self._find_chat(p.get("chat_id"))
        if chat.user is not None and not chat.user.started:
            raise bad_request("chat not found")
        gifts = dict.fromkeys(
            ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription"), False
        )
        gifts["gifts_from_channels"] = False
        extra = {"accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}
        return chat.to_dict() | extra

    def _member(self, chat: FakeChat, user_id: int) -> JSON:
        if user_id == self.bot_id:
            user = self.bot_user()
            if not chat.bot_member:
                return {"status": "left", "user": user}
            if chat.bot_admin:
                return {"status": "administrator", "user": user, **_ADMIN_RIGHTS}
            return {"status": "member", "user": user}
        if user_id not in self.users:
            raise bad_request("user not found")
        user = self.users[user_id].to_dict()
        if user_id == chat.creator and chat.is_group:
            return {"status": "creator", "user": user, "is_anonymous": False}
        if user_id in chat.admins:
            return {"status": "administrator", "user": user, **_ADMIN_RIGHTS}
        if user_id in chat.members:
            return {"status": "member", "user": user}
        return {"status": "left", "user": user}

    def _m_getChatMember(self, p: JSON) -> JSON:
        return self._member(self._find_chat(p.get("chat_id")), int(p.get("user_id") or 0))

    def _m_getChatAdministrators(self, p: JSON) -> list[JSON]:
        chat = self._find_chat(p.get("chat_id"))
        if not chat.is_group:
            raise bad_request("there are no administrators in the private chat")
        ids = ([chat.creator] if chat.creator is not None else []) + sorted(chat.admins)
        ids += [self.bot_id] if chat.bot_admin else []
        return [self._member(chat, user_id) for user_id in dict.fromkeys(ids)]

    def _m_leaveChat(self, p: JSON) -> bool:
        chat = self._find_chat(p.get("chat_id"))
        if not chat.is_group:
            raise bad_request("chat member status can't be changed in private chats")
        if not chat.bot_member:
            raise forbidden(f"bot is not a member of the {chat.type} chat")
        chat.bot_member = False
        self._member_update(chat, self.bot_user(), "member", "left")
        return True

    def _m_getFile(self, p: JSON) -> JSON:
        stored = self.files.get(str(p.get("file_id") or ""))
        if stored is None:
            raise bad_request("invalid file_id")
        if len(stored.data) > 20 * 1024 * 1024:  # what a bot may download
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    # -- the bot itself, updates, webhook -------------------------------------------------

    def _m_getMe(self, p: JSON) -> JSON:
        return self.bot_user() | {
            "can_join_groups": True,
            "can_read_all_group_messages": not self.group_privacy,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, p: JSON) -> list[JSON]:
        """Long polling: confirm below offset, then wait up to timeout for updates."""
        if self.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._set_allowed(p.get("allowed_updates"))
        offset = int(p.get("offset") or 0)
        pending = len(self._updates)
        if offset < 0:
            del self._updates[: max(pending + offset, 0)]
        elif offset:
            self._updates[:] = [u for u in self._updates if u["update_id"] >= offset]
        if len(self._updates) != pending:
            self._changed()  # confirmed: wake wait_for(updates_pending() == 0)
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        self._poll_generation += 1
        generation = self._poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(float(p.get("timeout") or 0), 0.0)
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            remaining = deadline - loop.time()
            if self._updates or remaining <= 0 or self._closing.is_set():
                return copy.deepcopy(self._updates[:limit])
            await self._wait_change(remaining)

    def _set_allowed(self, allowed: Any) -> None:
        if allowed is None:
            return
        self._explicit_allowed = bool(allowed)
        self.allowed_updates = frozenset(allowed) & ALL_UPDATES if allowed else DEFAULT_UPDATES

    def _m_setWebhook(self, p: JSON) -> bool:
        if not p.get("url"):
            return self._m_deleteWebhook(p)
        self._set_allowed(p.get("allowed_updates"))
        if p.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {k: v for k, v in p.items() if not isinstance(v, Upload)}
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.get_running_loop().create_task(self._push_updates())
        self._changed()
        return True

    # -- webhook delivery -----------------------------------------------------------------

    async def _push_updates(self) -> None:
        """As Telegram does with a webhook set: POST each pending update (JSON, the secret in
        X-Telegram-Bot-Api-Secret-Token) until it is answered 200, up to max_connections at
        once and one at a time per chat, retrying the others. With ``webhook_urls`` (a load
        balancer in front of several bot processes) each post goes to the next of them."""
        import aiohttp

        in_flight: dict[int, asyncio.Task[None]] = {}
        turn = 0
        async with aiohttp.ClientSession() as session:
            while self.webhook and not self._closing.is_set():
                most = int(self.webhook.get("max_connections") or 40)
                busy = {_update_chat(u) for u in self._updates if u["update_id"] in in_flight}
                for update in list(self._updates):
                    if len(in_flight) >= most:
                        break
                    chat = _update_chat(update)
                    if update["update_id"] in in_flight or chat in busy:
                        continue
                    busy.add(chat)
                    urls = self.webhook_urls or [str(self.webhook["url"])]
                    url = urls[turn % len(urls)]
                    turn += 1
                    task = asyncio.get_running_loop().create_task(
                        self._post_update(session, url, update)
                    )
                    uid = int(update["update_id"])
                    in_flight[uid] = task
                    task.add_done_callback(partial(_forget, in_flight, uid))
                await self._wait_change(0.2)
            for task in list(in_flight.values()):
                task.cancel()

    async def _post_update(self, session: Any, url: str, update: JSON) -> None:
        import aiohttp

        headers = {}
        secret = (self.webhook or {}).get("secret_token")
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(secret)
        try:
            async with session.post(
                url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=60)
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            status = 0
        self.webhook_posts.append((url, int(update["update_id"]), status))
        if status == 200:
            self._updates[:] = [u for u in self._updates if u["update_id"] != update["update_id"]]
        else:
            await asyncio.sleep(0.5)  # Telegram retries later
        self._changed()

    def _m_deleteWebhook(self, p: JSON) -> bool:
        self.webhook = None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_getWebhookInfo(self, p: JSON) -> JSON:
        info: JSON = {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._explicit_allowed:
            info["allowed_updates"] = sorted(self.allowed_updates)
        return info

    @staticmethod
    def _scope_key(p: JSON) -> tuple[str, str]:
        scope = p.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(p.get("language_code") or "")

    def _m_setMyCommands(self, p: JSON) -> bool:
        commands = p.get("commands") or []
        for command in commands:
            name = str(command.get("command", ""))
            if not (1 <= len(name) <= 32 and name.replace("_", "a").isalnum() and name.islower()):
                raise bad_request("BOT_COMMAND_INVALID")
        self.commands[self._scope_key(p)] = commands
        return True

    def _m_getMyCommands(self, p: JSON) -> list[JSON]:
        return copy.deepcopy(self.commands.get(self._scope_key(p), []))

    def _m_deleteMyCommands(self, p: JSON) -> bool:
        self.commands.pop(self._scope_key(p), None)
        return True

    def _m_setChatMenuButton(self, p: JSON) -> bool:
        chat_id = p.get("chat_id")
        self.menu_buttons[int(chat_id) if chat_id else None] = p.get("menu_button") or {
            "type": "default"
        }
        return True

    def _m_getChatMenuButton(self, p: JSON) -> JSON:
        chat_id = p.get("chat_id")
        key = int(chat_id) if chat_id else None
        return self.menu_buttons.get(key) or self.menu_buttons.get(None) or {"type": "default"}

    def _m_setMyDescription(self, p: JSON) -> bool:
        return True

    def _m_setMyShortDescription(self, p: JSON) -> bool:
        return True

    def _m_setMyName(self, p: JSON) -> bool:
        return True

    def _describe(self) -> str:
        recent = ", ".join(f"{c.method}→{c.status}" for c in self.calls[-8:])
        return f"{super()._describe()}; last calls: {recent or 'none'}"


def _coerce(name: str, value: str) -> Any:
    """A form value as Telegram reads it: strings for text fields, JSON for everything else."""
    if name in _STRING_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def _read_params(request: web.Request) -> JSON:
    """Query string, JSON body or form (urlencoded or multipart with files) as one dict."""
    params: JSON = {key: _coerce(key, value) for key, value in request.query.items()}
    if request.content_type == "application/json" and request.can_read_body:
        body = await request.json()
        if isinstance(body, dict):
            for key, value in body.items():
                params[key] = _coerce(key, value) if isinstance(value, str) else value
    elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = Upload(value.filename, value.content_type, value.file.read())
            else:
                text = value.decode() if isinstance(value, bytes | bytearray) else str(value)
                params[key] = _coerce(key, text)
    return params


def _json(body: JSON, status: int) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _forget(in_flight: dict[int, asyncio.Task[None]], uid: int, _: object) -> None:
    in_flight.pop(uid, None)


def _update_chat(update: JSON) -> int | None:
    """The chat an update belongs to (Telegram sends one chat's updates one at a time)."""
    for key in ("message", "edited_message"):
        if key in update:
            return int(update[key]["chat"]["id"])
    query = update.get("callback_query")
    if query is not None:
        message = query.get("message")
        return int(message["chat"]["id"]) if message else int(query["from"]["id"])
    return None
