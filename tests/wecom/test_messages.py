"""Callback XML: typed messages, their inbox identities, and hostile XML refused."""

from __future__ import annotations

import time

import pytest

from bot.channels.wecom.messages import (
    AppMessage,
    BadXml,
    KfMsgOrEvent,
    TemplateCardEvent,
    Unhandled,
    find_encrypt,
    parse_envelope,
    parse_message,
)


def xml(**fields: str | int) -> bytes:
    inner = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}><![CDATA[{v}]]></{k}>"
        for k, v in fields.items()
    )
    return f"<xml>{inner}</xml>".encode()


BASE = {"ToUserName": "ww1", "FromUserName": "zhangsan", "CreateTime": 1700000000}


def test_app_text_image_voice_and_file_messages() -> None:
    text = parse_message(
        xml(**BASE, MsgType="text", Content="/reply YM-1 已联系", MsgId="100", AgentID="1000002")
    )
    assert text == AppMessage(
        kind="text",
        from_user="zhangsan",
        create_time=1700000000,
        msg_id="100",
        agent_id="1000002",
        content="/reply YM-1 已联系",
    )
    assert text.key == "msg:100"
    image = parse_message(
        xml(**BASE, MsgType="image", PicUrl="http://p/1", MediaId="m1", MsgId="101", AgentID="1")
    )
    assert isinstance(image, AppMessage)
    assert (image.kind, image.media_id, image.pic_url) == ("image", "m1", "http://p/1")
    voice = parse_message(
        xml(**BASE, MsgType="voice", MediaId="m2", Format="amr", MsgId="102", AgentID="1")
    )
    assert isinstance(voice, AppMessage)
    assert (voice.kind, voice.voice_format) == ("voice", "amr")
    file = parse_message(
        xml(**BASE, MsgType="file", MediaId="m3", FileName="营业执照.pdf", MsgId="103")
    )
    assert isinstance(file, AppMessage)
    assert (file.kind, file.file_name) == ("file", "营业执照.pdf")
    assert "营业执照" in file.xml


def test_template_card_event_and_its_identity() -> None:
    event = parse_message(
        xml(
            **BASE,
            MsgType="event",
            Event="template_card_event",
            EventKey="claim",
            TaskId="YM-20261127-0007",
            CardType="button_interaction",
            ResponseCode="rc-1",
            AgentID="1000002",
        )
    )
    assert isinstance(event, TemplateCardEvent)
    assert (event.event_key, event.task_id, event.response_code) == (
        "claim",
        "YM-20261127-0007",
        "rc-1",
    )
    assert event.key == ("event:zhangsan:1700000000:template_card_event:claim:YM-20261127-0007")


def test_kf_event_is_named_by_its_token() -> None:
    event = parse_message(
        xml(
            ToUserName="ww1",
            CreateTime=1348831860,
            MsgType="event",
            Event="kf_msg_or_event",
            Token="ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR",
            OpenKfId="wkAbc",
        )
    )
    assert event == KfMsgOrEvent(
        1348831860, "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR", "wkAbc"
    )
    assert event.key == "kf:wkAbc:ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR"


def test_other_messages_and_events_are_ignored_safely() -> None:
    for body in (
        xml(**BASE, MsgType="event", Event="enter_agent", AgentID="1"),
        xml(**BASE, MsgType="location", Location_X="23.1", MsgId="9"),
        xml(**BASE, MsgType="event", Event="change_contact", ChangeType="update_user"),
    ):
        assert isinstance(parse_message(body), Unhandled)


def test_missing_fields_and_malformed_xml_are_refused() -> None:
    for body in (
        b"",
        b"<xml>",
        b"<notxml><MsgType>text</MsgType></notxml>",
        xml(**BASE, MsgType="text", Content="no msgid"),
        xml(FromUserName="a", MsgType="text", Content="c", MsgId="1"),  # no CreateTime
        xml(**BASE, MsgType="image", MsgId="1"),  # no MediaId
        xml(**BASE, MsgType="event", Event="kf_msg_or_event"),  # no Token
        xml(**{**BASE, "FromUserName": ""}, MsgType="event", Event="template_card_event"),
    ):
        with pytest.raises(BadXml):
            parse_message(body)


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><MsgType>text</MsgType><Content>&lol3;</Content></xml>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><Encrypt>&xxe;</Encrypt></xml>"""


def test_entity_expansion_and_external_entities_are_refused() -> None:
    for body in (BOMB, EXTERNAL):
        with pytest.raises(BadXml):
            parse_message(body)
        with pytest.raises(BadXml):
            parse_envelope(body)


def test_envelope() -> None:
    envelope = parse_envelope(xml(ToUserName="ww1", AgentID="1000002", Encrypt="abc=="))
    assert (envelope.to_user, envelope.agent_id, envelope.encrypt) == ("ww1", "1000002", "abc==")
    with pytest.raises(BadXml):
        parse_envelope(xml(ToUserName="ww1"))


def test_the_ciphertext_is_found_without_parsing_unauthenticated_xml() -> None:
    assert find_encrypt(xml(ToUserName="ww1", AgentID="1", Encrypt="ab+/cd==")) == "ab+/cd=="
    assert find_encrypt(b"<xml>\n  <Encrypt>\n <![CDATA[ab+/]]>\n  </Encrypt>\n</xml>") == "ab+/"
    assert find_encrypt(b"<xml><Encrypt>abc=</Encrypt></xml>") == "abc="
    # Not the usual shape: parsed as XML, safely, and refused when it is not a callback body.
    assert find_encrypt(b"<xml><Encrypt>a&#98;c</Encrypt></xml>") == "abc"
    for bad in (b"hello", b"<xml><ToUserName>x</ToUserName></xml>", BOMB, EXTERNAL):
        with pytest.raises(BadXml):
            find_encrypt(bad)


def test_finding_the_ciphertext_stays_linear_on_hostile_bodies() -> None:
    started = time.perf_counter()
    for body in (
        b"<xml><Encrypt>" + b" " * 250_000,
        b"<xml><Encrypt>" + b"A" * 250_000,
        b"<Encrypt>" * 25_000,
    ):
        with pytest.raises(BadXml):
            find_encrypt(body)
    assert time.perf_counter() - started < 2.0  # quadratic would take minutes
