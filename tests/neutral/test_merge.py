"""Issue 13 item 2: merging tickets of one problem (合并), channel-neutral. Three firms in one
park lose power in a storm; the tech team handles it once under the first report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.channels.actions import press
from bot.core.errors import BadInput, NotAllowed, NotFound
from bot.core.models import Ticket, TicketState
from bot.render import texts
from bot.reporting.stats import compute
from tests.neutral.harness import CHANNEL, NUMBER, Sent, World, button, in_group, person

FIN = f"{CHANNEL}:group-fin"
OUTAGE = "暴雨后园区停电了，变压器跳闸，生产线全停"
LOAN = "企业流动资金紧张，想申请贴息贷款，银行审批太慢"
FIRMS = {
    "zhang": ("宏远铸造厂", "张伟", "13812345678"),
    "li": ("绿源食品厂", "李娜", "13987654321"),
    "zhao": ("恒达机械有限公司", "赵刚", "13700001111"),
}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await World.staffed(tmp_path)
    w.sender.groups.add(FIN)
    w.members.groups[FIN] = {person("qian").id}
    await w.s.workflow.bind(in_group(person("admin", admin=True), FIN), "金融群", "finance")
    await w.s.workflow.start(person("qian"), "staff")
    for firm, (enterprise, contact, phone) in FIRMS.items():
        await w.register(person(firm), enterprise, contact, phone)
    yield w
    await w.close()


WANG = in_group(person("wang"), World.TECH)
CHEN = in_group(person("chen"), World.COORD)
QIAN = in_group(person("qian"), FIN)


async def submit(w: World, firm: str, text: str = OUTAGE) -> Ticket:
    proposal = await w.say(person(firm), text)
    _, draft, _ = button(proposal, "确认")
    await w.s.workflow.confirm(person(firm), draft)
    await w.flush()
    return await get(w, draft)


async def get(w: World, ticket_id: int) -> Ticket:
    async with w.s.db.read() as repo:
        found = await repo.tickets.get_ticket(ticket_id)
    assert found is not None
    return found


def card_of(w: World, group: str, number: str) -> str:
    return first_card(w, group, number).text


def first_card(w: World, group: str, number: str | None) -> Sent:
    """The card a group was sent for the ticket (edits applied)."""
    found = [s for s in w.sender.chat(group) if s.text.splitlines()[0].split()[1:2] == [number]]
    assert found, f"no card of {number} in {group}"
    return found[0]


def said_to(w: World, firm: str) -> list[str]:
    return [s.text for s in w.sender.chat(person(firm).id)]


async def test_merge_tells_the_firm_edits_the_card_and_logs_it(world: World) -> None:
    w = world
    main, dup = await submit(w, "zhang"), await submit(w, "li")
    assert main.team_id == dup.team_id == "tech_industry"
    dup_card = next(s for s in w.sender.chat(w.TECH) if dup.number in s.text.split("\n")[0])
    replies = await w.s.workflow.merge(WANG, dup.number or "", main.number or "")
    assert replies[0].text.startswith(f"🔗 已将 {dup.number}（绿源食品厂）合并到主单 {main.number}")
    assert button(replies, "撤销合并") == ("unmerge", dup.id, "")
    await w.flush()
    # The merged firm is told in the words of the issue.
    assert said_to(w, "li")[-1] == (
        f"您反映的问题（{dup.number}）与其他企业反映的同一问题（{main.number}）合并办理，"
        "进展和结果会同步告知您。"
    )
    # Its card now says where it went, with nothing to press; the main card counts the firms.
    assert f"已合并到 {main.number}" in dup_card.text and dup_card.buttons == []
    assert "合并办理：并入 1 件，涉及企业 2 家" in card_of(w, w.TECH, main.number or "")
    note = w.sender.chat(w.TECH)[-1].text
    assert (
        note == f"🔗 {dup.number}（绿源食品厂）已并入本单 {main.number} 合并办理，共涉及企业 2 家。"
    )
    merged = await get(w, dup.id)
    assert merged.state == TicketState.MERGED and merged.merged_into == main.id
    async with w.s.db.read() as repo:
        events = await repo.tickets.events(dup.id)
    assert (events[-1].action, events[-1].from_state, events[-1].to_state) == (
        "merged",
        "pending_claim",
        "merged",
    )
    # Nothing of the main firm's contact reached the merged firm, nor the other way round.
    assert not any("张伟" in t or "13812345678" in t for t in said_to(w, "li"))
    assert not any("李娜" in t or "13987654321" in t for t in said_to(w, "zhang"))
    assert not any("13987654321" in s.text for s in w.sender.chat(w.TECH))
    # The merged ticket cannot be claimed on its own (a stale 签收 press).
    with pytest.raises(Exception, match="已合并"):
        await w.s.workflow.claim(WANG, dup.id)


async def test_undo_puts_the_ticket_back_with_its_card_and_deadlines(world: World) -> None:
    w = world
    main, dup = await submit(w, "zhang"), await submit(w, "li")
    replies = await w.s.workflow.merge(WANG, dup.number or "", main.number or "")
    await w.flush()
    w.clock.advance(minutes=20)
    action, ticket_id, arg = button(replies, "撤销合并")
    undone = await press(w.s, WANG, action, ticket_id, arg)  # the button, as any channel does
    assert undone[0].text == f"↩️ 已撤销合并：{dup.number} 恢复单独办理（待签收）。"
    await w.flush()
    back = await get(w, dup.id)
    assert back.state == TicketState.PENDING_CLAIM and back.merged_into is None
    assert (back.team_id, back.due_at, back.claim_due_at) == (
        dup.team_id,
        dup.due_at,
        dup.claim_due_at,
    )
    card = first_card(w, w.TECH, dup.number)  # its card is back, 签收 and all
    assert "已合并" not in card.text and "待签收" in card.text
    assert [label for label, _ in card.buttons] == ["签收", "退回"]
    assert w.sender.chat(w.TECH)[-2].text == f"↩️ {dup.number} 恢复单独办理，请按卡片办理。"
    assert (
        w.sender.chat(w.TECH)[-1].text
        == f"↩️ {dup.number} 已撤销合并，不再随本单 {main.number} 办理。"
    )
    assert said_to(w, "li")[-1] == texts.UNMERGE_FIRM.format(number=dup.number)
    # Once the main ticket's 签收 has reached the merged firm, the merge stands.
    await w.s.workflow.merge(WANG, dup.number or "", main.number or "")
    await w.s.workflow.claim(WANG, main.id)
    await w.flush()
    with pytest.raises(BadInput) as refused:
        await w.s.workflow.unmerge_number(WANG, dup.number or "")
    assert refused.value.reply.startswith(f"主单 {main.number} 的签收或进展已告知 {dup.number}")
    assert (await get(w, dup.id)).state == TicketState.MERGED


async def test_a_ticket_claimed_before_the_merge_cannot_be_unmerged(world: World) -> None:
    w = world
    main, dup = await submit(w, "zhang"), await submit(w, "li")
    await w.s.workflow.claim(WANG, dup.id)
    replies = await w.s.workflow.merge(WANG, dup.number or "", main.number or "")
    assert replies[0].buttons is None  # no 撤销合并 offered
    with pytest.raises(BadInput) as refused:
        await w.s.workflow.unmerge(WANG, dup.id)
    assert refused.value.reply == texts.UNMERGE_WAS_CLAIMED.format(number=dup.number)


async def test_progress_and_result_reach_every_firm_and_each_rates_on_its_own(
    world: World,
) -> None:
    w = world
    main, li, zhao = [await submit(w, f) for f in ("zhang", "li", "zhao")]
    for dup in (li, zhao):
        await w.s.workflow.merge(WANG, dup.number or "", main.number or "")
    await w.s.workflow.claim(WANG, main.id)
    await w.flush()
    for firm, dup in (("li", li), ("zhao", zhao)):
        assert said_to(w, firm)[-1] == texts.CLAIM_FIRM.format(
            number=dup.number, team="科技工信服务一米团", name="wang"
        ).replace("<b>", "").replace("</b>", "").replace("\x02", "").replace("\x03", "")
    # /progress and the claimer's messages to the main firm are progress for all of them.
    await w.s.workflow.progress(WANG, main.number or "", "供电公司抢修车已到园区")
    details = w.sender.chat(person("wang").id)[0]
    note = "已联系张伟（13812345678），预计下午三点恢复供电"
    await w.s.workflow.group_message(WANG, w.incoming(note, reply_to=w.sender.chat(w.TECH)[0].id))
    await w.flush()
    assert "张伟" in details.text  # the claimer sees the main firm's contact privately
    for firm, dup in (("li", li), ("zhao", zhao)):
        seen = said_to(w, firm)
        assert f"【科技工信服务一米团】工单 {dup.number} 最新进展：\n供电公司抢修车已到园区" in seen
        relayed = seen[-1]
        assert relayed.startswith(f"【科技工信服务一米团】关于工单 {dup.number}：")
        assert "张**（138****5678）" in relayed and "13812345678" not in relayed
    assert "13812345678" in said_to(w, "zhang")[-1]  # the main firm gets the text as written
    # A merged firm answers the relayed message: the team reads it under the main card; the
    # claimer answers that firm alone with /reply on its own ticket.
    relayed = w.sender.chat(person("li").id)[-1]
    await w.s.workflow.private_message(
        person("li"), w.incoming("我们厂的备用发电机也坏了", reply_to=relayed.id)
    )
    await w.flush()
    heard = w.sender.chat(w.TECH)[-1].text
    assert heard == f"企业回复（{li.number}，并入 {main.number}）：\n我们厂的备用发电机也坏了"
    await w.s.workflow.reply_command(
        person("wang"), li.number or "", "发电机维修师傅下午到", w.incoming().message_id
    )
    await w.flush()
    assert "发电机维修师傅下午到" in said_to(w, "li")[-1]
    assert not any("发电机维修" in t for t in said_to(w, "zhang") + said_to(w, "zhao"))
    # 办结: every firm gets the result and its own rating buttons.
    await w.s.workflow.ask_resolve(WANG, main.id)
    await w.say(WANG, "线路已修复，园区恢复供电")
    await w.flush()
    for firm, ticket in (("zhang", main), ("li", li), ("zhao", zhao)):
        result = w.sender.chat(person(firm).id)[-1]
        assert f"您的工单 {ticket.number} 已办结" in result.text
        assert "线路已修复，园区恢复供电" in result.text
        assert button(result, "基本满意") == ("rate", ticket.id, "basic")
        assert (await get(w, ticket.id)).state == TicketState.PENDING_CONFIRM
    # Each rates on its own: li is satisfied, zhao is not (its own ticket goes back to the team).
    await w.s.workflow.rate(person("li"), li.id, "satisfied")
    await w.s.workflow.rate(person("zhao"), zhao.id, "unsolved")
    with pytest.raises(NotFound):  # nobody rates another firm's ticket
        await w.s.workflow.rate(person("li"), zhao.id, "satisfied")
    await w.flush()
    closed, reopened, waiting = [await get(w, t.id) for t in (li, zhao, main)]
    assert closed.state == TicketState.CLOSED and closed.satisfaction is not None
    assert closed.merged_into == main.id  # still listed under the main ticket
    assert reopened.state == TicketState.IN_PROGRESS and reopened.merged_into is None
    assert (reopened.reopen_count, reopened.claimed_by_name) == (1, "wang")
    assert waiting.state == TicketState.PENDING_CONFIRM  # the main firm has not rated yet
    assert any(
        f"企业反馈 {zhao.number}（并入 {main.number}）未解决" in s.text
        for s in w.sender.chat(w.TECH)
    )
    assert any(zhao.number in s.text and "取消合并" in s.text for s in w.sender.chat(w.COORD))
    card = first_card(w, w.TECH, zhao.number)
    assert "办理中" in card.text and "重办：1 次" in card.text and "已合并" not in card.text
    assert [label for label, _ in card.buttons] == ["办结"]
    assert "赵刚" in w.sender.chat(person("wang").id)[-1].text  # details of zhao, privately


async def test_refusals(world: World) -> None:
    w = world
    a, b, c = [await submit(w, f) for f in ("zhang", "li", "zhao")]
    merge = w.s.workflow.merge
    with pytest.raises(BadInput, match=r"不能把工单 .* 合并到它自己"):
        await merge(WANG, a.number or "", a.number or "")
    await merge(WANG, b.number or "", a.number or "")
    with pytest.raises(BadInput) as into_merged:  # into a merged ticket: use its main
        await merge(WANG, c.number or "", b.number or "")
    assert into_merged.value.reply == (
        f"{b.number} 已合并到 {a.number}，请合并到主单：/merge {c.number} {a.number}"
    )
    with pytest.raises(BadInput, match="已合并到"):  # a cycle: the main into its merged one
        await merge(WANG, a.number or "", b.number or "")
    with pytest.raises(BadInput, match="已并入 1 件"):  # a chain: a main into another ticket
        await merge(WANG, a.number or "", c.number or "")
    with pytest.raises(BadInput, match=f"{b.number} 已合并到 {a.number}"):
        await merge(WANG, b.number or "", c.number or "")
    await w.s.workflow.withdraw(person("zhao"), c.number or "")
    with pytest.raises(BadInput, match="已撤销"):
        await merge(WANG, c.number or "", a.number or "")
    with pytest.raises(NotFound):
        await merge(WANG, "YM-20990101-0001", a.number or "")
    await w.s.workflow.claim(WANG, a.id)
    await w.s.workflow.resolve(WANG, a.id, "已恢复供电")
    d = await submit(w, "zhao")
    with pytest.raises(BadInput, match="已办结、等待企业评价"):
        await merge(WANG, d.number or "", a.number or "")
    for ticket in (a, b, d):
        assert NUMBER.fullmatch(ticket.number or "")


async def test_who_may_merge(world: World) -> None:
    w = world
    main, dup = await submit(w, "zhang"), await submit(w, "li")
    loan = await submit(w, "zhao", LOAN)
    assert loan.team_id == "finance"
    merge = w.s.workflow.merge
    # A firm may not, and learns nothing about the tickets.
    with pytest.raises(NotFound):
        await merge(person("zhang"), dup.number or "", main.number or "")
    # A member of another team may not.
    with pytest.raises(NotFound):
        await merge(QIAN, dup.number or "", main.number or "")
    # A member of the main's team may not pull in another team's ticket: coordinators do.
    w.members.groups[FIN].add(person("wang").id)
    with pytest.raises(NotAllowed) as cross:
        await merge(WANG, loan.number or "", main.number or "")
    assert "跨团队合并请由专班办理" in cross.value.reply
    await merge(CHEN, loan.number or "", main.number or "")
    with pytest.raises(NotFound):  # the finance member no longer sees the ticket
        await w.s.workflow.unmerge(QIAN, loan.id)
    with pytest.raises(NotAllowed):  # a member of both teams may not undo it either
        await w.s.workflow.unmerge(WANG, loan.id)
    moved = await get(w, loan.id)
    assert moved.state == TicketState.MERGED and moved.team_id == "tech_industry"
    await w.s.workflow.unmerge(CHEN, loan.id)
    assert (await get(w, loan.id)).team_id == "finance"
    # The team member merges a ticket of the team.
    await merge(WANG, dup.number or "", main.number or "")
    assert (await get(w, dup.id)).merged_into == main.id


async def test_the_main_withdrawn_sends_the_merged_ticket_back_to_the_team(world: World) -> None:
    w = world
    main, dup = await submit(w, "zhang"), await submit(w, "li")
    await w.s.workflow.merge(WANG, dup.number or "", main.number or "")
    await w.s.workflow.claim(WANG, main.id)
    await w.flush()
    w.clock.advance(hours=1)
    await w.s.workflow.withdraw(person("zhang"), main.number or "")
    await w.flush()
    back = await get(w, dup.id)
    assert back.state == TicketState.PENDING_CLAIM and back.merged_into is None
    assert back.claimed_by is None and back.claim_due_at is not None
    assert back.claim_due_at > w.clock.now()
    assert said_to(w, "li")[-1] == texts.MAIN_RELEASED_FIRM.format(number=dup.number)
    card = first_card(w, w.TECH, dup.number)
    assert [label for label, _ in card.buttons] == ["签收", "退回"]
    assert any(s.text == f"↩️ {dup.number} 恢复单独办理，请按卡片办理。" for s in w.sender.sent)


async def test_ledger_lists_merged_under_the_main_and_stats_count_the_problem_once(
    world: World, tmp_path: Path
) -> None:
    w = world
    main, li, zhao = [await submit(w, f) for f in ("zhang", "li", "zhao")]
    other = await submit(w, "zhang", LOAN)
    await w.s.workflow.merge(WANG, zhao.number or "", main.number or "")
    await w.s.workflow.merge(WANG, li.number or "", main.number or "")
    w.clock.advance(minutes=30)
    digest = await w.s.reports.digest("week")
    m = digest.period.overall
    assert (m.new, m.valid, m.merged, m.firms) == (2, 2, 2, 4)
    assert digest.open_now["all"][TicketState.PENDING_CLAIM] == 2
    text = await w.s.reports.stats_text(None, "week")
    assert "本周新增 2 件" in text.replace("\x02", "").replace("\x03", "")
    assert "涉及企业 4 家（合并办理 2 件）" in text
    # The same figures computed from the tickets (as the ledger does) as from SQL.
    async with w.s.db.read() as repo:
        tickets = await repo.tickets.all_tickets()
    again = compute(
        tickets,
        digest.period.start,
        digest.period.end,
        now=w.clock.now(),
        policy=w.s.workflow.policy,
    ).overall
    assert (again.new, again.valid, again.merged, again.firms) == (2, 2, 2, 4)
    path, rows = await w.s.reports.export(
        tmp_path / "ledger.xlsx",
        start=None,
        end=None,
        exporter_id=None,
        exporter_name="测试",
        exporter_is_admin=False,
    )
    assert rows == 4
    book = load_workbook(path)
    sheet = book["问题台账"]
    header = [c.value for c in sheet[1]]
    number_col, note_col = header.index("工单编号"), header.index("备注")
    state_col = header.index("当前状态")
    listed = [
        (r[number_col].value, r[state_col].value, r[note_col].value or "")
        for r in sheet.iter_rows(min_row=2)
        if r[number_col].value and str(r[number_col].value).startswith("YM-")
    ]
    assert [n for n, _, _ in listed] == [main.number, li.number, zhao.number, other.number]
    assert "合并办理：并入 2 件，涉及企业 3 家" in listed[0][2]
    assert listed[1][1] == "已合并" and f"并入 {main.number}" in listed[1][2]
    assert f"并入 {main.number}" in listed[2][2]
    teams = book["分团统计"]
    team_header = [c.value for c in teams[1]]
    total = next(r for r in teams.iter_rows(min_row=2, values_only=True) if r[0] == "合计")
    assert total[team_header.index("交办总量")] == m.valid == 2
    assert total[team_header.index("涉及企业(家)")] == m.firms == 4


async def test_a_cross_team_merge_then_not_solved_goes_to_the_main_team(world: World) -> None:
    w = world
    main, loan = await submit(w, "zhang"), await submit(w, "zhao", LOAN)
    fin_card = first_card(w, FIN, loan.number)
    await w.s.workflow.merge(CHEN, loan.number or "", main.number or "")
    await w.flush()
    assert f"已合并到 {main.number}" in fin_card.text and fin_card.buttons == []
    await w.s.workflow.claim(WANG, main.id)
    await w.s.workflow.resolve(WANG, main.id, "线路已修复")
    await w.s.workflow.rate(person("zhao"), loan.id, "unsolved")
    await w.flush()
    back = await get(w, loan.id)
    assert (back.state, back.team_id, back.claimed_by_name) == (
        TicketState.IN_PROGRESS,
        "tech_industry",
        "wang",
    )
    card = first_card(w, w.TECH, loan.number)  # a card of its own in the team that has it now
    assert [label for label, _ in card.buttons] == ["办结"]
    assert "已改派至 科技工信服务一米团" in fin_card.text and fin_card.buttons == []


async def test_undo_before_the_main_says_anything_even_when_it_was_claimed(world: World) -> None:
    w = world
    main, dup = await submit(w, "zhang"), await submit(w, "li")
    await w.s.workflow.claim(WANG, main.id)
    replies = await w.s.workflow.merge(WANG, dup.number or "", main.number or "")
    assert (await get(w, dup.id)).claimed_by_name == "wang"  # the main's claimer has it
    assert button(replies, "撤销合并")[1] == dup.id
    await w.s.workflow.unmerge(WANG, dup.id)
    back = await get(w, dup.id)
    assert (back.state, back.claimed_by, back.merged_into) == (
        TicketState.PENDING_CLAIM,
        None,
        None,
    )
    # A coordinator discarding the main as 无效 sends what was merged into it back too.
    await w.s.workflow.merge(WANG, dup.number or "", main.number or "")
    await w.s.workflow.discard(CHEN, main.id, "invalid", "测试工单")
    await w.flush()
    assert (await get(w, dup.id)).state == TicketState.PENDING_CLAIM
    assert said_to(w, "li")[-1] == texts.MAIN_RELEASED_FIRM.format(number=dup.number)
