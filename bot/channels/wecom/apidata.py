"""WeCom's API as data: the errors the client raises (mapped from errcodes to delivery outcomes),
the answers it returns, and the errcodes that mean something to the bot."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
DEFAULT_BASE = "https://qyapi.weixin.qq.com"

TOKEN_ERRCODES = frozenset({40014, 42001, 40001})
# Seconds to wait: WeCom sends no retry-after, so these follow its documented windows (caps are
# per minute, e.g. 30 messages a minute to one member; concurrency caps clear in seconds).
RETRY_SECONDS = {-1: 5.0, 45009: 60.0, 45011: 60.0, 45033: 2.0}
TRANSIENT_SECONDS = 5.0
# Who cannot receive: invalid userid or external userid, not found, none valid, outside the
# app's visible range.
UNKNOWN_USER = frozenset({40003, 40096, 46004, 60011, 60111, 81013})
# 微信客服 send refusals: 95001 / 95002 are the count and time limits in WeCom's error table,
# 95026 is what the fake server answers for the 5-messages-in-48-hours rule.
KF_WINDOW = frozenset({95001, 95002, 95026})
# kf/send_msg with a msgid used before: WeCom does not deliver it again (95033, as a third-party
# client reads WeCom's answer; the fake server answers the same).
KF_MSGID_USED = 95033
KF_SEND = "/cgi-bin/kf/send_msg"
CARD_UPDATE = "/cgi-bin/message/update_template_card"


class WeComError(Exception):
    """A call that did not do what was asked; ``errcode`` 0 when WeCom never answered."""

    def __init__(self, message: str, errcode: int = 0) -> None:
        super().__init__(message)
        self.errcode = errcode


class RetryAfter(WeComError):
    """Try again after ``seconds``."""

    def __init__(self, seconds: float, message: str, errcode: int = 0) -> None:
        super().__init__(message, errcode)
        self.seconds = seconds


class OutOfWindow(WeComError):
    """微信客服 may not send to this firm now; it may again after the firm's next message."""


class Undeliverable(WeComError):
    """This recipient cannot be reached by the app."""


class AlreadySent(WeComError):
    """微信客服 refused a msgid it has seen: the message was delivered under it before."""


class CardStale(WeComError):
    """The card cannot be updated any more (its response_code is used or expired)."""


class Refused(WeComError):
    """WeCom refused the request itself; sending it again would not help."""


def classify_error(path: str, errcode: int, errmsg: str) -> WeComError:
    """The error a non-zero errcode means for the call to ``path``."""
    text = f"{path}: errcode {errcode} {errmsg}".strip()
    if errcode in RETRY_SECONDS:
        return RetryAfter(RETRY_SECONDS[errcode], text, errcode)
    if path == KF_SEND and errcode in KF_WINDOW:
        return OutOfWindow(text, errcode)
    if path == KF_SEND and errcode == KF_MSGID_USED:
        return AlreadySent(text, errcode)
    if errcode in UNKNOWN_USER or (path == KF_SEND and 95000 < errcode < 96000):
        return Undeliverable(text, errcode)
    if path == CARD_UPDATE:
        return CardStale(text, errcode)
    return Refused(text, errcode)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What message/send returned: msgid, the card's response_code, recipients it refused."""

    msgid: str
    response_code: str = ""
    invalid_users: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Media:
    """A downloaded media file."""

    data: bytes
    content_type: str
    filename: str


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a department, as user/simplelist or user/list gives it."""

    userid: str
    name: str
    departments: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TagMembers:
    """tag/get: the members tagged directly and the departments tagged."""

    name: str
    userids: tuple[str, ...]
    party_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MenuItem:
    """A msgmenu choice; the firm's tap comes back as a text message carrying this ``id``."""

    id: str
    content: str


@dataclass(frozen=True, slots=True)
class KfMessage:
    """One message or event from kf/sync_msg (origin 3: the firm, 4: system event, 5: staff)."""

    msgid: str
    open_kfid: str
    external_userid: str
    send_time: int
    origin: int
    msgtype: str
    text: str = ""
    menu_id: str = ""
    media_id: str = ""
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: JSON) -> KfMessage:
        """Parse one element of ``msg_list``."""
        msgtype = str(item.get("msgtype", ""))
        found = item.get(msgtype)
        body: JSON = found if isinstance(found, dict) else {}
        return cls(
            msgid=str(item.get("msgid", "")),
            open_kfid=str(item.get("open_kfid", "")),
            external_userid=str(item.get("external_userid", "")),
            send_time=int(item.get("send_time", 0)),
            origin=int(item.get("origin", 0)),
            msgtype=msgtype,
            text=str(body.get("content", "")),
            menu_id=str(body.get("menu_id", "")),
            media_id=str(body.get("media_id", "")),
            raw=item,
        )


@dataclass(frozen=True, slots=True)
class KfBatch:
    """One page of kf/sync_msg; store its messages and ``next_cursor`` together."""

    messages: tuple[KfMessage, ...]
    next_cursor: str
    has_more: bool
