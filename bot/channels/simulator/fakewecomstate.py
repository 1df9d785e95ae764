"""What the fake WeCom server holds and enforces: the organisation, cards, 微信客服 and faults."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]
FaultKind = Literal[
    "expired_token", "45009", "45033", "busy", "500", "timeout", "network", "lost_answer"
]

TOKEN_TTL = 7200.0
KF_TOKEN_TTL = 600.0  # the Token of a kf_msg_or_event is good for 10 minutes
KF_WINDOW = 48 * 3600.0  # 微信客服: after the firm's last message ...
KF_LIMIT = 5  # ... at most this many messages may be sent to it
RESPONSE_CODE_TTL = 72 * 3600.0
MEMBER_LIMIT = (30, 60.0)  # messages to one member per minute, per app
# The fake's errcodes where WeCom's own are not published or not known here.
KF_WINDOW_ERRCODE = 95026
STALE_CODE_ERRCODE = 40058
# kf/send_msg with a caller-chosen msgid already used: not delivered again. 95033 is how a
# third-party client reads WeCom's answer (Tencent's error table was not at hand); the window
# is the fake's choice, longer than any outage the bot lives through.
KF_MSGID_USED_ERRCODE = 95033
# media/upload's size limits, and WeCom's errcodes beyond them (40010 for voice by analogy).
MEDIA_LIMITS = {
    "image": (10 * 1024 * 1024, 40009),
    "voice": (2 * 1024 * 1024, 40010),
    "video": (10 * 1024 * 1024, 40011),
    "file": (20 * 1024 * 1024, 40006),
}
KF_MSGID_TTL = 48 * 3600.0


class WeComApiError(Exception):
    """An errcode answer (HTTP 200 with errcode/errmsg, as WeCom answers errors)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def payload(self) -> JSON:
        """The JSON body."""
        return {"errcode": self.errcode, "errmsg": self.errmsg}


@dataclass
class FakeMember:
    """A member of the county's WeCom organisation."""

    userid: str
    name: str
    departments: list[int]


@dataclass
class FakeTag:
    """A tag: members and departments carrying it."""

    name: str
    userids: list[str]
    party_ids: list[int]


@dataclass
class AppMessage:
    """A message the app sent, as one member sees it in the app chat."""

    userid: str
    msgtype: str
    content: JSON
    msgid: str
    time: float
    response_code: str = ""

    @property
    def text(self) -> str:
        """Text, markdown, or a card's title, description and sub-title text."""
        if self.msgtype in ("text", "markdown"):
            return str(self.content.get("content", ""))
        if self.msgtype == "template_card":
            title = self.content.get("main_title", {})
            parts = (
                title.get("title", ""),
                title.get("desc", ""),
                self.content.get("sub_title_text", ""),
            )
            return "\n".join(str(p) for p in parts if p)
        return f"[{self.msgtype}]"

    def buttons(self) -> list[str]:
        """The card's button texts (empty once replaced by a label)."""
        return [str(b.get("text", "")) for b in self.content.get("button_list", [])]


@dataclass
class ResponseCode:
    """A one-use right to update a card: from message/send (all recipients) or from a click."""

    code: str
    msgid: str
    issued_at: float
    used: bool = False


@dataclass
class Card:
    """A template card sent to members; each member's view is updated in place."""

    msgid: str
    task_id: str
    userids: list[str]
    views: dict[str, AppMessage]
    updates: list[JSON] = field(default_factory=list)


@dataclass
class KfCustomer:
    """A firm writing from personal WeChat to the 微信客服 account."""

    external_userid: str
    nickname: str = ""
    last_message_at: float | None = None
    sent_since: int = 0
    session_open: bool = True  # False: kf/send_msg refused with 95018 (e.g. handed to staff)
    received: list[JSON] = field(default_factory=list)

    def window_left(self, now: float) -> int:
        """How many messages the bot may still send now."""
        if self.last_message_at is None or now - self.last_message_at > KF_WINDOW:
            return 0
        return max(0, KF_LIMIT - self.sent_since)


@dataclass
class Fault:
    """One injected failure of the next ``times`` calls to ``path`` (None: any but gettoken)."""

    path: str | None
    kind: FaultKind
    times: int = 1
    hang: float = 30.0

    def matches(self, path: str) -> bool:
        """gettoken is hit only when named."""
        if self.path is None:
            return path != "/cgi-bin/gettoken"
        return self.path == path


@dataclass
class Faults:
    """The failures the next calls will meet, in the order injected."""

    pending: list[Fault] = field(default_factory=list)

    def inject(
        self, path: str | None, kind: FaultKind, times: int = 1, *, hang: float = 30.0
    ) -> Fault:
        """``kind``: expired_token (42001), 45009, 45033, busy (-1), 500 (HTTP 502), timeout
        (the connection hangs ``hang`` s, then closes), network (closed at once), lost_answer
        (the call is carried out, then the connection closes before the answer)."""
        fault = Fault(path, kind, times, hang)
        self.pending.append(fault)
        return fault

    def take(self, path: str) -> Fault | None:
        """The fault this call meets, if any."""
        for fault in self.pending:
            if fault.matches(path):
                fault.times -= 1
                if fault.times <= 0:
                    self.pending.remove(fault)
                return fault
        return None

    @staticmethod
    def error(fault: Fault) -> WeComApiError | None:
        """The errcode answer of a fault, None for those that break the HTTP exchange."""
        answers = {
            "expired_token": (42001, "access_token expired"),
            "45009": (45009, "api freq out of limit"),
            "45033": (45033, "api concurrent out of limit"),
            "busy": (-1, "system busy"),
        }
        if fault.kind in answers:
            return WeComApiError(*answers[fault.kind])
        return None


class MemberRate:
    """Per-member message counts in a sliding minute (45009 beyond MEMBER_LIMIT)."""

    def __init__(self, limit: tuple[int, float] = MEMBER_LIMIT) -> None:
        self.limit, self.window = limit
        self.sent: dict[str, deque[float]] = {}

    def check(self, userids: list[str], now: float) -> None:
        """Raise 45009 when one of them already had ``limit`` messages in the window."""
        for userid in userids:
            times = self.sent.setdefault(userid, deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.limit:
                raise WeComApiError(45009, f"api freq out of limit: member {userid}")

    def record(self, userids: list[str], now: float) -> None:
        """Count one message to each."""
        for userid in userids:
            self.sent.setdefault(userid, deque()).append(now)
