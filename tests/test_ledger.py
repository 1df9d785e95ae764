"""The 问题台账 workbook, written and read back with openpyxl."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from bot.config import Settings
from bot.core.models import (
    TEAM_NAMES,
    CloseType,
    Satisfaction,
    Ticket,
    TicketEvent,
    TicketState,
    Urgency,
)
from bot.core.privacy import mask_credit_code, mask_name, mask_phone
from bot.reporting.ledger import (
    LEDGER_COLUMNS,
    SHEET_NAMES,
    TEAM_COLUMNS,
    build_ledger,
    write_ledger,
)
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy
from tests.builders import make_ticket

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 11, 28, 16, 0, tzinfo=TZ)
RED, YELLOW, GREEN = "FFFFC7CE", "FFFFEB9C", "FFC6EFCE"
COL = {name: i + 1 for i, name in enumerate(LEDGER_COLUMNS)}


def at(mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(2025, mo, d, h, mi, tzinfo=TZ)


@pytest.fixture
def calendar() -> WorkCalendar:
    return WorkCalendar(Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.fixture
def policy(calendar: WorkCalendar) -> DeadlinePolicy:
    return DeadlinePolicy(Settings(_env_file=None), calendar)  # type: ignore[call-arg]


def make(policy: DeadlinePolicy, tid: int, submitted: datetime, **kw: Any) -> Ticket:
    return make_ticket(policy, tid, submitted, **kw)


@pytest.fixture
def tickets(policy: DeadlinePolicy) -> list[Ticket]:
    return [
        # 1: closed this week, on time.
        make(policy, 1, at(11, 24, 9), state=TicketState.CLOSED, claimed_at=at(11, 24, 9, 30),
             claimed_by_name="李干事", first_contact_at=at(11, 24, 10),
             resolved_at=at(11, 25, 15), closed_at=at(11, 26, 10), result_text="已办结",
             resolved_status="已解决", close_type=CloseType.SOLVED,
             satisfaction=Satisfaction.SATISFIED, rated_at=at(11, 26, 10),
             contact_name="王女士"),
        # 2: open, due Fri 28 Nov 17:00; 80 % of 7 days used on Thu 27 Nov 7:24 → yellow.
        make(policy, 2, at(11, 21, 17), claimed_at=at(11, 24, 15), claimed_by_name="王干事",
             contact_phone="0371-2345678"),
        # 3: urgent, due Wed 26 Nov 9:00, open → red, overdue, supervised.
        make(policy, 3, at(11, 25, 9), urgency=Urgency.URGENT, claimed_at=at(11, 25, 9, 5),
             claimed_by_name="赵干事", supervise_count=2, leader_note="请尽快协调"),
        # 4: long-term item from September.
        make(policy, 4, at(9, 1, 9), state=TicketState.LONG_TERM, team_id="rural",
             claimed_at=at(9, 1, 10), latest_progress=None),
        # 5: a draft, never exported.
        make(policy, 5, at(11, 27, 10), state=TicketState.DRAFT),
        # 6: control characters in the text; submitted just now.
        make(policy, 6, at(11, 28, 9), state=TicketState.PENDING_CLAIM, team_id="land",
             summary="停电\x07了\x00", enterprise_name="A&B <公司>"),
    ]  # fmt: skip


@pytest.fixture
def events() -> dict[int, list[TicketEvent]]:
    note = TicketEvent(
        id=1,
        ticket_id=4,
        actor_id="telegram:2",
        action="progress",
        from_state=None,
        to_state=None,
        payload={"text": "已对接村委，按月反馈"},
        at=at(11, 1, 10),
    )
    return {4: [note]}


def export(
    tmp_path: Path,
    tickets: list[Ticket],
    events: dict[int, list[TicketEvent]],
    calendar: WorkCalendar,
    policy: DeadlinePolicy,
    *,
    admin: bool = False,
    via: str = "stream",
    period: tuple[date, date] | None = None,
) -> openpyxl.Workbook:
    kw: dict[str, Any] = {
        "now": NOW,
        "exporter_name": "专班 刘调度",
        "exporter_is_admin": admin,
        "calendar": calendar,
        "policy": policy,
        "period": period,
    }
    path = tmp_path / f"{via}-{admin}.xlsx"
    if via == "stream":
        write_ledger(tickets, events, path, **kw)
    else:
        build_ledger(tickets, events, **kw).save(path)
    return openpyxl.load_workbook(path)


@pytest.fixture(params=["stream", "openpyxl"])
def via(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def rows_of(ws: Any) -> list[list[Any]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def ticket_row(ws: Any, number: str) -> dict[str, Any]:
    """The cells of one ticket's row in 问题台账, by header."""
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, 2).value == number:
            return {h: ws.cell(r, COL[h]) for h in LEDGER_COLUMNS}
    raise AssertionError(number)


def test_sheets_headers_and_counts(
    tmp_path: Path, tickets: list[Ticket], events: Any, calendar: Any, policy: Any, via: str
) -> None:
    wb = export(tmp_path, tickets, events, calendar, policy, via=via)
    assert wb.sheetnames == list(SHEET_NAMES)
    ws = wb["问题台账"]
    rows = rows_of(ws)
    assert tuple(rows[0]) == LEDGER_COLUMNS
    assert len(LEDGER_COLUMNS) == 37
    body = [r for r in rows[1:] if r[0] is not None and isinstance(r[0], int)]
    assert [r[0] for r in body] == [1, 2, 3, 4, 5]  # the draft is left out
    assert body[0][1] == "YM-20250901-0004"  # oldest first
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["F"].width == 26
    # Footer: after one blank row, who exported and when.
    assert all(v is None for v in rows[-2])
    footer = rows[-1][0]
    assert "导出人：专班 刘调度" in footer
    assert "导出时间：2025-11-28 16:00" in footer
    assert "已脱敏" in footer
    counts = {name: len(rows_of(wb[name])[1:-2]) for name in SHEET_NAMES}
    assert counts == {
        "问题台账": 5,
        "本周新增": 4,  # 2, 1, 3, 6 (since Fri 21 Nov 16:00)
        "推进中": 3,  # 2, 3, 6
        "已销号": 1,  # 1
        "超期及督办清单": 1,  # 3
        "长期跟踪": 1,  # 4
        "分团统计": len(TEAM_NAMES) + 1,  # one row per team + 合计
    }
    team_rows = rows_of(wb["分团统计"])
    assert tuple(team_rows[0]) == TEAM_COLUMNS
    total = team_rows[-3]
    assert total[0] == "合计"
    assert total[1] == 5  # 交办总量


def test_values_masking_and_dates(
    tmp_path: Path, tickets: list[Ticket], events: Any, calendar: Any, policy: Any, via: str
) -> None:
    wb = export(tmp_path, tickets, events, calendar, policy, via=via)
    ws = wb["问题台账"]
    first = ticket_row(ws, "YM-20251124-0001")
    assert first["联系人"].value == "王女士"
    assert first["联系电话"].value == "138****5678"
    assert first["统一社会信用代码"].value == "914102**********1K"
    assert first["问题领域"].value == "金融服务"
    assert first["紧急程度"].value == "一般"
    assert first["责任一米团"].value == "金融服务一米团"
    assert first["当前状态"].value == "已销号"
    assert first["企业评价"].value == "满意"
    assert first["是否销号"].value == "是"
    assert first["是否超期/超期天数"].value == "否"
    assert first["备注"].value == "已解决"
    # Mon 9:00 → Tue 15:00 = 10 working hours = 1.5 working days (rounded to one decimal).
    assert first["办理用时(工作日)"].value == 1.5
    # Dates are real dates, in local time, naive.
    assert first["登记日期"].value == datetime(2025, 11, 24)
    assert first["登记日期"].number_format == "yyyy-mm-dd"
    assert first["签收时间"].value == datetime(2025, 11, 24, 9, 30)
    assert first["签收时间"].number_format == "yyyy-mm-dd hh:mm"
    assert first["办结时限"].value == datetime(2025, 12, 1, 9, 0)
    assert first["销号日期"].value == datetime(2025, 11, 26)
    second = ticket_row(ws, "YM-20251121-0002")
    assert second["联系人"].value == "张**"
    assert second["联系电话"].value == "037****5678"
    third = ticket_row(ws, "YM-20251125-0003")
    # Due Wed 26 Nov 9:00, now Fri 16:00: 6 + 6.5 + 5 = 17.5 h = 2.7 working days.
    assert third["是否超期/超期天数"].value == "是/2.7个工作日"
    assert third["督办次数"].value == 2
    assert third["领导批示"].value == "请尽快协调"
    assert third["紧急程度"].value == "紧急"
    # The long-term item's progress comes from its event log.
    fourth = ticket_row(ws, "YM-20250901-0004")
    assert fourth["最新进展"].value == "已对接村委，按月反馈"
    assert fourth["是否超期/超期天数"].value == "长期跟踪"
    # Control characters are dropped; markup is kept as text.
    sixth = ticket_row(ws, "YM-20251128-0006")
    assert sixth["问题描述(摘要)"].value == "停电了"
    assert sixth["企业名称"].value == "A&B <公司>"


def test_admin_sees_everything(
    tmp_path: Path, tickets: list[Ticket], events: Any, calendar: Any, policy: Any, via: str
) -> None:
    wb = export(tmp_path, tickets, events, calendar, policy, admin=True, via=via)
    ws = wb["问题台账"]
    row = ticket_row(ws, "YM-20251121-0002")
    assert row["联系人"].value == "张建国"
    assert row["联系电话"].value == "0371-2345678"
    assert row["统一社会信用代码"].value == "91410223MA9G5XYZ1K"
    footer = rows_of(ws)[-1][0]
    assert "已脱敏" not in footer


def test_warning_fills(
    tmp_path: Path, tickets: list[Ticket], events: Any, calendar: Any, policy: Any, via: str
) -> None:
    wb = export(tmp_path, tickets, events, calendar, policy, via=via)
    ws = wb["问题台账"]
    state = COL["当前状态"]
    fills = {ws.cell(r, 2).value: ws.cell(r, state).fill.fgColor.rgb for r in range(2, 7)}
    assert fills["YM-20251124-0001"] == GREEN  # closed
    assert fills["YM-20251121-0002"] == YELLOW  # 80 % of its 7 days used
    assert fills["YM-20251125-0003"] == RED  # overdue
    watch = wb["超期及督办清单"]
    assert watch.cell(2, 2).value == "YM-20251125-0003"
    assert watch.cell(2, 7).fill.fgColor.rgb == RED
    header = ws.cell(1, 1)
    assert header.font.b


def test_period_filter(
    tmp_path: Path, tickets: list[Ticket], events: Any, calendar: Any, policy: Any
) -> None:
    wb = export(
        tmp_path, tickets, events, calendar, policy, period=(date(2025, 11, 25), date(2025, 11, 28))
    )
    numbers = [r[1] for r in rows_of(wb["问题台账"])[1:-2]]
    assert numbers == ["YM-20251125-0003", "YM-20251128-0006"]
    assert "2025-11-25 至 2025-11-28" in rows_of(wb["问题台账"])[-1][0]


def test_both_writers_agree(
    tmp_path: Path, tickets: list[Ticket], events: Any, calendar: Any, policy: Any
) -> None:
    fast = export(tmp_path, tickets, events, calendar, policy, via="stream")
    slow = export(tmp_path, tickets, events, calendar, policy, via="openpyxl")
    for name in SHEET_NAMES:
        assert rows_of(fast[name]) == rows_of(slow[name]), name


def test_privacy_helpers() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phone("") == ""
    assert mask_name("张先生") == "张先生"
    assert mask_name("李女士") == "李女士"
    assert mask_name("张建国") == "张**"
    assert mask_name(None) == ""
    assert mask_credit_code("91410223MA9G5XYZ1K") == "914102**********1K"


def test_solved_column_follows_the_firms_rating_then_the_close_type(
    tmp_path: Path, calendar: Any, policy: Any
) -> None:
    # As the workflow leaves them: nothing sets resolved_status, the rating is what the firm said.
    closed = {
        "state": TicketState.CLOSED,
        "claimed_at": at(11, 24, 10),
        "resolved_at": at(11, 25, 10),
        "closed_at": at(11, 25, 11),
    }
    tickets = [
        make(policy, 1, at(11, 24, 9), **closed, close_type=CloseType.SOLVED,
             satisfaction=Satisfaction.SATISFIED, rated_at=at(11, 25, 11)),
        make(policy, 2, at(11, 24, 9), **closed, close_type=CloseType.SOLVED,
             satisfaction=Satisfaction.BASIC, rated_at=at(11, 25, 11)),
        make(policy, 3, at(11, 24, 9), claimed_at=at(11, 24, 10), reopen_count=1,
             satisfaction=Satisfaction.UNSOLVED, rated_at=at(11, 25, 11)),
        make(policy, 4, at(11, 24, 9), state=TicketState.PENDING_CONFIRM,
             claimed_at=at(11, 24, 10), resolved_at=at(11, 25, 10)),
        make(policy, 5, at(11, 24, 9), **closed, close_type=CloseType.NO_EVALUATION),
        make(policy, 6, at(11, 24, 9), **closed, close_type=CloseType.EXPLAINED),
        make(policy, 7, at(11, 24, 9), claimed_at=at(11, 24, 10)),
    ]  # fmt: skip
    for via in ("stream", "openpyxl"):
        ws = export(tmp_path, tickets, {}, calendar, policy, via=via)["问题台账"]
        solved = [ticket_row(ws, f"YM-20251124-000{i}")["是否解决"].value for i in range(1, 8)]
        assert solved == [
            "已解决", "已解决", "未解决", "待企业确认", "企业未评价", "未解决·已解释", None,
        ]  # fmt: skip
