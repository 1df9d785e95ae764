"""A fake WeCom server on 127.0.0.1 (aiohttp) for tests, benchmarks and the simulator.

The bot's WeComClient talks to it as to Tencent's host (``base_url`` is a scheme and host; the
paths are ``/cgi-bin/...``). It answers gettoken, message/send, message/update_template_card,
media/upload, media/get, user/simplelist, user/list, tag/get, kf/sync_msg and kf/send_msg, records
every call, and keeps the organisation (departments, tags, members), the members' app chats,
the cards and the 微信客服 customers in memory. It plays the people too: ``member_writes``,
``click`` and ``customer_writes`` post encrypted, signed callbacks to the bot's callback URL as
WeCom does, and a customer's messages are served through kf/sync_msg by cursor.

WeCom's rules the bot must live with are enforced (see
:mod:`bot.channels.simulator.fakewecomstate`): tokens expire; 30 messages a minute to one member
(45009); a card's response_code is good for one update within 72 hours; 微信客服 may send at most
5 messages within 48 hours after the customer's last message (refused beyond with errcode 95026,
the fake's stand-in), and refuses sessions that are not open (95018). Faults are injected with
``fake.faults.inject(path, kind)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from bot.channels.simulator.fakewecomstate import (
    JSON,
    KF_MSGID_TTL,
    KF_MSGID_USED_ERRCODE,
    KF_TOKEN_TTL,
    KF_WINDOW_ERRCODE,
    MEDIA_LIMITS,
    RESPONSE_CODE_TTL,
    STALE_CODE_ERRCODE,
    TOKEN_TTL,
    AppMessage,
    Card,
    FakeMember,
    FakeTag,
    Fault,
    Faults,
    KfCustomer,
    MemberRate,
    ResponseCode,
    WeComApiError,
)
from bot.channels.wecom.crypto import CallbackCrypto

__all__ = ["Call", "CallbackAnswer", "FakeWeCom"]


@dataclass
class Call:
    """One API request as the fake saw it; ``status`` None while running or if dropped."""

    path: str
    query: dict[str, str]
    body: JSON | None
    time: float
    status: int | None = None
    response: JSON | None = None


@dataclass
class CallbackAnswer:
    """What the bot's callback URL answered one posted callback."""

    status: int
    body: bytes
    seconds: float


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml(fields: dict[str, str | int]) -> bytes:
    inner = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}>{_cdata(v)}</{k}>"
        for k, v in fields.items()
    )
    return f"<xml>{inner}</xml>".encode()


class FakeWeCom:
    """The WeCom side: an aiohttp server for the bot's API calls, and the people posting."""

    def __init__(
        self,
        *,
        corp_id: str = "ww0a1b2c3d4e5f6789",
        secret: str = "fake-app-secret",
        agent_id: int = 1000002,
        token: str = "yimiToken2026",
        aes_key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        open_kfid: str = "wkYimiKf0001",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        enforce_limits: bool = True,
        require_sync_token: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.token, self.aes_key = token, aes_key  # what the bot's WECOM_TOKEN / _AES_KEY must be
        self.open_kfid = open_kfid
        self.host = host
        self.latency = latency
        self.enforce_limits = enforce_limits
        self.require_sync_token = require_sync_token
        self._base_clock = clock
        self._offset = 0.0
        self.crypto = CallbackCrypto(token, aes_key, corp_id, clock=self.now)
        self.faults = Faults()
        self.calls: list[Call] = []
        self.callback_url: str | None = None
        self.callback_answers: list[CallbackAnswer] = []
        # The organisation.
        self.departments: dict[int, tuple[str, int]] = {1: ("县政府", 0)}
        self.members: dict[str, FakeMember] = {}
        self.tags: dict[int, FakeTag] = {}
        # What the app sent, per member; cards and their response codes.
        self.chats: dict[str, list[AppMessage]] = defaultdict(list)
        self.cards: dict[str, Card] = {}
        self.codes: dict[str, ResponseCode] = {}
        self.rate = MemberRate()
        # 微信客服.
        self.customers: dict[str, KfCustomer] = {}
        self.kf_log: list[JSON] = []  # what sync_msg serves, oldest first
        self.kf_tokens: dict[str, float] = {}  # event Token → issued at
        self.kf_msgids: dict[str, float] = {}  # msgid → when it was sent
        self.kf_repeats: list[str] = []  # msgids sent again and not delivered
        # Tokens and media.
        self._tokens: dict[str, float] = {}  # access_token → expires at
        self.media: dict[str, tuple[str, str, bytes]] = {}  # media_id → (name, type, data)
        self._ids = itertools.count(1)
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()
        self._listeners: list[Callable[[JSON], None]] = []
        self._routes: dict[str, Callable[[web.Request, Call], Awaitable[JSON | web.Response]]] = {
            "/cgi-bin/gettoken": self._gettoken,
            "/cgi-bin/message/send": self._message_send,
            "/cgi-bin/message/update_template_card": self._update_card,
            "/cgi-bin/media/upload": self._media_upload,
            "/cgi-bin/media/get": self._media_get,
            "/cgi-bin/user/simplelist": self._user_list,
            "/cgi-bin/user/list": self._user_list,
            "/cgi-bin/tag/get": self._tag_get,
            "/cgi-bin/kf/sync_msg": self._kf_sync,
            "/cgi-bin/kf/send_msg": self._kf_send,
        }

    # -- time and lifecycle ---------------------------------------------------------------

    def now(self) -> float:
        """The fake's clock (the base clock plus what ``advance`` added)."""
        return self._base_clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on (token expiry, the 48-hour window, response codes)."""
        self._offset += seconds

    async def start(self) -> None:
        """Listen on host:port (port 0: a free one)."""
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/cgi-bin/{path:.+}", self._on_api)
        self._closing.clear()
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self._requested_port).start()
        self._port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        """Drop hung connections and stop listening."""
        self._closing.set()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWeCom:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def serving(self) -> bool:
        """Whether the server listens (between start and stop)."""
        return self._runner is not None

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError("FakeWeCom is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """For WECOM_API_BASE: scheme and host only."""
        return f"http://{self.host}:{self.port}"

    def subscribe(self, listener: Callable[[JSON], None]) -> Callable[[], None]:
        """Call `listener` with what the app just sent or updated (the simulator's live page):
        ``{"kind": "app", "msgid", "userids"}``, ``{"kind": "card", "msgid", "userids"}`` or
        ``{"kind": "kf", "touser", "msgid"}``. Returns the function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, event: JSON) -> None:
        for listener in list(self._listeners):
            listener(event)

    def calls_to(self, path: str) -> list[Call]:
        """The recorded calls of one path (``message/send`` or ``/cgi-bin/message/send``)."""
        full = path if path.startswith("/cgi-bin/") else "/cgi-bin/" + path
        return [call for call in self.calls if call.path == full]

    def _next(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    # -- the organisation -----------------------------------------------------------------

    def add_department(self, dept_id: int, name: str, parent: int = 1) -> None:
        """A department (a team can be bound to it)."""
        self.departments[dept_id] = (name, parent)

    def add_member(self, userid: str, name: str, departments: list[int] | None = None) -> None:
        """A member of the organisation."""
        self.members[userid] = FakeMember(userid, name, list(departments or [1]))

    def add_tag(
        self, tag_id: int, name: str, userids: list[str], party_ids: list[int] | None = None
    ) -> None:
        """A tag on members (and departments)."""
        self.tags[tag_id] = FakeTag(name, list(userids), list(party_ids or []))

    def add_customer(self, external_userid: str, nickname: str = "") -> KfCustomer:
        """A firm that will write to the 微信客服 account."""
        customer = KfCustomer(external_userid, nickname)
        self.customers[external_userid] = customer
        return customer

    def expire_tokens(self) -> None:
        """Every access_token handed out expires now (the next call meets 42001)."""
        for token in self._tokens:
            self._tokens[token] = self.now() - 1

    # -- HTTP -----------------------------------------------------------------------------

    async def _on_api(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        body: JSON | None = None
        if request.content_type == "application/json":
            with contextlib.suppress(ValueError):
                loaded = json.loads(await request.text() or "null")
                body = loaded if isinstance(loaded, dict) else None
        call = Call(path, dict(request.query), body, time.monotonic())
        self.calls.append(call)
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self.faults.take(path)
        if fault is not None and fault.kind != "lost_answer":
            return await self._fail(request, call, fault)
        handler = self._routes.get(path)
        try:
            if handler is None:
                raise WeComApiError(404, f"invalid url {path}")
            if path != "/cgi-bin/gettoken":
                self._check_token(request.query.get("access_token", ""))
            result = await handler(request, call)
        except WeComApiError as err:
            result = err.payload()
        if fault is not None:  # lost_answer: done, but the answer never arrives
            call.response = result if isinstance(result, dict) else None
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never written: the connection is gone
        if isinstance(result, web.Response):
            call.status = result.status
            return result
        call.status, call.response = 200, result
        return web.json_response(result)

    async def _fail(self, request: web.Request, call: Call, fault: Fault) -> web.StreamResponse:
        error = Faults.error(fault)
        if error is not None:
            if fault.kind == "expired_token":
                self.expire_tokens()
            call.status, call.response = 200, error.payload()
            return web.json_response(error.payload())
        if fault.kind == "500":
            call.status = 502
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        if fault.kind == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.hang)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never written: the connection is gone

    def _check_token(self, token: str) -> None:
        if not token:
            raise WeComApiError(41001, "access_token missing")
        expires = self._tokens.get(token)
        if expires is None:
            raise WeComApiError(40014, "invalid access_token")
        if self.now() >= expires:
            raise WeComApiError(42001, "access_token expired")

    async def _gettoken(self, request: web.Request, call: Call) -> JSON:
        if request.query.get("corpid") != self.corp_id:
            raise WeComApiError(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.secret:
            raise WeComApiError(40001, "invalid credential")
        now = self.now()
        live = [t for t, expires in self._tokens.items() if expires > now]
        token = live[0] if live else self._next("tok-") + "-" + secrets.token_hex(8)
        self._tokens.setdefault(token, now + TOKEN_TTL)
        expires_in = int(self._tokens[token] - now)
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expires_in}

    # -- app messages and cards -----------------------------------------------------------

    async def _message_send(self, request: web.Request, call: Call) -> JSON:
        body = call.body or {}
        if body.get("agentid") != self.agent_id:
            raise WeComApiError(40056, "invalid agentid")
        msgtype = str(body.get("msgtype", ""))
        content = body.get(msgtype)
        if msgtype not in ("text", "markdown", "template_card", "image", "voice", "file", "video"):
            raise WeComApiError(40008, "invalid message type")
        if not isinstance(content, dict):
            raise WeComApiError(40035, f"{msgtype} is missing")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        valid = [u for u in users if u in self.members]
        invalid = [u for u in users if u not in self.members]
        if not valid:
            raise WeComApiError(81013, "user & party & tag all invalid")
        now = self.now()
        if self.enforce_limits:
            self.rate.check(valid, now)
        msgid = self._next("msg-")
        answer: JSON = {"errcode": 0, "errmsg": "ok", "msgid": msgid}
        if invalid:
            answer["invaliduser"] = "|".join(invalid)
        code = ""
        if msgtype == "template_card":
            code = self._new_card(msgid, content, valid, now)
            answer["response_code"] = code
        for userid in valid:
            self.chats[userid].append(AppMessage(userid, msgtype, content, msgid, now, code))
        if self.enforce_limits:
            self.rate.record(valid, now)
        self._notify({"kind": "app", "msgid": msgid, "userids": valid})
        return answer

    def _new_card(self, msgid: str, card: JSON, userids: list[str], now: float) -> str:
        task_id = str(card.get("task_id", ""))
        if card.get("card_type") == "button_interaction":
            if not task_id:
                raise WeComApiError(40035, "task_id is required for button_interaction")
            if any(c.task_id == task_id for c in self.cards.values()):
                raise WeComApiError(40035, f"task_id {task_id} already used")
        views = {u: AppMessage(u, "template_card", card, msgid, now) for u in userids}
        self.cards[msgid] = Card(msgid, task_id, list(userids), views)
        code = self._next("rc-") + "-" + secrets.token_hex(4)
        self.codes[code] = ResponseCode(code, msgid, now)
        return code

    async def _update_card(self, request: web.Request, call: Call) -> JSON:
        body = call.body or {}
        if body.get("agentid") != self.agent_id:
            raise WeComApiError(40056, "invalid agentid")
        code = self.codes.get(str(body.get("response_code", "")))
        if code is None:
            raise WeComApiError(STALE_CODE_ERRCODE, "invalid response_code")
        if code.used:
            raise WeComApiError(STALE_CODE_ERRCODE, "response_code already used")
        if self.now() - code.issued_at > RESPONSE_CODE_TTL:
            raise WeComApiError(STALE_CODE_ERRCODE, "response_code expired")
        card = self.cards[code.msgid]
        userids = [u for u in body.get("userids", []) if u in card.views]
        if body.get("atall"):
            userids = list(card.views)
        if not userids:
            raise WeComApiError(81013, "user & party & tag all invalid")
        if "template_card" in body:
            new = dict(body["template_card"])
            if new.get("replace_text"):  # buttons shown as a grey label instead
                label = {"text": str(new.pop("replace_text")), "disabled": True}
                new |= {"button_list": [], "replace_button": label}
        elif "button" in body:
            old = card.views[userids[0]].content
            label = {"text": body["button"].get("replace_name", ""), "disabled": True}
            new = {**old, "button_list": [], "replace_button": label}
        else:
            raise WeComApiError(40035, "template_card or button is required")
        code.used = True
        for userid in userids:
            view = card.views[userid]
            card.views[userid] = AppMessage(userid, "template_card", new, view.msgid, self.now())
        card.updates.append({"userids": userids, "card": new})
        self._notify({"kind": "card", "msgid": card.msgid, "userids": userids})
        return {"errcode": 0, "errmsg": "ok"}

    def card_of(self, userid: str, task_id: str) -> AppMessage:
        """What one member's card for ``task_id`` shows now."""
        for card in self.cards.values():
            if card.task_id == task_id and userid in card.views:
                return card.views[userid]
        raise LookupError(f"{userid} has no card {task_id}")

    # -- media ----------------------------------------------------------------------------

    async def _media_upload(self, request: web.Request, call: Call) -> JSON:
        kind = request.query.get("type", "")
        if kind not in ("image", "voice", "video", "file"):
            raise WeComApiError(40005, "invalid media type")
        form = await request.post()
        part = form.get("media")
        if not isinstance(part, web.FileField):
            raise WeComApiError(41005, "media data missing")
        data = part.file.read()
        if not data:
            raise WeComApiError(44001, "empty media data")
        limit, errcode = MEDIA_LIMITS[kind]
        if len(data) > limit:
            raise WeComApiError(errcode, f"invalid {kind} size")
        media_id = self._next(f"media-{kind}-")
        self.media[media_id] = (part.filename or "file", part.content_type, data)
        call.body = {"type": kind, "filename": part.filename, "size": len(data)}
        return {
            "errcode": 0,
            "errmsg": "ok",
            "type": kind,
            "media_id": media_id,
            "created_at": str(int(self.now())),
        }

    async def _media_get(self, request: web.Request, call: Call) -> JSON | web.Response:
        stored = self.media.get(request.query.get("media_id", ""))
        if stored is None:
            raise WeComApiError(40007, "invalid media_id")
        name, content_type, data = stored
        disposition = f"attachment; filename=\"{quote(name)}\"; filename*=UTF-8''{quote(name)}"
        return web.Response(
            body=data, content_type=content_type, headers={"Content-Disposition": disposition}
        )

    def store_media(self, name: str, content_type: str, data: bytes, kind: str = "image") -> str:
        """A media file a person sends (its media_id, for a callback or a kf message)."""
        media_id = self._next(f"media-{kind}-")
        self.media[media_id] = (name, content_type, data)
        return media_id

    # -- members --------------------------------------------------------------------------

    def _in_department(self, dept_id: int, *, child: bool) -> set[int]:
        found = {dept_id}
        while child:
            more = {d for d, (_, parent) in self.departments.items() if parent in found} - found
            if not more:
                break
            found |= more
        return found

    async def _user_list(self, request: web.Request, call: Call) -> JSON:
        raw = request.query.get("department_id", "")
        if not raw.isdigit() or int(raw) not in self.departments:
            raise WeComApiError(60123, "invalid party id")
        depts = self._in_department(int(raw), child=request.query.get("fetch_child") == "1")
        detail = request.path.endswith("/user/list")
        users = []
        for member in self.members.values():
            if depts & set(member.departments):
                user: JSON = {
                    "userid": member.userid,
                    "name": member.name,
                    "department": member.departments,
                }
                if detail:
                    user |= {"status": 1, "main_department": member.departments[0]}
                users.append(user)
        return {"errcode": 0, "errmsg": "ok", "userlist": users}

    async def _tag_get(self, request: web.Request, call: Call) -> JSON:
        raw = request.query.get("tagid", "")
        tag = self.tags.get(int(raw)) if raw.isdigit() else None
        if tag is None:
            raise WeComApiError(40068, "invalid tagid")
        users = [
            {"userid": u, "name": self.members[u].name} for u in tag.userids if u in self.members
        ]
        return {
            "errcode": 0,
            "errmsg": "ok",
            "tagname": tag.name,
            "userlist": users,
            "partylist": tag.party_ids,
        }

    # -- 微信客服 ---------------------------------------------------------------------------

    async def _kf_sync(self, request: web.Request, call: Call) -> JSON:
        body = call.body or {}
        token = str(body.get("token", ""))
        issued = self.kf_tokens.get(token)
        expired = issued is None or self.now() - issued > KF_TOKEN_TTL
        if (token or self.require_sync_token) and expired:
            raise WeComApiError(95007, "invalid msg token")
        if body.get("open_kfid") not in (None, "", self.open_kfid):
            raise WeComApiError(95000, "invalid open_kfid")
        cursor = str(body.get("cursor", "") or "")
        start = int(cursor.removeprefix("c")) if cursor.startswith("c") else 0
        limit = max(1, min(1000, int(body.get("limit", 1000) or 1000)))
        page = self.kf_log[start : start + limit]
        end = start + len(page)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "next_cursor": f"c{end}",
            "has_more": int(end < len(self.kf_log)),
            "msg_list": page,
        }

    async def _kf_send(self, request: web.Request, call: Call) -> JSON:
        body = call.body or {}
        if body.get("open_kfid") != self.open_kfid:
            raise WeComApiError(95000, "invalid open_kfid")
        customer = self.customers.get(str(body.get("touser", "")))
        if customer is None:
            raise WeComApiError(40096, "invalid external userid")
        msgtype = str(body.get("msgtype", ""))
        if msgtype not in ("text", "msgmenu", "image", "voice", "file", "video", "link"):
            raise WeComApiError(40008, "invalid message type")
        if not isinstance(body.get(msgtype), dict):
            raise WeComApiError(40035, f"{msgtype} is missing")
        msgid = str(body.get("msgid") or self._next("kfmsg-"))
        used = self.kf_msgids.get(msgid)
        if used is not None and self.now() - used < KF_MSGID_TTL:
            self.kf_repeats.append(msgid)
            raise WeComApiError(KF_MSGID_USED_ERRCODE, f"msgid {msgid} already used")
        if not customer.session_open:
            raise WeComApiError(95018, "send msg session status invalid")
        if customer.window_left(self.now()) <= 0:
            raise WeComApiError(
                KF_WINDOW_ERRCODE,
                "send kf msg out of limit: 5 messages within 48 hours of the customer's message",
            )
        self.kf_msgids[msgid] = self.now()
        customer.sent_since += 1
        customer.received.append({"msgid": msgid, "msgtype": msgtype, msgtype: body[msgtype]})
        self._notify({"kind": "kf", "touser": customer.external_userid, "msgid": msgid})
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    # -- people posting callbacks ---------------------------------------------------------

    async def post_callback(
        self, message: bytes, *, timestamp: int | None = None, nonce: str | None = None
    ) -> CallbackAnswer:
        """POST an encrypted, signed callback to ``callback_url`` as WeCom does."""
        if self.callback_url is None or self._session is None:
            raise RuntimeError("set callback_url and start the fake first")
        stamp = str(int(self.now()) if timestamp is None else timestamp)
        nonce = nonce or str(secrets.randbelow(10**10))
        encrypt, signature = self.crypto.seal(message, stamp, nonce)
        envelope = _xml(
            {"ToUserName": self.corp_id, "AgentID": str(self.agent_id), "Encrypt": encrypt}
        )
        params = {"msg_signature": signature, "timestamp": stamp, "nonce": nonce}
        started = time.monotonic()
        async with self._session.post(self.callback_url, params=params, data=envelope) as resp:
            answer = CallbackAnswer(resp.status, await resp.read(), time.monotonic() - started)
        self.callback_answers.append(answer)
        return answer

    async def verify_url(self, echo: str = "") -> CallbackAnswer:
        """The URL verification WeCom does when an admin saves the callback URL."""
        if self.callback_url is None or self._session is None:
            raise RuntimeError("set callback_url and start the fake first")
        stamp, nonce = str(int(self.now())), str(secrets.randbelow(10**10))
        echostr, signature = self.crypto.seal((echo or secrets.token_hex(8)).encode(), stamp, nonce)
        params = {
            "msg_signature": signature,
            "timestamp": stamp,
            "nonce": nonce,
            "echostr": echostr,
        }
        started = time.monotonic()
        async with self._session.get(self.callback_url, params=params) as resp:
            return CallbackAnswer(resp.status, await resp.read(), time.monotonic() - started)

    def _app_fields(self, userid: str, msgtype: str) -> dict[str, str | int]:
        return {
            "ToUserName": self.corp_id,
            "FromUserName": userid,
            "CreateTime": int(self.now()),
            "MsgType": msgtype,
        }

    async def member_writes(self, userid: str, text: str) -> CallbackAnswer:
        """A member's text in the app chat."""
        fields = self._app_fields(userid, "text")
        fields |= {
            "Content": text,
            "MsgId": str(next(self._ids) + 10**15),
            "AgentID": self.agent_id,
        }
        return await self.post_callback(_xml(fields))

    async def member_sends_media(self, userid: str, kind: str, media_id: str) -> CallbackAnswer:
        """A member's picture, voice or file in the app chat."""
        fields = self._app_fields(userid, kind)
        fields |= {
            "MediaId": media_id,
            "MsgId": str(next(self._ids) + 10**15),
            "AgentID": self.agent_id,
        }
        if kind == "voice":
            fields["Format"] = "amr"
        if kind == "file":
            fields["FileName"] = self.media[media_id][0]
        return await self.post_callback(_xml(fields))

    async def click(self, userid: str, task_id: str, event_key: str) -> CallbackAnswer:
        """A member taps a card button: a template_card_event with a fresh ResponseCode."""
        view = self.card_of(userid, task_id)
        code = self._next("rc-") + "-" + secrets.token_hex(4)
        self.codes[code] = ResponseCode(code, view.msgid, self.now())
        fields = self._app_fields(userid, "event")
        fields |= {
            "Event": "template_card_event",
            "EventKey": event_key,
            "TaskId": task_id,
            "CardType": str(view.content.get("card_type", "")),
            "ResponseCode": code,
            "AgentID": self.agent_id,
        }
        return await self.post_callback(_xml(fields))

    async def customer_writes(
        self,
        external_userid: str,
        text: str = "",
        *,
        menu_id: str = "",
        media: tuple[str, str] | None = None,
    ) -> CallbackAnswer:
        """A firm writes in WeChat (text, a menu tap, or media (kind, media_id)): the message is
        queued for kf/sync_msg, its 48-hour window opens anew, and kf_msg_or_event is posted."""
        customer = self.customers.get(external_userid) or self.add_customer(external_userid)
        now = self.now()
        customer.last_message_at, customer.sent_since = now, 0
        item: JSON = {
            "msgid": self._next("kfin-"),
            "open_kfid": self.open_kfid,
            "external_userid": external_userid,
            "send_time": int(now),
            "origin": 3,
        }
        if media is not None:
            kind, media_id = media
            item |= {"msgtype": kind, kind: {"media_id": media_id}}
        else:
            text_body: dict[str, Any] = {"content": text}
            if menu_id:
                text_body["menu_id"] = menu_id
            item |= {"msgtype": "text", "text": text_body}
        self.kf_log.append(item)
        return await self.announce_kf()

    async def customer_enters(self, external_userid: str, scene_param: str = "") -> CallbackAnswer:
        """A firm opens the 微信客服 chat from a link or QR code (`scene_param` is the link's own
        parameter): an enter_session event is queued for kf/sync_msg and announced."""
        if external_userid not in self.customers:
            self.add_customer(external_userid)
        event: JSON = {
            "event_type": "enter_session",
            "open_kfid": self.open_kfid,
            "external_userid": external_userid,
            "scene": "qrcode",
            "welcome_code": self._next("wc-"),
        }
        if scene_param:
            event["scene_param"] = scene_param
        self.kf_log.append(
            {
                "msgid": self._next("kfin-"),
                "open_kfid": self.open_kfid,
                "external_userid": external_userid,
                "send_time": int(self.now()),
                "origin": 4,
                "msgtype": "event",
                "event": event,
            }
        )
        return await self.announce_kf()

    async def announce_kf(self) -> CallbackAnswer:
        """Post a kf_msg_or_event with a new Token (what WeCom does when messages wait)."""
        token = "ENC" + secrets.token_urlsafe(32)
        self.kf_tokens[token] = self.now()
        fields: dict[str, str | int] = {
            "ToUserName": self.corp_id,
            "CreateTime": int(self.now()),
            "MsgType": "event",
            "Event": "kf_msg_or_event",
            "Token": token,
            "OpenKfId": self.open_kfid,
        }
        return await self.post_callback(_xml(fields))
