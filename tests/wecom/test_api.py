"""The WeCom API client against the fake WeCom server over a real socket on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from bot.channels.simulator.fakewecom import FakeWeCom
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.apidata import (
    CardStale,
    Member,
    Refused,
    RetryAfter,
    Undeliverable,
    classify_error,
)
from tests.wecom.conftest import Clock

CARD = {
    "card_type": "button_interaction",
    "task_id": "YM-20261127-0007",
    "main_title": {"title": "新工单 YM-20261127-0007", "desc": "城关镇 · 科技工信"},
    "sub_title_text": "变压器故障，停产",
    "horizontal_content_list": [{"keyname": "联系人", "value": "张先生 138****5678"}],
    "button_list": [
        {"text": "签收", "style": 1, "key": "claim:7"},
        {"text": "退回", "style": 2, "key": "return:7"},
    ],
}


async def test_the_token_is_fetched_once_and_cached(fake: FakeWeCom, client: WeComClient) -> None:
    for n in range(3):
        await client.send_text(["zhangsan"], f"第{n}条")
    assert len(fake.calls_to("gettoken")) == 1
    assert [m.text for m in fake.chats["zhangsan"]] == ["第0条", "第1条", "第2条"]
    token = fake.calls_to("message/send")[0].query["access_token"]
    assert all(c.query["access_token"] == token for c in fake.calls_to("message/send"))
    assert "corpsecret" not in fake.calls_to("message/send")[0].query


async def test_concurrent_calls_share_one_token_fetch(fake: FakeWeCom, client: WeComClient) -> None:
    await asyncio.gather(*(client.send_text([m], "并发") for m in ("zhangsan", "lisi") * 10))
    assert len(fake.calls_to("gettoken")) == 1
    fake.expire_tokens()  # every call in flight meets 42001 at once: still one new token
    await asyncio.gather(*(client.send_text([m], "再来") for m in ("zhangsan", "lisi") * 5))
    assert len(fake.calls_to("gettoken")) == 2
    assert len(fake.chats["zhangsan"]) == len(fake.chats["lisi"]) == 15


async def test_the_token_is_refreshed_before_it_expires(
    fake: FakeWeCom, client: WeComClient, clock: Clock
) -> None:
    await client.send_text(["zhangsan"], "a")
    clock.t += 7200 - 301  # still valid, outside the refresh margin
    await client.send_text(["zhangsan"], "b")
    assert client.token_fetches == 1
    clock.t += 2  # within 5 minutes of expiry: fetched again before use
    await client.send_text(["zhangsan"], "c")
    assert client.token_fetches == 2


@pytest.mark.parametrize("how", ["fault", "clock"])
async def test_an_expired_token_is_replaced_and_the_call_tried_once_more(
    fake: FakeWeCom, client: WeComClient, how: str
) -> None:
    await client.send_text(["zhangsan"], "a")
    if how == "fault":
        fake.faults.inject("/cgi-bin/message/send", "expired_token")
    else:
        fake.advance(7201)  # WeCom's clock: the token expired early for the client
    await client.send_text(["zhangsan"], "b")
    sends = fake.calls_to("message/send")
    assert [c.response and c.response["errcode"] for c in sends] == [0, 42001, 0]
    assert sends[1].query["access_token"] != sends[2].query["access_token"]
    assert len(fake.calls_to("gettoken")) == 2
    assert [m.text for m in fake.chats["zhangsan"]] == ["a", "b"]


async def test_a_token_refused_twice_is_not_retried_forever(
    fake: FakeWeCom, client: WeComClient
) -> None:
    fake.faults.inject("/cgi-bin/message/send", "expired_token", times=5)
    with pytest.raises(Refused):
        await client.send_text(["zhangsan"], "a")
    assert len(fake.calls_to("message/send")) == 2


async def test_a_wrong_secret_says_what_to_check(fake: FakeWeCom) -> None:
    async with WeComClient(fake.corp_id, "wrong", agent_id=1, base_url=fake.base_url) as api:
        with pytest.raises(Refused, match="WECOM_SECRET"):
            await api.send_text(["zhangsan"], "a")


@pytest.mark.parametrize(
    ("kind", "errcode", "seconds"),
    [("45009", 45009, 60.0), ("45033", 45033, 2.0), ("busy", -1, 5.0), ("500", 0, 5.0)],
)
async def test_frequency_caps_and_server_errors_mean_retry_after(
    fake: FakeWeCom, client: WeComClient, kind: str, errcode: int, seconds: float
) -> None:
    fake.faults.inject("/cgi-bin/message/send", kind)  # type: ignore[arg-type]
    with pytest.raises(RetryAfter) as caught:
        await client.send_text(["zhangsan"], "a")
    assert (caught.value.errcode, caught.value.seconds) == (errcode, seconds)
    assert fake.chats["zhangsan"] == []
    await client.send_text(["zhangsan"], "a")  # the outbox's retry goes through
    assert len(fake.chats["zhangsan"]) == 1


@pytest.mark.parametrize("kind", ["timeout", "network"])
async def test_timeouts_and_dropped_connections_mean_retry_after(
    fake: FakeWeCom, client: WeComClient, kind: str
) -> None:
    fake.faults.inject("/cgi-bin/message/send", kind, hang=3.0)  # type: ignore[arg-type]
    with pytest.raises(RetryAfter):
        await client.send_text(["zhangsan"], "a")


async def test_thirty_messages_a_minute_to_one_member(fake: FakeWeCom, client: WeComClient) -> None:
    for n in range(30):
        await client.send_text(["zhangsan"], str(n))
    with pytest.raises(RetryAfter) as caught:
        await client.send_text(["zhangsan"], "31st")
    assert caught.value.errcode == 45009
    await client.send_text(["lisi"], "another member is not capped")
    fake.advance(60)
    await client.send_text(["zhangsan"], "a minute later")


async def test_unknown_members_are_undeliverable(fake: FakeWeCom, client: WeComClient) -> None:
    with pytest.raises(Undeliverable):
        await client.send_text(["nobody"], "a")
    result = await client.send_text(["zhangsan", "nobody"], "a")
    assert result.invalid_users == ("nobody",)
    assert len(fake.chats["zhangsan"]) == 1


async def test_markdown_and_media_messages(fake: FakeWeCom, client: WeComClient) -> None:
    await client.send_markdown(["lisi"], "**工单** YM-1")
    media_id = await client.upload_media("image", "现场.jpg", b"\xff\xd8jpeg", "image/jpeg")
    await client.send_media(["lisi"], "image", media_id)
    assert [m.msgtype for m in fake.chats["lisi"]] == ["markdown", "image"]
    assert fake.chats["lisi"][1].content == {"media_id": media_id}


async def test_media_round_trip_keeps_name_and_type(client: WeComClient) -> None:
    media_id = await client.upload_media(
        "file", "营业执照 副本.pdf", b"%PDF-1.4 x", "application/pdf"
    )
    media = await client.get_media(media_id)
    assert (media.data, media.content_type, media.filename) == (
        b"%PDF-1.4 x",
        "application/pdf",
        "营业执照 副本.pdf",
    )
    with pytest.raises(Refused):
        await client.get_media("no-such-media")


async def test_a_card_goes_to_every_member_and_one_update_changes_all_of_them(
    fake: FakeWeCom, client: WeComClient
) -> None:
    members = ["zhangsan", "lisi", "wangwu"]
    sent = await client.send_template_card(members, CARD)
    assert sent.response_code
    assert all(fake.card_of(m, CARD["task_id"]).buttons() == ["签收", "退回"] for m in members)
    claimed = {**CARD, "button_list": [], "sub_title_text": "已由 张三 签收"}
    await client.update_template_card(members, sent.response_code, card=claimed)
    for member in members:
        view = fake.card_of(member, CARD["task_id"])
        assert view.content["sub_title_text"] == "已由 张三 签收"
        assert view.buttons() == []
    with pytest.raises(CardStale):  # a response_code is good for one update
        await client.update_template_card(members, sent.response_code, replace_name="已签收")


async def test_an_expired_response_code_means_send_a_new_card(
    fake: FakeWeCom, client: WeComClient
) -> None:
    sent = await client.send_template_card(["zhangsan"], {**CARD, "task_id": "YM-2"})
    fake.advance(72 * 3600 + 1)
    with pytest.raises(CardStale) as caught:
        await client.update_template_card(["zhangsan"], sent.response_code, replace_name="已签收")
    assert "expired" in str(caught.value)
    with pytest.raises(RetryAfter):  # a cap is still a retry, not a stale card
        fake.faults.inject("/cgi-bin/message/update_template_card", "45009")
        await client.update_template_card(["zhangsan"], "whatever", replace_name="x")


async def test_department_and_tag_members(client: WeComClient) -> None:
    simple = await client.department_members(2)
    assert {m.userid for m in simple} == {"zhangsan", "lisi"}
    deep = await client.department_members(2, detail=True, fetch_child=True)
    assert Member("wangwu", "王五", (3,)) in deep
    assert {m.userid for m in deep} == {"zhangsan", "lisi", "wangwu"}
    tag = await client.tag_members(10)
    assert (tag.name, tag.userids, tag.party_ids) == ("金融服务一米团", ("zhaoliu", "wangwu"), (3,))
    with pytest.raises(Refused):
        await client.department_members(99)
    with pytest.raises(Refused):
        await client.tag_members(99)


async def test_paths_are_tencents_under_the_base(fake: FakeWeCom, client: WeComClient) -> None:
    await client.send_text(["zhangsan"], "a")
    await client.department_members(2)
    await client.tag_members(10)
    assert [c.path for c in fake.calls] == [
        "/cgi-bin/gettoken",
        "/cgi-bin/message/send",
        "/cgi-bin/user/simplelist",
        "/cgi-bin/tag/get",
    ]


def test_error_classification() -> None:
    assert isinstance(classify_error("/cgi-bin/kf/send_msg", 95018, ""), Undeliverable)
    assert isinstance(classify_error("/cgi-bin/kf/send_msg", 95016, ""), Undeliverable)
    assert isinstance(classify_error("/cgi-bin/message/send", 60111, ""), Undeliverable)
    assert isinstance(classify_error("/cgi-bin/message/send", 40035, ""), Refused)
    assert isinstance(classify_error("/cgi-bin/message/send", 45009, ""), RetryAfter)
    assert isinstance(classify_error("/cgi-bin/message/update_template_card", 40058, ""), CardStale)
