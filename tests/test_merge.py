"""合并 on Telegram (issue 13 item 2): /merge in the team group, the 撤销合并 button, the
fan-out of 签收, progress and result to the merged firm, its own rating, and who may not."""

from __future__ import annotations

import pytest

from tests.conftest import (
    FIN_GROUP,
    FIRM_A,
    FIRM_B,
    MEMBER_FIN,
    MEMBER_TECH,
    TECH_GROUP,
    World,
)
from tests.test_ticket_loop import POWER, report

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")


async def test_merge_undo_fan_out_and_separate_ratings(world: World) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await w.register(FIRM_B, "绿源食品厂", "李娜", "13987654321", "大营镇")
    await w.say(MEMBER_TECH, MEMBER_TECH, "王工", "/start staff")
    main = await report(w, FIRM_A, "张伟", POWER)
    dup = await report(w, FIRM_B, "李娜", "暴雨后园区停电，变压器跳闸，生产线停了")
    # Each card by its own number in bold (a card also names related tickets).
    main_card = tg.find(TECH_GROUP, f"<b>{main}</b>")
    dup_card = tg.find(TECH_GROUP, f"<b>{dup}</b>")
    assert dup_card.buttons() == ["签收", "退回"]

    # Nobody outside the team, and no firm, may merge.
    await w.say(FIN_GROUP, MEMBER_FIN, "钱工", f"/merge {dup} {main}")
    assert "没有找到工单" in tg.last(FIN_GROUP).text
    await w.say(FIRM_A, FIRM_A, "张伟", f"/merge {dup} {main}")
    assert "没有找到工单" in tg.last(FIRM_A).text
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/merge {dup}")
    assert "用法：/merge" in tg.last(TECH_GROUP).text
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/merge {main} {main}")
    assert "合并到它自己" in tg.last(TECH_GROUP).text

    # The team member merges; the card of the merged ticket shows it; the firm is told.
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/merge {dup} {main}")
    done = tg.find(TECH_GROUP, "合并到主单")
    assert f"已将 {dup}（绿源食品厂）合并到主单 {main}" in done.text
    assert done.buttons() == ["↩️ 撤销合并"]
    assert f"已合并到 {main}" in dup_card.text and dup_card.buttons() == []
    assert "并入 1 件，涉及企业 2 家" in main_card.text
    assert f"（{dup}）与其他企业反映的同一问题（{main}）合并办理" in tg.last(FIRM_B).text
    assert "13987654321" not in tg.texts(TECH_GROUP) and "李娜" not in tg.texts(TECH_GROUP)

    # 撤销合并 puts it back with a card of its own; merged again, the undo expires at 签收.
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", done, "↩️ 撤销合并")
    assert "已撤销合并" in tg.find(TECH_GROUP, "已撤销合并：").text
    assert dup_card.buttons() == ["签收", "退回"]
    assert "恢复单独办理" in tg.last(FIRM_B).text
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/merge {dup} {main}")
    again = tg.find(TECH_GROUP, "合并到主单")
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", main_card, "签收")
    assert f"您的工单 {dup} 已由" in tg.last(FIRM_B).text
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", again, "↩️ 撤销合并")
    assert "不能再撤销合并" in tg.answers[-1].get("text", "")  # the press's alert

    # Progress and the result reach the merged firm under its own number, contacts masked.
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/progress {main} 抢修车已到，张伟在现场")
    progress = tg.last(FIRM_B).text
    assert f"工单 {dup} 最新进展" in progress and "张**在现场" in progress
    assert "张伟在现场" in tg.last(FIRM_A).text
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", main_card, "办结")
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "线路已修复，园区恢复供电")
    for firm, number in ((FIRM_A, main), (FIRM_B, dup)):
        result = tg.last(firm)
        assert f"您的工单 <b>{number}</b> 已办结" in result.text and "恢复供电" in result.text
        assert result.buttons() == ["已解决·满意", "已解决·基本满意", "未解决"]
    # Each firm rates on its own.
    await w.press(FIRM_B, FIRM_B, "李娜", tg.last(FIRM_B), "已解决·基本满意")
    assert "已销号" in dup_card.text and "基本满意" in dup_card.text
    assert "待评价" in main_card.text
    await w.press(FIRM_A, FIRM_A, "张伟", tg.last(FIRM_A), "已解决·满意")
    assert "已销号" in main_card.text
