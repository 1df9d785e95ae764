"""The problem ledger (问题台账) as an .xlsx workbook, with the columns of WORKFLOW.md.

The sheets are described once (``ledger_sheets``: headers, widths, typed rows, warning fills) and
written by two backends that produce the same workbook: ``build_ledger`` returns an openpyxl
``Workbook`` (handy in memory for a few thousand rows), and ``write_ledger`` streams SpreadsheetML
straight into the zip file, because openpyxl's own writer needs ~25 s for 100,000 rows × 37
columns while this needs a few seconds (both writers are in xlsx.py). Tests read both back
with openpyxl.

Personal data (contact name, phone, credit code) is masked unless the exporter is an admin;
every sheet ends with a line naming the exporter and the time of export.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path

from openpyxl import Workbook

from bot.core.models import (
    GENERAL,
    TEAM_NAMES,
    CloseType,
    Satisfaction,
    Ticket,
    TicketEvent,
    TicketState,
    Urgency,
    WarnLevel,
    team_name,
)
from bot.core.privacy import mask_credit_code, mask_name, mask_phone
from bot.reporting.stats import (
    NAMED_OVERDUE_WORKDAYS,
    POSITIVE,
    Metrics,
    TicketFacts,
    compute,
    domain_label,
    domain_of,
    done_at,
    facts_stamp,
    period_bounds,
    ticket_facts,
)
from bot.reporting.xlsx import Sheet, Value, workbook, write_sheets
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import ACTIVE_STATES, DeadlinePolicy

Period = tuple[date, date]

LEDGER_COLUMNS: tuple[str, ...] = (
    "序号", "工单编号", "登记日期", "问题来源", "所属乡镇/园区", "企业名称", "统一社会信用代码",
    "行业", "联系人", "联系电话", "问题领域", "诉求类型", "问题描述(摘要)", "紧急程度",
    "责任一米团", "责任人", "协办单位", "交办时间", "签收时间", "首次联系企业时间", "办结时限",
    "当前状态", "最新进展", "办理结果", "是否解决", "办结日期", "办理用时(工作日)",
    "是否超期/超期天数", "延期次数", "退单次数", "督办次数", "领导批示", "回访日期", "企业评价",
    "是否销号", "销号日期", "备注",
)  # fmt: skip
SHEET_NAMES: tuple[str, ...] = (
    "问题台账", "本周新增", "推进中", "已销号", "超期及督办清单", "长期跟踪", "分团统计",
)  # fmt: skip
TEAM_COLUMNS: tuple[str, ...] = (
    "责任一米团", "交办总量", "签收及时率", "办结率", "按期办结率", "解决率", "满意率",
    "平均办结时长(工作日)", "退单数", "重办数", "超期数", "无效件", "重复件", "涉及企业(家)",
)  # fmt: skip
_DATE_COLUMNS = frozenset({"登记日期", "办结日期", "回访日期", "销号日期"})
_CHANNELS = {
    "telegram": "Telegram",
    "wecom": "企业微信",
    "wxkf": "微信",
    "hotline": "12345热线",
    "visit": "走访",
}
_CLOSE_TYPES = {
    CloseType.SOLVED: "已解决",
    CloseType.EXPLAINED: "未解决·已解释",
    CloseType.NO_EVALUATION: "企业未评价，到期销号",
    CloseType.DIRECT_ANSWER: "直接答复",
    CloseType.INVALID: "无效件（专班关闭）",
    CloseType.DUPLICATE: "重复件（专班关闭）",
}
_SHORT = ("序号", "工单编号", "登记日期", "所属乡镇/园区", "企业名称", "问题领域",
          "问题描述(摘要)", "紧急程度", "责任一米团", "责任人", "办结时限", "当前状态",
          "最新进展")  # fmt: skip
_WATCH = (
    "序号", "工单编号", "企业名称", "责任一米团", "责任人", "办结时限", "当前状态",
    "超期工作日", "是否通报", "督办次数", "延期次数", "领导批示",
)  # fmt: skip
_LONG = (
    "序号", "工单编号", "登记日期", "企业名称", "责任一米团", "责任人", "问题描述(摘要)",
    "最新进展",
)  # fmt: skip
_URGENCY = {u: u.label for u in Urgency}
_SATISFACTION = {s: s.label for s in Satisfaction}
# 是否解决 when the firm has not said (no rating): how the ticket was closed.
_SOLVED_BY_CLOSE = {
    CloseType.SOLVED: "已解决",
    CloseType.EXPLAINED: "未解决·已解释",
    CloseType.NO_EVALUATION: "企业未评价",
    CloseType.DIRECT_ANSWER: "已答复",
    CloseType.INVALID: "无效",
    CloseType.DUPLICATE: "重复",
}
_DOMAINS = {d: domain_label(d) for d in (*TEAM_NAMES, GENERAL)}
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_PROGRESS_ACTIONS = frozenset({"progress", "feedback", "long_term_feedback"})


def _local(dt: datetime | None, cal: WorkCalendar) -> datetime | None:
    """Local naive time: openpyxl and Excel have no time zones."""
    return None if dt is None else cal.local(dt).replace(tzinfo=None, microsecond=0)


def _day(dt: datetime | None, cal: WorkCalendar) -> date | None:
    return None if dt is None else cal.local(dt).date()


def _clean(text: str | None) -> str:
    """Drop control characters XML cannot carry (most text is printable: the fast path)."""
    if not text:
        return ""
    return text if text.isprintable() else _ILLEGAL.sub("", text)


class _Rows:
    """Turns tickets into ledger rows (one instance per export)."""

    def __init__(
        self,
        events_by_ticket: Mapping[int, Sequence[TicketEvent]],
        now: datetime,
        admin: bool,
        calendar: WorkCalendar,
        policy: DeadlinePolicy,
        facts: MutableMapping[int, TicketFacts],
    ) -> None:
        self.facts = facts
        self.events = events_by_ticket
        self.now = now
        self.admin = admin
        self.cal = calendar
        self.policy = policy
        self._overdue: dict[int, float] = {}
        self.merged: dict[int, int] = {}  # main ticket id -> tickets merged into it (listed)

    def overdue(self, t: Ticket) -> float:
        """Working days overdue (memoised: several sheets ask)."""
        days = self._overdue.get(t.id)
        if days is None:
            days = self._overdue[t.id] = (
                self.policy.of(t.county).overdue_workdays(t, self.now)
                if t.due_at is not None and (done_at(t) or self.now) > t.due_at
                else 0.0
            )
        return days

    def progress(self, t: Ticket) -> str:
        """Latest progress note: the ticket's, else the last progress event's text."""
        if t.latest_progress:
            return _clean(t.latest_progress)
        for event in reversed(self.events.get(t.id, ())):
            if event.action in _PROGRESS_ACTIONS:
                return _clean(str(event.payload.get("text", "")))
        return ""

    def full(self, i: int, t: Ticket) -> list[Value]:
        """The 37 columns of 问题台账 for one ticket."""
        cal = self.cal
        finished = done_at(t)
        facts = self.facts.get(t.id)
        if facts is None or facts.stamp != facts_stamp(t):
            facts = self.facts[t.id] = ticket_facts(t, self.policy.of(t.county))
        workdays = None if facts.resolve_workdays is None else round(facts.resolve_workdays, 1)
        late = self.overdue(t)
        if late > 0:
            overdue = f"是/{late:.1f}个工作日"
        elif t.state is TicketState.LONG_TERM:
            overdue = "长期跟踪"
        else:
            overdue = "否"
        notes = []
        if t.close_type is not None:
            notes.append(_CLOSE_TYPES[t.close_type])
        if t.state is TicketState.CANCELLED:
            notes.append("已撤销")
        if t.confidential:
            notes.append("保密件")
        if t.reopen_count:
            notes.append(f"重办{t.reopen_count}次")
        if t.merged_into is not None:
            notes.append(f"并入 {t.merged_into_number or '#' + str(t.merged_into)}")
        merged = self.merged.get(t.id)
        if merged:
            notes.append(f"合并办理：并入 {merged} 件，涉及企业 {merged + 1} 家")
        name = _clean(t.contact_name)
        phone = _clean(t.contact_phone)
        code = _clean(t.credit_code)
        return [
            i,
            t.number or f"#{t.id}",
            _day(t.submitted_at or t.created_at, cal),
            _CHANNELS.get(t.channel, t.channel),
            _clean(t.town),
            _clean(t.enterprise_name),
            code if self.admin else mask_credit_code(code),
            _clean(t.industry),
            name if self.admin else mask_name(name),
            phone if self.admin else mask_phone(phone),
            _DOMAINS.get(domain_of(t)) or domain_label(domain_of(t)),
            t.request_type,
            _clean(t.summary or t.text[:100]),
            _URGENCY[t.urgency],
            team_name(t.team_id),
            _clean(t.claimed_by_name),
            "、".join([team_name(c) for c in t.co_teams]) if t.co_teams else "",
            _local(t.dispatched_at, cal),
            _local(t.claimed_at, cal),
            _local(t.first_contact_at, cal),
            _local(t.due_at, cal),
            t.state.label,
            self.progress(t),
            _clean(t.result_text),
            _solved(t),
            _day(finished, cal),
            workdays,
            overdue,
            t.extension_count,
            t.return_count,
            t.supervise_count,
            _clean(t.leader_note),
            _day(t.rated_at, cal),
            _SATISFACTION[t.satisfaction] if t.satisfaction else "",
            "是" if t.state is TicketState.CLOSED else "否",
            _day(t.closed_at, cal),
            "；".join(notes),
        ]


def _solved(t: Ticket) -> str:
    """是否解决: the firm's word first (满意 and 基本满意 are both 已解决·…), then the close type."""
    if t.state is TicketState.PENDING_CONFIRM:
        return "待企业确认"
    if t.satisfaction in POSITIVE:
        return "已解决"
    if t.satisfaction is Satisfaction.UNSOLVED:
        return "未解决"
    if t.resolved_status:
        return t.resolved_status
    return _SOLVED_BY_CLOSE[t.close_type] if t.close_type is not None else ""


_SHORT_INDEX = [LEDGER_COLUMNS.index(h) for h in _SHORT]
_STATE_COLUMN = LEDGER_COLUMNS.index("当前状态")


def _in_period(t: Ticket, period: Period | None, cal: WorkCalendar) -> bool:
    if period is None:
        return True
    when = t.submitted_at or t.created_at
    return period[0] <= cal.local(when).date() <= period[1]


def ledger_sheets(
    tickets: Sequence[Ticket],
    events_by_ticket: Mapping[int, Sequence[TicketEvent]],
    *,
    now: datetime,
    exporter_name: str,
    exporter_is_admin: bool,
    period: Period | None = None,
    calendar: WorkCalendar,
    policy: DeadlinePolicy,
    facts: MutableMapping[int, TicketFacts] | None = None,
) -> list[Sheet]:
    """The seven sheets of the ledger as plain data (both writers use this).

    ``facts`` is the same per-ticket cache ``bot.reporting.stats.compute`` takes; pass one to share it.
    """
    cache: MutableMapping[int, TicketFacts] = {} if facts is None else facts
    rows = _Rows(events_by_ticket, now, exporter_is_admin, calendar, policy, cache)
    selected = [
        t for t in tickets if t.state is not TicketState.DRAFT and _in_period(t, period, calendar)
    ]
    selected.sort(key=lambda t: (t.submitted_at or t.created_at, t.id))
    selected = _merged_under_main(selected)
    for t in selected:
        if t.merged_into is not None:
            rows.merged[t.merged_into] = rows.merged.get(t.merged_into, 0) + 1
    scope = "全部" if period is None else f"{period[0]:%Y-%m-%d} 至 {period[1]:%Y-%m-%d}"
    footer = (
        f"导出人：{_clean(exporter_name)}　导出时间：{_local(now, calendar):%Y-%m-%d %H:%M}"
        f"　范围：{scope}"
        + (
            "　（管理员导出，未脱敏）"
            if exporter_is_admin
            else "　（联系人、电话、信用代码已脱敏）"
        )
    )
    week_start, week_end = period_bounds("week", now)

    ledger = Sheet("问题台账", LEDGER_COLUMNS, fill_column=_STATE_COLUMN, footer=footer)
    new_week = Sheet("本周新增", _SHORT, fill_column=_SHORT.index("当前状态"), footer=footer)
    ongoing = Sheet("推进中", _SHORT, fill_column=_SHORT.index("当前状态"), footer=footer)
    closed_headers = (*_SHORT[:-1], "办理结果", "企业评价", "销号日期")
    closed = Sheet("已销号", closed_headers, footer=footer)
    watch = Sheet("超期及督办清单", _WATCH, fill_column=6, footer=footer)
    long_term = Sheet("长期跟踪", _LONG, footer=footer)

    watched: list[tuple[float, list[Value], WarnLevel]] = []
    for i, t in enumerate(selected, 1):
        full = rows.full(i, t)
        level = policy.of(t.county).warn_level(t, now)
        ledger.rows.append(full)
        ledger.levels.append(level)
        short = [full[k] for k in _SHORT_INDEX]
        submitted = t.submitted_at or t.created_at
        if week_start <= submitted < week_end:
            new_week.rows.append([len(new_week.rows) + 1, *short[1:]])
            new_week.levels.append(level)
        if t.state in ACTIVE_STATES or t.state is TicketState.PENDING_CONFIRM:
            ongoing.rows.append([len(ongoing.rows) + 1, *short[1:]])
            ongoing.levels.append(level)
        if t.state is TicketState.CLOSED and t.closed_at and week_start <= t.closed_at < week_end:
            closed.rows.append([len(closed.rows) + 1, *short[1:-1], full[23], full[33], full[35]])
        if t.state is TicketState.LONG_TERM:
            long_term.rows.append(
                [len(long_term.rows) + 1, full[1], full[2], full[5], full[14], full[15],
                 full[12], full[22]]
            )  # fmt: skip
        late = rows.overdue(t) if t.state in ACTIVE_STATES else 0.0
        if late > 0 or t.supervise_count > 0:
            watched.append(
                (
                    late,
                    [0, full[1], full[5], full[14], full[15], full[20], full[21],
                     round(late, 1), "是" if late >= NAMED_OVERDUE_WORKDAYS else "否",
                     t.supervise_count, t.extension_count, full[31]],
                    level,
                )
            )  # fmt: skip
    watched.sort(key=lambda w: -w[0])
    for n, (_, row, level) in enumerate(watched, 1):
        row[0] = n
        watch.rows.append(row)
        watch.levels.append(level)

    if period is None:
        start = min((t.submitted_at or t.created_at for t in selected), default=now)
        end = now
    else:
        start = datetime.combine(period[0], time(), tzinfo=calendar.tz)
        end = datetime.combine(period[1], time.max, tzinfo=calendar.tz)
    stats = compute(selected, start, end, now=now, policy=policy, facts=cache)
    teams = Sheet(
        "分团统计", TEAM_COLUMNS, percent_columns=frozenset({2, 3, 4, 5, 6}), footer=footer
    )
    team_ids = [*TEAM_NAMES, *sorted(k for k in stats.teams if k not in TEAM_NAMES)]
    for team_id in team_ids:
        teams.rows.append(_team_row(team_name(team_id), stats.team(team_id)))
    teams.rows.append(_team_row("合计", stats.overall))
    return [ledger, new_week, ongoing, closed, watch, long_term, teams]


def _merged_under_main(tickets: list[Ticket]) -> list[Ticket]:
    """The tickets in their order, each merged one moved right under its main ticket (one
    whose main is not in the export stays where it is)."""
    ids = {t.id for t in tickets}
    children: dict[int, list[Ticket]] = {}
    for t in tickets:
        if t.merged_into is not None and t.merged_into in ids:
            children.setdefault(t.merged_into, []).append(t)
    if not children:
        return tickets
    out: list[Ticket] = []
    for t in tickets:
        if t.merged_into is not None and t.merged_into in ids:
            continue
        out.append(t)
        out.extend(children.get(t.id, ()))
    return out


def _team_row(name: str, m: Metrics) -> list[Value]:
    avg = None if m.avg_workdays is None else round(m.avg_workdays, 1)
    return [
        name,
        m.valid,
        m.claim_rate,
        m.resolved_rate,
        m.on_time_rate,
        m.solved_rate,
        m.satisfaction_rate,
        avg,
        m.returns,
        m.reopens,
        m.overdue,
        m.invalid,
        m.duplicate,
        m.firms,
    ]


def build_ledger(
    tickets: Sequence[Ticket],
    events_by_ticket: Mapping[int, Sequence[TicketEvent]],
    *,
    now: datetime,
    exporter_name: str,
    exporter_is_admin: bool,
    period: Period | None = None,
    calendar: WorkCalendar,
    policy: DeadlinePolicy,
    facts: MutableMapping[int, TicketFacts] | None = None,
) -> Workbook:
    """The ledger as an openpyxl ``Workbook`` (for large exports use ``write_ledger``)."""
    sheets = ledger_sheets(
        tickets,
        events_by_ticket,
        now=now,
        exporter_name=exporter_name,
        exporter_is_admin=exporter_is_admin,
        period=period,
        calendar=calendar,
        policy=policy,
        facts=facts,
    )
    return workbook(sheets)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: building 100,000 rows of lists otherwise triggers
    full collections that rescan every ticket (about a third of the export time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_ledger(
    tickets: Sequence[Ticket],
    events_by_ticket: Mapping[int, Sequence[TicketEvent]],
    path: Path | str,
    *,
    now: datetime,
    exporter_name: str,
    exporter_is_admin: bool,
    period: Period | None = None,
    calendar: WorkCalendar,
    policy: DeadlinePolicy,
    facts: MutableMapping[int, TicketFacts] | None = None,
) -> Path:
    """Write the ledger to ``path`` (.xlsx) by streaming; fast enough for 100,000 tickets."""
    with _gc_paused():
        return write_sheets(
            ledger_sheets(
                tickets,
                events_by_ticket,
                now=now,
                exporter_name=exporter_name,
                exporter_is_admin=exporter_is_admin,
                period=period,
                calendar=calendar,
                policy=policy,
                facts=facts,
            ),
            path,
            exporter_name=exporter_name,
            now=now,
        )
