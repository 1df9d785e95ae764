"""Related reports on Telegram (issue 13), through the real Application: three firms of one park
report a power cut within the hour; the later cards show 可能相关 with the earlier numbers; the
coordinators get one burst alert; /related lists them; a loan question from another town is not
among them; the team holding a ticket may ask, a firm may not."""

from __future__ import annotations

import pytest

from tests.conftest import (
    COORD,
    COORD_GROUP,
    FIRM_A,
    FIRM_A2,
    FIRM_B,
    MEMBER_TECH,
    TECH_GROUP,
    World,
)
from tests.test_ticket_loop import report

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

FIRM_C = 103
PARK = "尉氏县产业集聚区"
REPORTS = (
    (
        FIRM_A,
        "恒达机械有限公司",
        "张伟",
        "13812345678",
        "厂里突然停电了，生产线全停，什么时候能来电？",
    ),
    (FIRM_A2, "宏远纸箱厂", "李强", "13912345678", "园区这边停电一个多小时了，车间机器都停着"),
    (FIRM_C, "鲜丰冷链", "王芳", "13712345678", "停电了，冷库温度在上升，请尽快恢复供电"),
)


async def test_a_park_power_cut_is_one_problem_on_telegram(world: World) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    numbers = []
    for firm, enterprise, contact, phone, text in REPORTS:
        await w.register(firm, enterprise, contact, phone, PARK)
        numbers.append(await report(w, firm, contact, text))
        w.clock.advance(minutes=15)
    await w.register(FIRM_B, "绿源食品厂", "李娜", "13987654321", "大营镇")
    loan = await report(w, FIRM_B, "李娜", "想申请流动资金贷款，银行要抵押，有没有贴息政策")

    first, second, third = (tg.find(TECH_GROUP, f"<b>{n}</b>").text for n in numbers)
    assert "可能相关" not in first
    assert f"可能相关：{numbers[0]}（同园区" in second
    assert numbers[0] in third and numbers[1] in third and "同园区" in third
    for card, own in ((second, 1), (third, 2)):  # nothing of the other firms on a card
        others = [r for i, r in enumerate(REPORTS) if i != own]
        assert not any(r[1] in card or r[2] in card or r[3] in card for r in others)

    alerts = [m.text for m in tg.chat(COORD_GROUP) if "集中报告" in m.text]
    assert len(alerts) == 1
    assert f"{PARK} 1 小时内 3 家报告停电" in alerts[0]
    assert all(n in alerts[0] for n in numbers)

    await w.say(COORD_GROUP, COORD, "调度员", f"/related {numbers[0]}")
    listed = tg.last(COORD_GROUP).text
    assert numbers[1] in listed and numbers[2] in listed and loan not in listed
    assert "同园区" in listed and "相关度" in listed
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/related {numbers[2]}")
    assert numbers[0] in tg.last(TECH_GROUP).text
    await w.say(FIRM_A, FIRM_A, "张伟", f"/related {numbers[1]}")
    assert "没有找到" in tg.last(FIRM_A).text
    await w.say(COORD_GROUP, COORD, "调度员", "/related")
    assert "用法：/related" in tg.last(COORD_GROUP).text
