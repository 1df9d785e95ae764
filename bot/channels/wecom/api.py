"""The WeCom API client (httpx): access_token, app messages and cards, media, members, 微信客服.

Calls go to ``base_url + "/cgi-bin/..."`` exactly as on Tencent's host (``WECOM_API_BASE`` is a
scheme and host: Tencent's, a 政务微信 host or the fake server). The access_token is fetched once,
cached, refreshed ``refresh_margin`` seconds before it expires, and on 40014 / 42001 / 40001 a
call gets a fresh one and is tried once more; a Sender never sees token errors. The URL carries
the token, so httpx's request log must stay below INFO (bot/cli.py sets it to WARNING).

Everything else that goes wrong is raised as one of these, for a delivery loop to act on::

    WeComError
     ├── RetryAfter(seconds)   45009 / 45011 / 45033 frequency caps, -1 busy, HTTP 5xx, timeouts,
     │                         connection errors: send again later
     ├── OutOfWindow           微信客服: the 5 messages in the 48 hours after the firm's last
     │                         message are used up: keep it until the firm writes again
     ├── Undeliverable         this recipient cannot get it (member not found or not visible to
     │                         the app, the kf session refuses API messages): tell coordinators
     ├── AlreadySent           微信客服: a msgid the bot chose was used before: that message
     │                         reached the firm already (the client answers it as sent)
     ├── CardStale             update_template_card refused (response_code used or expired):
     │                         send a new card instead
     └── Refused(errcode)      any other error: a bad request or configuration, not retried
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from urllib.parse import unquote

import httpx

from bot.channels.wecom.apidata import (
    CARD_UPDATE,
    DEFAULT_BASE,
    JSON,
    KF_SEND,
    TOKEN_ERRCODES,
    TRANSIENT_SECONDS,
    AlreadySent,
    CardStale,
    KfBatch,
    KfMessage,
    Media,
    Member,
    MenuItem,
    OutOfWindow,
    Refused,
    RetryAfter,
    SendResult,
    TagMembers,
    Undeliverable,
    WeComError,
    classify_error,
)

__all__ = [
    "DEFAULT_BASE",
    "AlreadySent",
    "CardStale",
    "KfBatch",
    "KfMessage",
    "Media",
    "Member",
    "MenuItem",
    "OutOfWindow",
    "Refused",
    "RetryAfter",
    "SendResult",
    "TagMembers",
    "Undeliverable",
    "WeComClient",
    "WeComError",
    "classify_error",
]

logger = logging.getLogger(__name__)

_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


class WeComClient:
    """One self-built app's calls: ``agent_id`` sends app messages, the same token serves kf."""

    def __init__(
        self,
        corp_id: str,
        secret: str,
        *,
        agent_id: int | None = None,
        base_url: str = DEFAULT_BASE,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.corp_id = corp_id
        self._secret = secret
        self.agent_id = agent_id
        self.base_url = base_url.rstrip("/")
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.token_fetches = 0

    async def aclose(self) -> None:
        """Close the HTTP client if this client made it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> WeComClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- access_token ---------------------------------------------------------------------

    def _fresh(self) -> str | None:
        if self._token and self._clock() < self._expires_at - self.refresh_margin:
            return self._token
        return None

    async def access_token(self) -> str:
        """The cached token, fetched again when it is near its expiry (one fetch at a time)."""
        token = self._fresh()
        if token is not None:
            return token
        async with self._lock:
            token = self._fresh()
            if token is not None:
                return token
            params = {"corpid": self.corp_id, "corpsecret": self._secret}
            response = await self._send("GET", "/cgi-bin/gettoken", params=params)
            data = self._json("/cgi-bin/gettoken", response)
            errcode = int(data.get("errcode", 0))
            if errcode:
                error = classify_error("/cgi-bin/gettoken", errcode, str(data.get("errmsg", "")))
                if isinstance(error, RetryAfter):
                    raise error
                raise Refused(f"gettoken refused (check WECOM_CORP_ID / WECOM_SECRET): {error}")
            self._token = str(data["access_token"])
            self._expires_at = self._clock() + float(data.get("expires_in", 7200))
            self.token_fetches += 1
            logger.info("wecom access_token fetched, valid %ss", data.get("expires_in", 7200))
            return self._token

    def _invalidate(self, token: str) -> None:
        # Only the token that failed: another call may already have fetched a newer one.
        if self._token == token:
            self._token = None

    # -- transport ------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: JSON | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method, self.base_url + path, params=params, json=json, files=files
            )
        except httpx.TimeoutException as exc:
            raise RetryAfter(TRANSIENT_SECONDS, f"{path}: timed out") from exc
        except httpx.TransportError as exc:
            raise RetryAfter(TRANSIENT_SECONDS, f"{path}: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise RetryAfter(TRANSIENT_SECONDS, f"{path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise Refused(f"{path}: HTTP {response.status_code}")
        return response

    @staticmethod
    def _json(path: str, response: httpx.Response) -> JSON:
        try:
            data = response.json()
        except ValueError as exc:
            raise RetryAfter(TRANSIENT_SECONDS, f"{path}: answer is not JSON") from exc
        if not isinstance(data, dict):
            raise RetryAfter(TRANSIENT_SECONDS, f"{path}: answer is not a JSON object")
        return data

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: JSON | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        binary: bool = False,
    ) -> httpx.Response:
        """One call with the token; a token error gets a fresh token and one more try."""
        for attempt in range(2):
            token = await self.access_token()
            query = {**(params or {}), "access_token": token}
            response = await self._send(method, path, params=query, json=json, files=files)
            if binary and not response.headers.get("content-type", "").startswith(
                ("application/json", "text/plain")
            ):
                return response
            data = self._json(path, response)
            errcode = int(data.get("errcode", 0))
            if errcode in TOKEN_ERRCODES and attempt == 0:
                logger.info("wecom access_token refused (errcode %s); fetching a new one", errcode)
                self._invalidate(token)
                continue
            if errcode:
                raise classify_error(path, errcode, str(data.get("errmsg", "")))
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post(self, path: str, body: JSON) -> JSON:
        return self._json(path, await self._call("POST", path, json=body))

    async def _get(self, path: str, params: dict[str, str]) -> JSON:
        return self._json(path, await self._call("GET", path, params=params))

    # -- app messages and cards -----------------------------------------------------------

    def _agent(self) -> int:
        if self.agent_id is None:
            raise Refused("WECOM_AGENT_ID is not set: app messages need it")
        return self.agent_id

    async def _message(self, touser: Sequence[str], msgtype: str, content: JSON) -> SendResult:
        users = list(touser)
        body: JSON = {
            "touser": "|".join(users),
            "msgtype": msgtype,
            "agentid": self._agent(),
            msgtype: content,
        }
        data = await self._post("/cgi-bin/message/send", body)
        invalid = tuple(u for u in str(data.get("invaliduser", "")).split("|") if u)
        if invalid and set(invalid) >= set(users):
            raise Undeliverable(f"message/send: no valid recipient ({', '.join(invalid)})", 81013)
        return SendResult(str(data.get("msgid", "")), str(data.get("response_code", "")), invalid)

    async def send_text(self, touser: Sequence[str], content: str) -> SendResult:
        """A text message in the members' app chat."""
        return await self._message(touser, "text", {"content": content})

    async def send_markdown(self, touser: Sequence[str], content: str) -> SendResult:
        """A markdown message (WeCom's subset) in the members' app chat."""
        return await self._message(touser, "markdown", {"content": content})

    async def send_template_card(self, touser: Sequence[str], card: JSON) -> SendResult:
        """A template card; ``response_code`` in the result allows one update of it."""
        return await self._message(touser, "template_card", card)

    async def send_media(self, touser: Sequence[str], kind: str, media_id: str) -> SendResult:
        """An uploaded image, voice, video or file."""
        return await self._message(touser, kind, {"media_id": media_id})

    async def update_template_card(
        self,
        userids: Sequence[str],
        response_code: str,
        *,
        card: JSON | None = None,
        replace_name: str | None = None,
    ) -> None:
        """Replace the cards of ``userids`` (one use of response_code): a new card or a button
        turned into an unclickable label."""
        body: JSON = {
            "userids": list(userids),
            "agentid": self._agent(),
            "response_code": response_code,
        }
        if card is not None:
            body["template_card"] = card
        elif replace_name is not None:
            body["button"] = {"replace_name": replace_name}
        else:
            raise ValueError("update_template_card needs a card or a replace_name")
        await self._post(CARD_UPDATE, body)

    # -- media ----------------------------------------------------------------------------

    async def upload_media(self, kind: str, filename: str, data: bytes, content_type: str) -> str:
        """A temporary media file (kept 3 days by WeCom); its media_id."""
        response = await self._call(
            "POST",
            "/cgi-bin/media/upload",
            params={"type": kind},
            files={"media": (filename, data, content_type)},
        )
        return str(self._json("/cgi-bin/media/upload", response)["media_id"])

    async def get_media(self, media_id: str) -> Media:
        """Download a media file a member or a firm sent."""
        response = await self._call(
            "GET", "/cgi-bin/media/get", params={"media_id": media_id}, binary=True
        )
        found = _FILENAME.search(response.headers.get("content-disposition", ""))
        return Media(
            response.content,
            response.headers.get("content-type", "application/octet-stream"),
            unquote(found.group(1)) if found else media_id,
        )

    # -- members --------------------------------------------------------------------------

    async def department_members(
        self, department_id: int, *, detail: bool = False, fetch_child: bool = False
    ) -> list[Member]:
        """A department's members (user/list with ``detail``, else user/simplelist)."""
        path = "/cgi-bin/user/list" if detail else "/cgi-bin/user/simplelist"
        data = await self._get(
            path, {"department_id": str(department_id), "fetch_child": str(int(fetch_child))}
        )
        return [
            Member(
                str(user["userid"]),
                str(user.get("name", "")),
                tuple(int(d) for d in user.get("department", [])),
            )
            for user in data.get("userlist", [])
        ]

    async def tag_members(self, tag_id: int) -> TagMembers:
        """tag/get: who carries the tag, and which departments do."""
        data = await self._get("/cgi-bin/tag/get", {"tagid": str(tag_id)})
        return TagMembers(
            str(data.get("tagname", "")),
            tuple(str(user["userid"]) for user in data.get("userlist", [])),
            tuple(int(party) for party in data.get("partylist", [])),
        )

    # -- 微信客服 ---------------------------------------------------------------------------

    async def kf_sync(
        self, token: str, open_kfid: str, cursor: str = "", limit: int = 1000
    ) -> KfBatch:
        """One page of kf/sync_msg, with the Token of the event that announced the messages."""
        body: JSON = {"token": token, "open_kfid": open_kfid, "limit": limit, "voice_format": 0}
        if cursor:
            body["cursor"] = cursor
        data = await self._post("/cgi-bin/kf/sync_msg", body)
        return KfBatch(
            tuple(KfMessage.from_json(item) for item in data.get("msg_list", [])),
            str(data.get("next_cursor", "") or cursor),
            bool(data.get("has_more", 0)),
        )

    async def kf_sync_all(
        self, token: str, open_kfid: str, cursor: str = "", limit: int = 1000
    ) -> AsyncIterator[KfBatch]:
        """Every page from ``cursor`` on (has_more); store each page and its cursor before the
        next is asked for, so a restart resumes where the last stored page ended."""
        while True:
            batch = await self.kf_sync(token, open_kfid, cursor, limit)
            yield batch
            if not batch.has_more or batch.next_cursor == cursor:
                return
            cursor = batch.next_cursor

    async def _kf_send(
        self, touser: str, open_kfid: str, msgtype: str, content: JSON, msgid: str | None
    ) -> str:
        body: JSON = {"touser": touser, "open_kfid": open_kfid, "msgtype": msgtype}
        body[msgtype] = content
        if msgid:
            body["msgid"] = msgid
        try:
            return str((await self._post(KF_SEND, body)).get("msgid", ""))
        except AlreadySent:
            if not msgid:
                raise
            logger.info("kf msgid %s was delivered before; not sent again", msgid)
            return msgid

    async def kf_send_text(
        self, touser: str, open_kfid: str, content: str, *, msgid: str | None = None
    ) -> str:
        """A text to a firm in WeChat; the msgid WeCom gives it."""
        return await self._kf_send(touser, open_kfid, "text", {"content": content}, msgid)

    async def kf_send_menu(
        self,
        touser: str,
        open_kfid: str,
        items: Sequence[MenuItem],
        *,
        head: str = "",
        tail: str = "",
        msgid: str | None = None,
    ) -> str:
        """A msgmenu: the choices the firm can tap (buttons on WeChat)."""
        menu: JSON = {
            "list": [{"type": "click", "click": {"id": i.id, "content": i.content}} for i in items]
        }
        if head:
            menu["head_content"] = head
        if tail:
            menu["tail_content"] = tail
        return await self._kf_send(touser, open_kfid, "msgmenu", menu, msgid)

    async def kf_send_media(
        self, touser: str, open_kfid: str, kind: str, media_id: str, *, msgid: str | None = None
    ) -> str:
        """An uploaded image, voice or file to a firm."""
        if kind not in ("image", "voice", "file", "video"):
            raise ValueError(f"kf/send_msg cannot send {kind!r} media")
        return await self._kf_send(touser, open_kfid, kind, {"media_id": media_id}, msgid)
