"""The whole story of the core issue, as the people in it would see it."""

from __future__ import annotations

import pytest

from tests.conftest import (
    ADMIN,
    COORD,
    COORD_GROUP,
    FIN_GROUP,
    FIRM_A,
    FIRM_A2,
    FIRM_B,
    MEMBER_FIN,
    MEMBER_TECH,
    MEMBER_TECH2,
    OUTSIDER,
    STRAY_GROUP,
    TECH_GROUP,
    World,
)
from tests.dbread import DatabaseError, query
from tests.fakes import Sent

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

POWER = "厂里变压器老是跳闸，一天停好几次，设备都不敢开"


async def report(world: World, firm: int, name: str, text: str, **kw: object) -> str:
    """Send a report and confirm it; returns the ticket number from the receipt."""
    await world.say(firm, firm, name, text, **kw)
    await world.press(firm, firm, name, world.telegram.last(firm), "✅ 确认提交")
    receipt = world.telegram.find(firm, "工单编号")
    return receipt.text.split("<b>")[1].split("</b>")[0]


@pytest.fixture
async def ready(world: World) -> World:
    await world.bind_all()
    await world.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await world.register(FIRM_B, "绿源食品厂", "李娜", "13987654321", "大营镇")
    return world


async def test_full_story_photo_claim_talk_resolve_rate(ready: World) -> None:
    w = ready
    tg = w.telegram
    photo = {
        "photo": [{"file_id": "PHOTO-1", "file_unique_id": "u1", "width": 90, "height": 90}],
        "caption": POWER,
    }
    await w.say(FIRM_A, FIRM_A, "张伟", None, extra=photo)
    proposal = tg.last(FIRM_A)
    assert "科技工信服务一米团" in proposal.text and "跳闸" in proposal.text
    assert "附件：1 个" in proposal.text
    await w.say(FIRM_A, FIRM_A, "张伟", "线路是去年洪水后修的")  # joins the same draft
    proposal = tg.last(FIRM_A)
    assert "洪水" in proposal.text and POWER[:6] in proposal.text
    await w.press(FIRM_A, FIRM_A, "张伟", proposal, "✅ 确认提交")
    receipt = tg.last(FIRM_A)
    assert "YM-20261127-0001" in receipt.text and "办结时限" in receipt.text

    card = tg.find(TECH_GROUP, "YM-20261127-0001")
    assert "恒达机械有限公司" in card.text and "城关镇" in card.text
    assert "138****5678" in card.text and "13812345678" not in card.text
    assert "张伟" not in card.text and "跳闸" in card.text
    assert card.buttons() == ["签收", "退回"]
    assert not any(m.method == "sendPhoto" for m in tg.chat(TECH_GROUP))

    # The member has not opened a private chat yet: the group is told, the details wait.
    tg.blocked.add(MEMBER_TECH)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "签收", username="wanggong")
    assert "签收" in card.text and "王工" in card.text and card.buttons() == ["办结"]
    assert "@wanggong" in tg.last(TECH_GROUP).text and "私聊" in tg.last(TECH_GROUP).text
    assert "已由" in tg.last(FIRM_A).text and "王工" in tg.last(FIRM_A).text
    tg.blocked.discard(MEMBER_TECH)
    await w.say(MEMBER_TECH, MEMBER_TECH, "王工", "/start staff")
    await w.flush()
    details = tg.find(MEMBER_TECH, "工单详情")
    assert "13812345678" in details.text and "张伟" in details.text
    assert "企业名称" not in tg.texts(MEMBER_TECH)  # staff are never asked to register
    assert any(
        m.method == "sendPhoto" and m.params.get("photo") == "PHOTO-1" for m in tg.chat(MEMBER_TECH)
    )

    # A second member presses 签收 on the (now edited) card: told who has it.
    await w.process(w.updates.callback(TECH_GROUP, MEMBER_TECH2, "赵工", card, "v1:claim:1"))
    assert "王工" in tg.answers[-1].get("text", "")

    # Talk: the claimer replies to the card; the firm answers by replying to the relay.
    await w.say(
        TECH_GROUP, MEMBER_TECH, "王工", "明天上午电力公司来看线路", reply_to=card.message_id
    )
    relay = tg.last(FIRM_A)
    assert "【科技工信服务一米团】" in relay.text and "电力公司" in relay.text
    await w.say(FIRM_A, FIRM_A, "张伟", "好的，我们<留人>&等", reply_to=relay.message_id)
    answer = tg.last(TECH_GROUP)
    assert "&lt;留人&gt;&amp;等" in answer.text and answer.reply_to == card.message_id
    await w.say(MEMBER_TECH, MEMBER_TECH, "王工", "/reply YM-20261127-0001 师傅9点到")
    assert "师傅9点到" in tg.last(FIRM_A).text

    # Resolve from the card, with the result written as the next message.
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "办结")
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "已更换变压器，线路恢复正常")
    assert "待评价" in card.text
    result = tg.last(FIRM_A)
    assert "已更换变压器" in result.text
    assert result.buttons() == ["已解决·满意", "已解决·基本满意", "未解决"]

    # 未解决 reopens; the group and coordinators are told.
    await w.press(FIRM_A, FIRM_A, "张伟", result, "未解决")
    assert "办理中" in card.text and "重办：1 次" in card.text
    assert "未解决" in tg.last(TECH_GROUP).text
    assert "未解决" in tg.last(COORD_GROUP).text

    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "办结")
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "电力公司已改线")
    result = tg.last(FIRM_A)
    await w.press(FIRM_A, FIRM_A, "张伟", result, "已解决·满意")
    assert "已销号" in card.text and card.buttons() == []
    assert "已销号" in tg.last(FIRM_A).text

    # The log has every step, and it cannot be rewritten.
    await w.say(FIRM_A, FIRM_A, "张伟", "/ticket YM-20261127-0001")
    history = tg.last(FIRM_A).text
    for step in ("企业提交", "签收", "团队留言", "企业回复", "办结", "重办", "企业评价"):
        assert step in history
    with pytest.raises(DatabaseError, match="append-only"):
        query(w.settings, "DELETE FROM ticket_events")


async def test_unclear_report_goes_to_coordinators_and_is_dispatched(ready: World) -> None:
    w, tg = ready, ready.telegram
    number = await report(w, FIRM_B, "李娜", "你好，想咨询个事")
    assert "专班" in tg.find(FIRM_B, "工单编号").text
    coord_card = tg.find(COORD_GROUP, number)
    assert "金融" in " ".join(coord_card.buttons())
    await w.press(COORD_GROUP, COORD, "调度员", coord_card, "金融")
    assert "已交办" in tg.last(COORD_GROUP).text
    assert tg.find(FIN_GROUP, number).buttons() == ["签收", "退回"]
    assert "金融服务一米团" in tg.last(FIRM_B).text
    corrections = query(w.settings, "SELECT predicted, final, source FROM corrections")
    assert corrections == [("general", "finance", "coordinator")]


async def test_return_and_redispatch(ready: World) -> None:
    w, tg = ready, ready.telegram
    number = await report(w, FIRM_A, "张伟", POWER)
    card = tg.find(TECH_GROUP, number)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "退回")
    assert "退回原因" in tg.last(TECH_GROUP).text
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "这是供电公司产权的线路，不归我们")
    assert "退回专班" in card.text and card.buttons() == []
    assert "供电公司产权" in tg.texts(COORD_GROUP)
    coord_card = tg.find(COORD_GROUP, number)
    await w.say(COORD_GROUP, COORD, "调度员", f"/dispatch {number} finance")
    assert tg.find(FIN_GROUP, number).buttons() == ["签收", "退回"]
    assert "改派" in card.text or "退回专班" in card.text
    assert coord_card.buttons() == []
    # Back to tech, then the same team may not return it a second time.
    await w.say(COORD_GROUP, COORD, "调度员", f"/dispatch {number} tech_industry")
    new_card = tg.chat(TECH_GROUP)[-1]
    assert number in new_card.text
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", new_card, "退回")
    assert "不能再次退回" in tg.answers[-1]["text"]


async def test_unregistered_firm_keeps_its_problem(world: World) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    await w.say(FIRM_A, FIRM_A, "张伟", "工人社保断缴了怎么补")
    assert "暂存" in tg.last(FIRM_A).text and "企业名称" in tg.last(FIRM_A).text
    await w.say(FIRM_A, FIRM_A, "张伟", "恒达机械有限公司")
    await w.say(FIRM_A, FIRM_A, "张伟", "张伟")
    await w.say(FIRM_A, FIRM_A, "张伟", "12345")
    assert "格式不对" in tg.last(FIRM_A).text
    contact = {
        "contact": {"phone_number": "+8613812345678", "first_name": "张伟", "user_id": FIRM_A}
    }
    await w.say(FIRM_A, FIRM_A, "张伟", None, extra=contact)
    await w.press(FIRM_A, FIRM_A, "张伟", tg.last(FIRM_A), "城关镇")
    await w.say(FIRM_A, FIRM_A, "张伟", "91350100M000100Y44")
    assert "校验位" in tg.last(FIRM_A).text
    await w.say(FIRM_A, FIRM_A, "张伟", "91350100M000100Y43")
    proposal = tg.last(FIRM_A)
    assert "社保断缴" in proposal.text and "人社服务一米团" in proposal.text


async def test_restart_in_the_middle_of_registration_and_draft(ready: World) -> None:
    w, tg = ready, ready.telegram
    await w.say(FIRM_A2, FIRM_A2, "张小伟", "/start")
    await w.say(FIRM_A2, FIRM_A2, "张小伟", "恒达机械有限公司")
    await w.restart()
    await w.say(FIRM_A2, FIRM_A2, "张小伟", "张小伟")
    assert "手机号" in tg.last(FIRM_A2).text
    await w.say(FIRM_A2, FIRM_A2, "张小伟", "13700001111")
    await w.press(FIRM_A2, FIRM_A2, "张小伟", tg.last(FIRM_A2), "城关镇")
    await w.press(FIRM_A2, FIRM_A2, "张小伟", tg.last(FIRM_A2), "跳过")
    await w.say(FIRM_A2, FIRM_A2, "张小伟", "想申请续贷，流动资金周转不开")
    draft = tg.last(FIRM_A2)
    await w.restart()
    await w.say(FIRM_A2, FIRM_A2, "张小伟", "大概需要五百万")
    assert "续贷" in tg.last(FIRM_A2).text and "五百万" in tg.last(FIRM_A2).text
    await w.press(FIRM_A2, FIRM_A2, "张小伟", draft, "✅ 确认提交")
    number = tg.find(FIRM_A2, "工单编号").text
    assert "金融服务一米团" in number
    # Both users of the same firm see its tickets.
    await report(w, FIRM_A, "张伟", POWER)
    await w.say(FIRM_A2, FIRM_A2, "张小伟", "/my")
    assert tg.last(FIRM_A2).text.count("YM-") == 2


async def test_choose_another_team_and_cancel(ready: World) -> None:
    w, tg = ready, ready.telegram
    await w.say(FIRM_B, FIRM_B, "李娜", "我们想上电视宣传一下新产品")
    await w.press(FIRM_B, FIRM_B, "李娜", tg.last(FIRM_B), "🔁 换个团队")
    await w.press(FIRM_B, FIRM_B, "李娜", tg.last(FIRM_B), "金融")
    assert "金融服务一米团" in tg.last(FIRM_B).text
    await w.press(FIRM_B, FIRM_B, "李娜", tg.last(FIRM_B), "✖️ 取消")
    assert "已取消" in tg.last(FIRM_B).text
    assert not any("YM-" in m.text for m in tg.chat(FIN_GROUP))


async def test_group_migration_keeps_binding(ready: World) -> None:
    w, tg = ready, ready.telegram
    new_id = -1009999
    await w.say(TECH_GROUP, ADMIN, "管理员", None, extra={"migrate_to_chat_id": new_id})
    tg.members[new_id] = tg.members[TECH_GROUP]
    number = await report(w, FIRM_A, "张伟", POWER)
    assert number in tg.last(new_id).text
    await w.say(new_id, ADMIN, "管理员", "/teams")
    assert "科技工信服务一米团（tech_industry）" in tg.last(new_id).text


async def test_coordinator_cards_wait_until_bound(world: World) -> None:
    w, tg = world, world.telegram
    await w.register(FIRM_B, "绿源食品厂", "李娜", "13987654321")
    number = await report(w, FIRM_B, "李娜", "我想问问营业执照年报怎么弄")
    await w.say(ADMIN, ADMIN, "管理员", "/start")
    assert "等待专班群绑定" in tg.texts(ADMIN)
    await w.say(COORD_GROUP, ADMIN, "管理员", "/bind coordinator")
    await w.flush()
    assert number in tg.texts(COORD_GROUP)


# -- point 9: every refusal ----------------------------------------------------------------


async def test_refusals(ready: World) -> None:
    w, tg = ready, ready.telegram
    number = await report(w, FIRM_A, "张伟", POWER)
    card = tg.find(TECH_GROUP, number)

    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "/bind finance")
    assert "只有管理员" in tg.last(TECH_GROUP).text
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "/unbind")
    assert "只有管理员" in tg.last(TECH_GROUP).text

    # A forged claim from another team's group is refused.
    fin_message = tg.last(FIN_GROUP)
    await w.process(w.updates.callback(FIN_GROUP, MEMBER_FIN, "钱行长", fin_message, "v1:claim:1"))
    assert "不属于" in tg.answers[-1]["text"]
    # An unbound group.
    stray = Sent(STRAY_GROUP, 1, "旧消息", None)
    await w.process(w.updates.callback(STRAY_GROUP, OUTSIDER, "路人", stray, "v1:claim:1"))
    assert "未绑定" in tg.answers[-1]["text"]
    # Forged, malformed callback data.
    await w.process(w.updates.callback(TECH_GROUP, MEMBER_TECH, "王工", card, "v9:drop:1"))
    assert "失效" in tg.answers[-1]["text"]
    # Someone else's draft.
    await w.say(FIRM_A, FIRM_A, "张伟", "还有个贷款的事")
    draft = tg.last(FIRM_A)
    own = tg.last(FIRM_B)
    await w.process(w.updates.callback(FIRM_B, FIRM_B, "李娜", own, draft.data("✅ 确认提交")))
    assert "不是您的草稿" in tg.last(FIRM_B).text

    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "签收")
    # Only the claimer (or coordinators/admins) resolves.
    await w.process(w.updates.callback(TECH_GROUP, MEMBER_TECH2, "赵工", card, card.data("办结")))
    assert "只有责任人" in tg.answers[-1]["text"]
    # Another member cannot talk to the firm in the claimer's place.
    await w.say(TECH_GROUP, MEMBER_TECH2, "赵工", "我来说两句", reply_to=card.message_id)
    assert "由 王工 负责" in tg.last(TECH_GROUP).text
    # A firm sees only its own tickets; another firm cannot rate or reply.
    await w.say(FIRM_B, FIRM_B, "李娜", f"/ticket {number}")
    assert "没有找到" in tg.last(FIRM_B).text
    await w.say(FIRM_B, FIRM_B, "李娜", f"/reply {number} 我也停电了")
    assert "没有找到" in tg.last(FIRM_B).text
    # Only coordinators dispatch.
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", f"/dispatch {number} finance")
    assert "只有专班" in tg.last(TECH_GROUP).text
    # A coordinator may resolve; the admin may too.
    coord_msg = tg.last(COORD_GROUP)
    await w.process(w.updates.callback(COORD_GROUP, COORD, "调度员", coord_msg, card.data("办结")))
    assert "办理结果" in tg.last(COORD_GROUP).text
    # Stale: rating before the ticket was resolved.
    await w.process(w.updates.callback(FIRM_A, FIRM_A, "张伟", draft, "v1:rate:1:satisfied"))
    assert "不能评价" in tg.last(FIRM_A).text


async def test_complaint_about_officials_goes_to_coordinators_only(ready: World) -> None:
    w, tg = ready, ready.telegram
    text = "投诉一下镇里的工作人员，办个环评来回跑了五趟还故意刁难，要我们请吃饭"
    await w.say(FIRM_A, FIRM_A, "张伟", text)
    assert "保密" in tg.last(FIRM_A).text
    # Even the reporter's choice of the (implicated) team does not put it in a team group.
    await w.press(FIRM_A, FIRM_A, "张伟", tg.last(FIRM_A), "🔁 换个团队")
    await w.press(FIRM_A, FIRM_A, "张伟", tg.last(FIRM_A), "环保")
    await w.press(FIRM_A, FIRM_A, "张伟", tg.last(FIRM_A), "✅ 确认提交")
    number = tg.find(FIRM_A, "工单编号").text.split("<b>")[1].split("</b>")[0]
    card = tg.find(COORD_GROUP, number)
    assert "🔒保密" in card.text
    for group in (TECH_GROUP, FIN_GROUP):
        assert number not in tg.texts(group)
