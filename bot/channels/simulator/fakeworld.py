"""The chats behind the fake Bot API: users and groups that act, and what each chat shows."""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from bot.channels.simulator.fakerules import JSON, utf16_len

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
EventKind = Literal[
    "message", "edit", "delete", "callback_answer", "chat_action", "keyboard", "update"
]
ALL_UPDATES = frozenset(
    "message edited_message channel_post edited_channel_post business_connection "  # noqa: SIM905
    "business_message edited_business_message deleted_business_messages message_reaction "
    "message_reaction_count inline_query chosen_inline_result callback_query shipping_query "
    "pre_checkout_query purchased_paid_media poll poll_answer my_chat_member chat_member "
    "chat_join_request chat_boost removed_chat_boost".split()
)
# What Telegram sends when allowed_updates was never set (or set to []).
DEFAULT_UPDATES = ALL_UPDATES - {"chat_member", "message_reaction", "message_reaction_count"}
_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


@dataclass
class FakeUser:
    """A Telegram user the fake knows; ``started`` once they pressed START in the bot's chat."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "zh-hans"
    started: bool = True
    blocked: bool = False

    def to_dict(self) -> JSON:
        """The User object as Telegram sends it."""
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                user[key] = getattr(self, key)
        return user


@dataclass
class FakeChat:
    """A private chat, group or supergroup, with its messages as its members see them now."""

    id: int
    type: Literal["private", "group", "supergroup"]
    title: str | None = None
    user: FakeUser | None = None
    members: set[int] = field(default_factory=set)
    admins: set[int] = field(default_factory=set)
    creator: int | None = None
    bot_member: bool = True
    bot_admin: bool = False
    migrated_to: int | None = None
    messages: dict[int, JSON] = field(default_factory=dict)
    last_message_id: int = 0
    keyboard: JSON | None = None

    @property
    def is_group(self) -> bool:
        """A group or supergroup (where the per-group rate limit applies)."""
        return self.type != "private"

    def to_dict(self) -> JSON:
        """The Chat object as embedded in messages."""
        if self.user is not None:
            user = self.user.to_dict()
            user.pop("is_bot")
            user.pop("language_code", None)
            return {**user, "type": "private"}
        return {"id": self.id, "type": self.type, "title": self.title}


@dataclass
class FakeEvent:
    """Something a chat window would show: a new, edited or deleted message, an answer ..."""

    kind: EventKind
    chat_id: int | None
    message: JSON | None = None
    data: JSON = field(default_factory=dict)

    def to_dict(self) -> JSON:
        """JSON for a browser."""
        return {"kind": self.kind, "chat_id": self.chat_id, "message": self.message, **self.data}


@dataclass
class StoredFile:
    """Bytes behind a file_id, served at base_file_url."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str | None = None
    file_name: str | None = None


class FakeWorld:
    """Users, chats, files and the update queue; the user side of the fake Bot API.

    Methods that play users (``send_text``, ``press_button`` ...) are synchronous: they change
    the world, queue the update the bot will receive and wake any long poll.
    """

    def __init__(
        self, *, bot_id: int, bot_username: str, bot_name: str, group_privacy: bool
    ) -> None:
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.group_privacy = group_privacy
        self.users: dict[int, FakeUser] = {}
        self.chats: dict[int, FakeChat] = {}
        self.files: dict[str, StoredFile] = {}
        self.callback_queries: dict[str, JSON] = {}
        self.callback_answers: dict[str, JSON | None] = {}
        self.allowed_updates: frozenset[str] = DEFAULT_UPDATES
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._query_ids = itertools.count(4_000_000_001)
        self._waiters: set[asyncio.Future[None]] = set()
        self._subscribers: list[Callable[[FakeEvent], None]] = []

    # -- setup ----------------------------------------------------------------------------

    def add_user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        started: bool = True,
        language_code: str | None = "zh-hans",
    ) -> FakeUser:
        """A user and their private chat with the bot (``started``: the bot may write first)."""
        user = FakeUser(user_id, first_name, last_name, username, language_code, started)
        self.users[user_id] = user
        self.chats[user_id] = FakeChat(user_id, "private", user=user, members={user_id})
        return user

    def add_group(
        self,
        chat_id: int,
        title: str,
        members: list[int],
        supergroup: bool = False,
        *,
        admins: list[int] | None = None,
        bot_admin: bool = False,
    ) -> FakeChat:
        """A group (negative id) with the bot in it; the first admin (or member) is its creator."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        for user_id in members:
            self._user(user_id)
        admin_ids = list(admins or [])
        chat = FakeChat(
            chat_id,
            "supergroup" if supergroup else "group",
            title=title,
            members=set(members) | set(admin_ids),
            admins=set(admin_ids),
            creator=admin_ids[0] if admin_ids else (members[0] if members else None),
            bot_admin=bot_admin,
        )
        self.chats[chat_id] = chat
        return chat

    def add_member(self, chat_id: int, user_id: int) -> JSON:
        """A user joins a group: the ``new_chat_members`` service message."""
        chat = self._chat(chat_id)
        user = self._user(user_id)
        chat.members.add(user_id)
        return self._user_message(chat, user, {"new_chat_members": [user.to_dict()]})

    def remove_member(self, chat_id: int, user_id: int) -> JSON:
        """A user leaves a group: the ``left_chat_member`` service message."""
        chat = self._chat(chat_id)
        user = self._user(user_id)
        message = self._user_message(chat, user, {"left_chat_member": user.to_dict()})
        chat.members.discard(user_id)
        chat.admins.discard(user_id)
        return message

    def start_private(self, user_id: int, payload: str | None = None) -> JSON:
        """The user presses START: marks them started and sends ``/start [payload]``."""
        user = self._user(user_id)
        user.started = True
        self._set_blocked(user, False)
        return self.send_text(user_id, user_id, f"/start {payload}" if payload else "/start")

    def block_bot(self, user_id: int) -> None:
        """The user blocks the bot: sends fail with 403 and a my_chat_member update is queued."""
        self._set_blocked(self._user(user_id), True)

    # -- users act ------------------------------------------------------------------------

    def send_text(
        self, chat_id: int, from_user_id: int, text: str, reply_to_message_id: int | None = None
    ) -> JSON:
        """A user sends text (commands, also ``/cmd@bot``, get bot_command entities)."""
        fields: JSON = {"text": text}
        entities = _command_entities(text)
        if entities:
            fields["entities"] = entities
        return self.send_message(chat_id, from_user_id, reply_to_message_id, **fields)

    def send_photo(
        self,
        chat_id: int,
        user_id: int,
        photo_bytes: bytes,
        caption: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSON:
        """A user sends a picture; getFile and the file URL serve its bytes."""
        stored = self.store_file(photo_bytes, "photos", ".jpg", "image/jpeg")
        fields: JSON = {"photo": photo_sizes(stored)}
        if caption:
            fields["caption"] = caption
        return self.send_message(chat_id, user_id, reply_to_message_id, **fields)

    def send_document(
        self,
        chat_id: int,
        user_id: int,
        data: bytes,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> JSON:
        """A user sends a file."""
        stored = self.store_file(data, "documents", "", mime_type, file_name)
        fields: JSON = {"document": file_dict(stored)}
        if caption:
            fields["caption"] = caption
        return self.send_message(chat_id, user_id, **fields)

    def send_voice(self, chat_id: int, user_id: int, data: bytes, duration: int = 3) -> JSON:
        """A user sends a voice note."""
        stored = self.store_file(data, "voice", ".oga", "audio/ogg")
        return self.send_message(
            chat_id, user_id, voice={**file_dict(stored), "duration": duration}
        )

    def send_location(self, chat_id: int, user_id: int, lat: float, lon: float) -> JSON:
        """A user shares a location."""
        return self.send_message(chat_id, user_id, location={"latitude": lat, "longitude": lon})

    def send_contact(
        self,
        chat_id: int,
        user_id: int,
        phone_number: str,
        first_name: str,
        contact_user_id: int | None = None,
        last_name: str | None = None,
    ) -> JSON:
        """A user shares a contact (their own: ``contact_user_id`` = their id)."""
        contact: JSON = {"phone_number": phone_number, "first_name": first_name}
        if last_name:
            contact["last_name"] = last_name
        if contact_user_id is not None:
            contact["user_id"] = contact_user_id
        return self.send_message(chat_id, user_id, contact=contact)

    def send_sticker(self, chat_id: int, user_id: int, emoji: str = "👍") -> JSON:
        """A user sends a sticker."""
        stored = self.store_file(b"RIFF\x00\x00\x00\x00WEBP", "stickers", ".webp", "image/webp")
        sticker = {**file_dict(stored), "type": "regular", "width": 512, "height": 512}
        sticker.update(is_animated=False, is_video=False, emoji=emoji)
        return self.send_message(chat_id, user_id, sticker=sticker)

    def send_message(
        self, chat_id: int, user_id: int, reply_to_message_id: int | None = None, **fields: Any
    ) -> JSON:
        """A user sends any message; ``fields`` are Message fields (poll, forward_origin ...)."""
        chat = self._chat(chat_id)
        user = self._user(user_id)
        if user_id not in chat.members:
            raise ValueError(f"user {user_id} is not in chat {chat_id}")
        if reply_to_message_id is not None:
            fields["reply_to_message"] = self._reply_target(chat, reply_to_message_id)
        if chat.type == "private":
            user.started = True
            self._set_blocked(user, False)
        if chat.keyboard and chat.keyboard.get("one_time_keyboard"):
            self._set_keyboard(chat, None)
        return self._user_message(chat, user, fields)

    def edit_text(self, chat_id: int, message_id: int, new_text: str) -> JSON:
        """The sender edits their text message: an ``edited_message`` update."""
        chat = self._chat(chat_id)
        message = self._message(chat, message_id)
        if message["from"]["id"] == self.bot_id:
            raise ValueError("users cannot edit the bot's messages")
        message["text"] = new_text
        message.pop("entities", None)
        if entities := _command_entities(new_text):
            message["entities"] = entities
        message["edit_date"] = int(time.time())
        self._emit(FakeEvent("edit", chat_id, copy.deepcopy(message)))
        if self._bot_receives(chat, message):
            self.add_raw_update({"edited_message": copy.deepcopy(message)})
        return copy.deepcopy(message)

    def press_button(
        self, chat_id: int, user_id: int, message_id: int, callback_data: str, check: bool = True
    ) -> str:
        """A user presses an inline button; returns the callback query id.

        With ``check`` the message must show a button with this data; ``check=False`` forges
        the press (stale or tampered callback data).
        """
        chat = self._chat(chat_id)
        user = self._user(user_id)
        message = self._message(chat, message_id)
        if check:
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            if not any(b.get("callback_data") == callback_data for row in rows for b in row):
                raise ValueError(f"message {message_id} has no button {callback_data!r}")
        query_id = str(next(self._query_ids))
        self.callback_answers[query_id] = None
        query: JSON = {
            "id": query_id,
            "from": user.to_dict(),
            "message": copy.deepcopy(message),
            "chat_instance": str(abs(chat_id) * 7919 % 10**12),
            "data": callback_data,
        }
        self.callback_queries[query_id] = query
        self.add_raw_update({"callback_query": copy.deepcopy(query)})
        return query_id

    def migrate_group_to_supergroup(self, old_chat_id: int, new_chat_id: int | None = None) -> int:
        """Upgrade a group: migrate_to_chat_id in the old chat, migrate_from_chat_id in the new."""
        old = self._chat(old_chat_id)
        if old.type != "group":
            raise ValueError(f"chat {old_chat_id} is not a basic group")
        new_id = new_chat_id or int(f"-100{abs(old_chat_id)}")
        new = FakeChat(
            new_id,
            "supergroup",
            title=old.title,
            members=set(old.members),
            admins=set(old.admins),
            creator=old.creator,
            bot_member=old.bot_member,
            bot_admin=old.bot_admin,
        )
        self.chats[new_id] = new
        actor = self._user(old.creator) if old.creator is not None else None
        self._service_message(old, actor, {"migrate_to_chat_id": new_id})
        old.migrated_to = new_id
        self._service_message(new, actor, {"migrate_from_chat_id": old_chat_id})
        return new_id

    def add_raw_update(self, update: JSON) -> int:
        """Queue any update dict (update_id is assigned if missing); returns its update_id."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        kind = next((key for key in update if key != "update_id"), "")
        if kind in self.allowed_updates:
            self._updates.append(update)
            self._emit(FakeEvent("update", None, data={"update": update}))
        self._changed()
        return int(update["update_id"])

    # -- observation ----------------------------------------------------------------------

    def chat_messages(self, chat_id: int) -> list[JSON]:
        """The chat as it displays now: edits applied, deletions gone, user and bot messages."""
        return copy.deepcopy(list(self._chat(chat_id).messages.values()))

    def reply_keyboard(self, chat_id: int) -> JSON | None:
        """The reply keyboard the bot last set in the chat (None once removed)."""
        return copy.deepcopy(self._chat(chat_id).keyboard)

    def callback_answer(self, query_id: str) -> JSON | None:
        """The bot's answerCallbackQuery parameters for a press (None: not answered yet)."""
        return self.callback_answers.get(query_id)

    def updates_pending(self) -> int:
        """Updates queued and not yet confirmed by the bot."""
        return len(self._updates)

    async def wait_for(self, predicate: Callable[[], _T | None], timeout: float = 5.0) -> _T:
        """Wait until ``predicate()`` is truthy after some change; return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met in {timeout} s; {self._describe()}")
            await self._wait_change(remaining)

    async def wait_for_message(
        self,
        chat_id: int,
        contains: str | None = None,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 5.0,
        *,
        after: int | None = None,
        from_bot: bool = True,
    ) -> JSON:
        """The newest message shown in the chat (from the bot, id > ``after``) that matches."""

        def find() -> JSON | None:
            for message in reversed(self.chat_messages(chat_id)):
                if from_bot != (message.get("from", {}).get("id") == self.bot_id):
                    continue
                if after is not None and message["message_id"] <= after:
                    continue
                body = message.get("text") or message.get("caption") or ""
                if contains is not None and contains not in body:
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        return await self.wait_for(find, timeout)

    def subscribe(self, callback: Callable[[FakeEvent], None]) -> Callable[[], None]:
        """Call ``callback`` on every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    async def events(self) -> AsyncIterator[FakeEvent]:
        """Every event from now on, for pushing live to a browser."""
        queue: asyncio.Queue[FakeEvent] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    # -- files ----------------------------------------------------------------------------

    def store_file(
        self,
        data: bytes,
        folder: str,
        suffix: str,
        mime_type: str | None = None,
        file_name: str | None = None,
    ) -> StoredFile:
        """Keep bytes under a new file_id."""
        n = next(self._file_ids)
        name = file_name or f"file_{n}{suffix}"
        stored = StoredFile(
            f"{folder[:2].upper()}AgAD{n:06d}", f"AQAD{n:06d}", f"{folder}/{name}", data
        )
        stored.mime_type, stored.file_name = mime_type, file_name
        self.files[stored.file_id] = stored
        return stored

    # -- internals shared with the Bot API side -------------------------------------------

    def _user(self, user_id: int) -> FakeUser:
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}: add_user first")
        return self.users[user_id]

    def _chat(self, chat_id: int) -> FakeChat:
        if chat_id not in self.chats:
            raise KeyError(f"unknown chat {chat_id}: add_user/add_group first")
        return self.chats[chat_id]

    def _message(self, chat: FakeChat, message_id: int) -> JSON:
        if message_id not in chat.messages:
            raise KeyError(f"no message {message_id} in chat {chat.id}")
        return chat.messages[message_id]

    def _reply_target(self, chat: FakeChat, message_id: int) -> JSON:
        target = copy.deepcopy(self._message(chat, message_id))
        target.pop("reply_to_message", None)
        return target

    def bot_user(self) -> JSON:
        """The bot as the User in its messages' ``from``."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }

    def _store(self, chat: FakeChat, sender: JSON, fields: JSON) -> JSON:
        chat.last_message_id += 1
        message: JSON = {
            "message_id": chat.last_message_id,
            "from": sender,
            "chat": chat.to_dict(),
            "date": int(time.time()),
            **fields,
        }
        chat.messages[message["message_id"]] = message
        self._emit(FakeEvent("message", chat.id, copy.deepcopy(message)))
        return message

    def _user_message(self, chat: FakeChat, user: FakeUser, fields: JSON) -> JSON:
        message = self._store(chat, user.to_dict(), fields)
        if self._bot_receives(chat, message):
            self.add_raw_update({"message": copy.deepcopy(message)})
        return copy.deepcopy(message)

    def _service_message(self, chat: FakeChat, actor: FakeUser | None, fields: JSON) -> None:
        sender = actor.to_dict() if actor else self.bot_user()
        message = self._store(chat, sender, fields)
        if chat.bot_member:
            self.add_raw_update({"message": copy.deepcopy(message)})

    def _bot_receives(self, chat: FakeChat, message: JSON) -> bool:
        """Whether the bot gets this user message (group privacy mode, membership)."""
        if chat.type == "private":
            return not (chat.user and chat.user.blocked)
        if not chat.bot_member or chat.migrated_to is not None:
            return False
        if not self.group_privacy or chat.bot_admin:
            return True
        text = message.get("text", "")
        addressed = f"@{self.bot_username}".lower()
        command = _COMMAND.match(text)
        replied = message.get("reply_to_message", {}).get("from", {}).get("id") == self.bot_id
        is_service = "text" not in message and any(
            k in message for k in ("new_chat_members", "left_chat_member", "migrate_to_chat_id")
        )
        is_command = command is not None and (
            "@" not in command[0] or command[0].lower().endswith(addressed)
        )
        return is_command or replied or is_service

    def _set_blocked(self, user: FakeUser, blocked: bool) -> None:
        if user.blocked == blocked:
            return
        user.blocked = blocked
        before, after = ("member", "kicked") if blocked else ("kicked", "member")
        self._member_update(self.chats[user.id], user.to_dict(), before, after)

    def _member_update(self, chat: FakeChat, actor: JSON, before: str, after: str) -> None:
        """Queue a my_chat_member update: the bot's status in the chat changed."""
        bot = self.bot_user()
        change: JSON = {
            "chat": chat.to_dict(),
            "from": actor,
            "date": int(time.time()),
            "old_chat_member": {"status": before, "user": bot},
            "new_chat_member": {"status": after, "user": bot}
            | ({"until_date": 0} if after == "kicked" else {}),
        }
        self.add_raw_update({"my_chat_member": change})

    def _set_keyboard(self, chat: FakeChat, keyboard: JSON | None) -> None:
        chat.keyboard = keyboard
        self._emit(FakeEvent("keyboard", chat.id, data={"keyboard": keyboard}))

    def _emit(self, event: FakeEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must not break the Bot API
                logger.exception("fake Bot API subscriber failed on %s", event.kind)
        self._changed()

    def _changed(self) -> None:
        """Wake long polls and wait_for: something changed."""
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait_change(self, timeout: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    def _describe(self) -> str:
        return f"{len(self._updates)} updates pending"


def _command_entities(text: str) -> list[JSON]:
    """bot_command entities for each /command in the text, as Telegram adds them."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: match.start()]),
            "length": utf16_len(match[0]),
        }
        for match in _COMMAND.finditer(text)
    ]


def file_dict(stored: StoredFile) -> JSON:
    """The common fields of Document, Voice, Sticker ... for a stored file."""
    result: JSON = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
    }
    if stored.file_name:
        result["file_name"] = stored.file_name
    if stored.mime_type:
        result["mime_type"] = stored.mime_type
    return result


def photo_sizes(stored: StoredFile) -> list[JSON]:
    """A photo as Telegram lists it (one size here: the original bytes)."""
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "width": 1280,
            "height": 960,
        }
    ]
