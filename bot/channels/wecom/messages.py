"""Callback XML, parsed safely (defusedxml: no DTD, no entities) into typed messages.

A callback body is ``<xml><ToUserName/><AgentID/><Encrypt/></xml>``; the decrypted ``Encrypt``
is one of the messages below. Each parsed message has a ``key``, its identity for the inbox:
WeCom retries a callback it got no 200 for within 5 s, and the retry must be stored once. With a
MsgId that is the MsgId (WeCom's advice); an app event has none, so it is FromUserName +
CreateTime + Event + EventKey/TaskId; a 微信客服 event is named by its Token (one per event).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

__all__ = [
    "MEDIA_KINDS",
    "AppMessage",
    "BadXml",
    "Envelope",
    "KfMsgOrEvent",
    "Message",
    "TemplateCardEvent",
    "Unhandled",
    "find_encrypt",
    "parse_envelope",
    "parse_message",
]

# App message types that carry a MsgId and are handled (text, or a media file to fetch).
MEDIA_KINDS = frozenset({"image", "voice", "video", "file"})
_KINDS = MEDIA_KINDS | {"text"}


class BadXml(ValueError):
    """Not well-formed, forbidden constructs (DTD, entities) or a required field missing."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The outer callback body: who it is for and the ciphertext."""

    to_user: str
    agent_id: str
    encrypt: str


@dataclass(frozen=True, slots=True)
class AppMessage:
    """A member's message in the app chat: text, or image/voice/video/file with a MediaId."""

    kind: str
    from_user: str
    create_time: int
    msg_id: str
    agent_id: str
    content: str = ""
    media_id: str = ""
    pic_url: str = ""
    voice_format: str = ""
    file_name: str = ""
    xml: str = field(default="", repr=False, compare=False)

    @property
    def key(self) -> str:
        """Inbox identity: the MsgId."""
        return f"msg:{self.msg_id}"


@dataclass(frozen=True, slots=True)
class TemplateCardEvent:
    """A click on a template card button (button_interaction: 签收 / 退回 / 办结)."""

    from_user: str
    create_time: int
    event_key: str
    task_id: str
    card_type: str
    response_code: str
    agent_id: str
    xml: str = field(default="", repr=False, compare=False)

    @property
    def key(self) -> str:
        """Inbox identity: who clicked what, when (no MsgId on events)."""
        return (
            f"event:{self.from_user}:{self.create_time}:template_card_event:"
            f"{self.event_key}:{self.task_id}"
        )


@dataclass(frozen=True, slots=True)
class KfMsgOrEvent:
    """微信客服 has new messages for OpenKfId: pull them with kf/sync_msg and this Token."""

    create_time: int
    token: str
    open_kfid: str
    xml: str = field(default="", repr=False, compare=False)

    @property
    def key(self) -> str:
        """Inbox identity: the Token, one per announcement."""
        return f"kf:{self.open_kfid}:{self.token}"


@dataclass(frozen=True, slots=True)
class Unhandled:
    """Anything else (enter_agent, location, link, other events): answered, not stored."""

    msg_type: str
    event: str
    from_user: str
    create_time: int

    @property
    def key(self) -> str:
        """An identity all the same, for logs."""
        return f"other:{self.from_user}:{self.create_time}:{self.msg_type}:{self.event}"


Message = AppMessage | TemplateCardEvent | KfMsgOrEvent


def _root(data: bytes | str) -> ET.Element:
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadXml(f"forbidden XML construct: {type(exc).__name__}") from exc
    except ET.ParseError as exc:
        raise BadXml(f"not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise BadXml(f"root element is <{root.tag}>, not <xml>")
    return root


def _text(root: ET.Element, name: str) -> str:
    child = root.find(name)
    return (child.text or "").strip() if child is not None else ""


def _required(root: ET.Element, name: str) -> str:
    value = _text(root, name)
    if not value:
        raise BadXml(f"<{name}> is missing or empty")
    return value


def _int(root: ET.Element, name: str) -> int:
    value = _required(root, name)
    if not value.isdigit():
        raise BadXml(f"<{name}> is not a number")
    return int(value)


# The ciphertext of an envelope, CDATA or not: base64 only, so nothing in it needs escaping.
# Greedy over a class that cannot hold what follows it: linear on any input.
_ENCRYPT = re.compile(rb"<Encrypt>\s*(?:<!\[CDATA\[)?([A-Za-z0-9+/=]+)(?:\]\]>)?\s*</Encrypt>")


def find_encrypt(body: bytes) -> str:
    """The ``Encrypt`` of a callback body. A strict pattern first, so that no XML parser reads
    a request before its signature is checked (and it costs 1 us, not 14); a body it does not
    match is parsed (safely) as XML."""
    found = _ENCRYPT.search(body)
    if found is not None:
        return found.group(1).decode()
    return parse_envelope(body).encrypt


def parse_envelope(body: bytes) -> Envelope:
    """The outer POST body; BadXml when it is not one."""
    root = _root(body)
    return Envelope(_text(root, "ToUserName"), _text(root, "AgentID"), _required(root, "Encrypt"))


def parse_message(plain: bytes) -> Message | Unhandled:
    """A decrypted message or event; BadXml when malformed or a field it needs is missing."""
    root = _root(plain)
    xml = plain.decode("utf-8", "replace")
    msg_type = _required(root, "MsgType").lower()
    create_time = _int(root, "CreateTime")
    from_user = _text(root, "FromUserName")
    if msg_type == "event":
        event = _required(root, "Event").lower()
        if event == "template_card_event":
            return TemplateCardEvent(
                from_user=_required(root, "FromUserName"),
                create_time=create_time,
                event_key=_text(root, "EventKey"),
                task_id=_text(root, "TaskId"),
                card_type=_text(root, "CardType"),
                response_code=_text(root, "ResponseCode"),
                agent_id=_text(root, "AgentID"),
                xml=xml,
            )
        if event == "kf_msg_or_event":
            return KfMsgOrEvent(
                create_time=create_time,
                token=_required(root, "Token"),
                open_kfid=_text(root, "OpenKfId"),
                xml=xml,
            )
        return Unhandled(msg_type, event, from_user, create_time)
    if msg_type not in _KINDS:
        return Unhandled(msg_type, "", from_user, create_time)
    return AppMessage(
        kind=msg_type,
        from_user=_required(root, "FromUserName"),
        create_time=create_time,
        msg_id=_required(root, "MsgId"),
        agent_id=_text(root, "AgentID"),
        content=_text(root, "Content") if msg_type == "text" else "",
        media_id=_required(root, "MediaId") if msg_type in MEDIA_KINDS else "",
        pic_url=_text(root, "PicUrl"),
        voice_format=_text(root, "Format"),
        file_name=_text(root, "FileName") or _text(root, "Title"),
        xml=xml,
    )
