"""The fake WeCom server's people and rules: callbacks into the bot, kf/sync_msg, the 48 hours."""

from __future__ import annotations

import json

import pytest

from bot.channels.simulator.fakewecom import FakeWeCom
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.apidata import MenuItem, OutOfWindow, Refused, Undeliverable
from tests.wecom.store import SqliteStore

FIRM = "wmFirmZhangChangzhang"


async def kf_tokens(inbox: SqliteStore) -> list[str]:
    async with inbox.conn.execute(
        "SELECT payload FROM wecom_inbox WHERE kind = 'KfMsgOrEvent' ORDER BY rowid"
    ) as cursor:
        return [json.loads(row[0])["token"] for row in await cursor.fetchall()]


async def test_url_verification_through_the_fake(fake: FakeWeCom, inbox: SqliteStore) -> None:
    answer = await fake.verify_url("8612345678901234567")
    assert (answer.status, answer.body) == (200, b"8612345678901234567")
    assert answer.seconds < 1.0


async def test_member_messages_and_clicks_arrive_and_are_stored(
    fake: FakeWeCom, client: WeComClient, inbox: SqliteStore
) -> None:
    assert (await fake.member_writes("zhangsan", "/teams")).status == 200
    card = {
        "card_type": "button_interaction",
        "task_id": "YM-9",
        "main_title": {"title": "YM-9"},
        "button_list": [{"text": "签收", "key": "claim:9"}, {"text": "退回", "key": "return:9"}],
    }
    await client.send_template_card(["zhangsan", "lisi"], card)
    assert (await fake.click("lisi", "YM-9", "claim:9")).status == 200
    assert (await fake.customer_writes(FIRM, "我们厂停电了")).status == 200
    keys = await inbox.keys()
    assert len(keys) == 3
    assert keys[0].startswith("msg:")
    assert keys[1].startswith("event:lisi:") and keys[1].endswith(":claim:9:YM-9")
    assert keys[2].startswith(f"kf:{fake.open_kfid}:ENC")
    assert all(a.body == b"" for a in fake.callback_answers)


async def test_a_click_code_updates_every_members_card(
    fake: FakeWeCom, client: WeComClient, inbox: SqliteStore
) -> None:
    card = {
        "card_type": "button_interaction",
        "task_id": "YM-10",
        "main_title": {"title": "x"},
        "button_list": [{"text": "签收", "key": "claim:10"}],
    }
    await client.send_template_card(["zhangsan", "lisi"], card)
    await fake.click("zhangsan", "YM-10", "claim:10")
    async with inbox.conn.execute("SELECT payload FROM wecom_inbox") as cursor:
        (payload,) = await cursor.fetchone()  # type: ignore[misc]
    code = json.loads(payload)["response_code"]
    await client.update_template_card(["zhangsan", "lisi"], code, replace_name="张三 已签收")
    for member in ("zhangsan", "lisi"):
        view = fake.card_of(member, "YM-10")
        assert view.content["replace_button"] == {"text": "张三 已签收", "disabled": True}
        assert view.buttons() == []


async def test_the_same_callback_posted_twice_is_stored_once(
    fake: FakeWeCom, inbox: SqliteStore
) -> None:
    message = (
        f"<xml><ToUserName>{fake.corp_id}</ToUserName><FromUserName>lisi</FromUserName>"
        f"<CreateTime>{int(fake.now())}</CreateTime><MsgType>text</MsgType>"
        "<Content>退回原因：不属于本团</Content><MsgId>4242</MsgId></xml>"
    ).encode()
    for _ in range(3):
        assert (await fake.post_callback(message)).status == 200
    assert await inbox.keys() == ["msg:4242"]


async def test_kf_messages_are_served_by_cursor_with_the_events_token(
    fake: FakeWeCom, client: WeComClient, inbox: SqliteStore
) -> None:
    for n in range(5):
        await fake.customer_writes(FIRM, f"第{n}条")
    token = (await kf_tokens(inbox))[-1]
    pages = [b async for b in client.kf_sync_all(token, fake.open_kfid, limit=2)]
    assert [len(p.messages) for p in pages] == [2, 2, 1]
    assert [p.has_more for p in pages] == [True, True, False]
    texts = [m.text for p in pages for m in p.messages]
    assert texts == [f"第{n}条" for n in range(5)]
    assert all(m.origin == 3 and m.external_userid == FIRM for p in pages for m in p.messages)
    # A restart resumes from the stored cursor: nothing again, nothing lost.
    stored = pages[-1].next_cursor
    await fake.customer_writes(FIRM, "第5条", menu_id="confirm")
    token = (await kf_tokens(inbox))[-1]
    again = [
        m
        for b in [b async for b in client.kf_sync_all(token, fake.open_kfid, stored)]
        for m in b.messages
    ]
    assert [(m.text, m.menu_id) for m in again] == [("第5条", "confirm")]
    assert all(c.body and c.body["token"] for c in fake.calls_to("kf/sync_msg"))


async def test_kf_sync_refuses_an_unknown_or_stale_token(
    fake: FakeWeCom, client: WeComClient, inbox: SqliteStore
) -> None:
    await fake.customer_writes(FIRM, "你好")
    with pytest.raises(Refused):
        await client.kf_sync("made-up", fake.open_kfid)
    token = (await kf_tokens(inbox))[-1]
    fake.advance(601)
    with pytest.raises(Refused):
        await client.kf_sync(token, fake.open_kfid)


async def test_five_messages_within_48_hours_of_the_firms_last_message(
    fake: FakeWeCom, client: WeComClient, inbox: SqliteStore
) -> None:
    fake.add_customer(FIRM)
    with pytest.raises(OutOfWindow):  # the firm never wrote: nothing may be sent
        await client.kf_send_text(FIRM, fake.open_kfid, "您好")
    await fake.customer_writes(FIRM, "我要反映问题")
    await client.kf_send_menu(
        FIRM,
        fake.open_kfid,
        [
            MenuItem("confirm", "确认提交"),
            MenuItem("switch", "换个团队"),
            MenuItem("cancel", "取消"),
        ],
        head="请确认：",
    )
    for n in range(4):
        await client.kf_send_text(FIRM, fake.open_kfid, f"回执{n}")
    with pytest.raises(OutOfWindow) as caught:
        await client.kf_send_text(FIRM, fake.open_kfid, "第六条")
    assert caught.value.errcode == 95026
    assert len(fake.customers[FIRM].received) == 5
    await fake.customer_writes(FIRM, "还有一个问题")  # the firm writes again: five more
    await client.kf_send_text(FIRM, fake.open_kfid, "收到")
    fake.advance(48 * 3600 + 1)
    with pytest.raises(OutOfWindow):
        await client.kf_send_text(FIRM, fake.open_kfid, "两天后")
    menu = fake.customers[FIRM].received[0]
    assert menu["msgtype"] == "msgmenu"
    assert [i["click"]["content"] for i in menu["msgmenu"]["list"]] == [
        "确认提交",
        "换个团队",
        "取消",
    ]


async def test_a_session_that_refuses_api_messages_is_undeliverable(
    fake: FakeWeCom, client: WeComClient, inbox: SqliteStore
) -> None:
    await fake.customer_writes(FIRM, "你好")
    fake.customers[FIRM].session_open = False
    with pytest.raises(Undeliverable) as caught:
        await client.kf_send_text(FIRM, fake.open_kfid, "a")
    assert caught.value.errcode == 95018
    with pytest.raises(Undeliverable):
        await client.kf_send_text("wmNobody", fake.open_kfid, "a")


async def test_kf_media_goes_both_ways(
    fake: FakeWeCom, client: WeComClient, inbox: SqliteStore
) -> None:
    photo = fake.store_media("现场.jpg", "image/jpeg", b"\xff\xd8photo")
    await fake.customer_writes(FIRM, media=("image", photo))
    token = (await kf_tokens(inbox))[-1]
    (message,) = (await client.kf_sync(token, fake.open_kfid)).messages
    assert (message.msgtype, message.media_id) == ("image", photo)
    assert (await client.get_media(message.media_id)).data == b"\xff\xd8photo"
    reply = await client.upload_media("file", "办理结果.pdf", b"%PDF", "application/pdf")
    await client.kf_send_media(FIRM, fake.open_kfid, "file", reply)
    assert fake.customers[FIRM].received[-1] == {
        "msgid": fake.customers[FIRM].received[-1]["msgid"],
        "msgtype": "file",
        "file": {"media_id": reply},
    }
