"""合并 on WeCom: /合并 in the member's app chat, the 撤销合并 button as a template card, and
/unmerge; the merged firm on 微信客服 is told each time."""

from __future__ import annotations

import re

from tests.wecom.test_channel import REPORT, Deployment, county, fake  # noqa: F401


async def test_merge_and_undo_from_the_app_chat(county: Deployment) -> None:  # noqa: F811
    first = await county.register_and_report()
    await county.firm("还有，隔壁厂也一样停电了，园区变压器跳闸")
    await county.firm(menu_id=county.menu_id("确认"))
    receipt = [t for t in county.firm_texts() if "已提交" in t][-1]
    found = re.search(r"YM-[0-9-]+", receipt)
    assert found and found.group(0) != first
    second = found.group(0)
    # Someone outside the team may not; a team member may, with the Chinese command.
    county.fake.add_member("wangwu", "王五", [99])
    await county.member("wangwu", f"/merge {second} {first}")
    assert "没有找到工单" in county.texts("wangwu")[-1]
    await county.member("zhangsan", f"/合并 {second}")
    assert "用法：/merge" in county.texts("zhangsan")[-1]
    await county.member("zhangsan", f"/合并 {second} {first}")
    assert any(f"合并到主单 {first}" in t for t in county.texts("zhangsan"))
    assert any(f"（{second}）与其他企业反映的同一问题（{first}）" in t for t in county.firm_texts())
    # Every member's card of the merged ticket now says so (WeCom replaces the buttons of a
    # sent card by one disabled label: the card's first line).
    for userid in ("zhangsan", "lisi"):
        cards = [c for c in county.cards(userid) if second in str(c.content)]
        view = county.fake.card_of(userid, str(cards[0].content["task_id"])).content
        assert "已合并" in view["replace_button"]["text"]
        assert not any("签收" in b["text"] for b in view.get("button_list", []))
    # The 撤销合并 button (a card in the app chat) puts it back.
    await county.click("zhangsan", "撤销合并")
    assert any("已撤销合并" in t for t in county.texts("zhangsan"))
    assert any(f"（{second}）恢复单独办理" in t for t in county.firm_texts())
    async with county.s.db.read() as repo:
        ticket = await repo.tickets.get_ticket_by_number(second)
    assert ticket is not None and ticket.state.value == "pending_claim"
    for userid in ("zhangsan", "lisi"):  # its card again, with 签收
        cards = [
            c
            for c in county.cards(userid)
            if c.content["main_title"]["title"].split()[1:2] == [second]
        ]

        assert len(cards) == 2
        assert any("签收" in b["text"] for b in cards[-1].content["button_list"])
    # /unmerge of a ticket that is not merged says so.
    await county.member("zhangsan", f"/unmerge {second}")
    assert f"{second} 没有合并到其他工单" in county.texts("zhangsan")[-1]
