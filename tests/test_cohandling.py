"""协办 on Telegram (issue 15 item 3): the co-handling group's card, a reply to it, and the
coordinators' /cohandle."""

from __future__ import annotations

import pytest

from tests.conftest import (
    COORD,
    COORD_GROUP,
    FIN_GROUP,
    FIRM_A,
    MEMBER_FIN,
    MEMBER_TECH,
    TECH_GROUP,
    World,
)
from tests.test_ticket_loop import report

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

LOAN = "变压器老跳闸，想贷款买新设备"  # 科技工信 leads, 金融 co-handles


async def test_co_group_card_reply_and_cohandle(world: World) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    number = await report(w, FIRM_A, "张伟", LOAN)
    co_card = tg.find(FIN_GROUP, number)
    assert "本团为<b>协办</b>" in co_card.text and co_card.buttons() == []
    lead_card = tg.find(TECH_GROUP, number)
    assert lead_card.buttons() == ["签收", "退回"]
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", lead_card, "签收")
    # The co-handling member answers the lead by replying to the co card.
    await w.say(FIN_GROUP, MEMBER_FIN, "钱工", "可申请技改贴息贷款", reply_to=co_card.message_id)
    assert "已记录协办意见" in tg.last(FIN_GROUP).text
    note = tg.find(TECH_GROUP, "协办单位 金融服务一米团")
    assert "可申请技改贴息贷款" in note.text
    assert note.reply_to == lead_card.message_id
    assert "技改贴息" not in tg.texts(FIRM_A)
    # Coordinators remove and add co-handling teams; others may not.
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/cohandle {number} -finance")
    assert "只有专班" in tg.last(TECH_GROUP).text
    await w.say(COORD_GROUP, COORD, "调度员", f"/cohandle {number} -finance")
    assert "已取消" in tg.last(COORD_GROUP).text
    assert "已不再协办" in co_card.text
    assert "无需再跟进" in tg.last(FIN_GROUP).text
    await w.say(FIN_GROUP, MEMBER_FIN, "钱工", "补充一句", reply_to=co_card.message_id)
    assert "协办单位" in tg.last(FIN_GROUP).text  # refused: no longer co-handling
    await w.say(COORD_GROUP, COORD, "调度员", f"/cohandle {number} finance")
    assert "协办卡片已发送" in tg.last(COORD_GROUP).text
    fresh = tg.last(FIN_GROUP)
    assert number in fresh.text and "本团为<b>协办</b>" in fresh.text and fresh is not co_card
