"""The WeCom Sender's edits on the fake server: what members see after a card is edited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.channels.simulator.fakewecom import FakeWeCom
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.sender import WeComSender
from bot.delivery.outbox import RowSends, current_row
from bot.storage.db import Database
from tests.neutral.harness import Clock

TEAM = "wecom:dept:2"
CLAIM = [[{"text": "签收", "data": "v1:claim:1:"}, {"text": "退回", "data": "v1:return:1:"}]]


@pytest.fixture
async def sender(
    fake: FakeWeCom, client: WeComClient, tmp_path: Path
) -> AsyncIterator[WeComSender]:
    db = await Database.open(tmp_path / "yimi.db")
    yield WeComSender(client, db, Clock(), fake.open_kfid)
    await db.close()


async def test_an_edit_without_buttons_updates_the_whole_card(
    fake: FakeWeCom, sender: WeComSender
) -> None:
    card = await sender.send_text(TEAM, "YM-1 待签收\n问题：跳闸", CLAIM)
    await sender.edit_text(TEAM, card, "YM-1 办理中\n问题：跳闸\n责任人：张三", None)
    for userid in ("zhangsan", "lisi"):
        view = fake.card_of(userid, card).content
        assert view["main_title"]["title"] == "YM-1 办理中"
        assert "责任人：张三" in view["sub_title_text"]
        assert view["button_list"] == [] and view["replace_button"]["text"] == "YM-1 办理中"


async def test_a_card_without_buttons_is_sent_again_only_when_its_text_changed(
    fake: FakeWeCom, sender: WeComSender
) -> None:
    """WeCom cannot edit a text: a card that went out as one (a co-handling team's card) shows
    each new version as a new message, and an edit that changes nothing sends nothing."""
    token = current_row.set(RowSends("ym1", "card"))
    try:
        first = await sender.send_text(TEAM, "YM-1 待签收\n本团为协办", None)
    finally:
        current_row.reset(token)
    await sender.edit_text(TEAM, first, "YM-1 待签收\n本团为协办", None)
    assert [m.text for m in fake.chats["lisi"]] == ["YM-1 待签收\n本团为协办"]
    await sender.edit_text(TEAM, first, "YM-1 办理中\n本团为协办\n责任人：张三", None)
    await sender.edit_text(TEAM, first, "YM-1 办理中\n本团为协办\n责任人：张三", None)
    assert [m.text for m in fake.chats["lisi"]] == [
        "YM-1 待签收\n本团为协办",
        "YM-1 办理中\n本团为协办\n责任人：张三",
    ]


async def test_a_plain_notice_is_not_kept_as_a_card(fake: FakeWeCom, sender: WeComSender) -> None:
    notice = await sender.send_text(TEAM, "周报已生成", None)
    await sender.edit_text(TEAM, notice, "周报已更新", None)
    assert [m.text for m in fake.chats["lisi"]] == ["周报已生成"]
