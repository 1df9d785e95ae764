"""The Friday metrics on a hand-built week, the digest text and the chart."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.channels.telegram.render import html
from bot.core.models import CloseType, Satisfaction, Ticket, TicketState, Urgency
from bot.reporting import digest
from bot.reporting.digest import render_chart, render_digest
from bot.reporting.stats import (
    TicketFacts,
    build_digest,
    compare,
    compute,
    period_bounds,
)
from bot.worktime.deadlines import DeadlinePolicy
from tests.builders import make_policy, make_ticket

# The scenarios run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 11, 28, 16, 0, tzinfo=TZ)  # a Friday afternoon


def at(mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(2025, mo, d, h, mi, tzinfo=TZ)


@pytest.fixture
def policy() -> DeadlinePolicy:
    return make_policy()


def make(policy: DeadlinePolicy, tid: int, submitted: datetime, **kw: Any) -> Ticket:
    return make_ticket(policy, tid, submitted, **{"enterprise_name": f"企业{tid}", **kw})


@pytest.fixture
def tickets(policy: DeadlinePolicy) -> list[Ticket]:
    closed = TicketState.CLOSED
    return [
        # T1 Mon 9:00: claimed 9:30 (due 11:00), contacted, resolved Tue 15:00, solved, 满意.
        make(policy, 1, at(11, 24, 9), state=closed, claimed_at=at(11, 24, 9, 30),
             claimed_by_name="李干事", first_contact_at=at(11, 24, 10),
             resolved_at=at(11, 25, 15), closed_at=at(11, 26, 10),
             close_type=CloseType.SOLVED, satisfaction=Satisfaction.SATISFIED),
        # T2 Mon 10:00: claimed 15:00 (due 12:00: late), no contact (due Tue 15:00: late).
        make(policy, 2, at(11, 24, 10), claimed_at=at(11, 24, 15), claimed_by_name="王干事"),
        # T3 Tue 9:00, land: still unclaimed, 签收 due 11:00 has passed.
        make(policy, 3, at(11, 25, 9), state=TicketState.PENDING_CLAIM, team_id="land",
             town="大营镇"),
        # T4 Wed 9:00, land: resolved Thu 9:00 (1 working day), explained, 基本满意.
        make(policy, 4, at(11, 26, 9), state=closed, team_id="land", town="大营镇",
             claimed_at=at(11, 26, 9, 10), first_contact_at=at(11, 26, 9, 20),
             resolved_at=at(11, 27, 9), closed_at=at(11, 28, 9),
             close_type=CloseType.EXPLAINED, satisfaction=Satisfaction.BASIC),
        # T5 Thu: withdrawn.
        make(policy, 5, at(11, 27, 9), state=TicketState.CANCELLED),
        # T6 Tue 9:00 urgent: due Wed 9:00, still open → overdue; returned once, supervised.
        make(policy, 6, at(11, 25, 9), urgency=Urgency.URGENT, claimed_at=at(11, 25, 9, 5),
             claimed_by_name="<赵>干事", first_contact_at=at(11, 25, 9, 10), return_count=1,
             supervise_count=1),
        # T7 last week: resolved Fri 21 Nov, solved, 满意.
        make(policy, 7, at(11, 17, 9), state=closed, claimed_at=at(11, 17, 9, 30),
             first_contact_at=at(11, 17, 10), resolved_at=at(11, 21, 9),
             closed_at=at(11, 24, 9), close_type=CloseType.SOLVED,
             satisfaction=Satisfaction.SATISFIED),
        # T8 September: long-term item.
        make(policy, 8, at(9, 1, 9), state=TicketState.LONG_TERM, team_id="rural",
             claimed_at=at(9, 1, 10), first_contact_at=at(9, 1, 11)),
        # T9 a draft: never counted.
        make(policy, 9, at(11, 27, 10), state=TicketState.DRAFT),
    ]  # fmt: skip


def test_week_metrics(tickets: list[Ticket], policy: DeadlinePolicy) -> None:
    start, end = period_bounds("week", NOW)
    assert (start, end) == (at(11, 21, 16), NOW)
    week = compute(tickets, start, end, now=NOW, policy=policy)
    m = week.overall
    assert (m.new, m.cancelled, m.valid) == (6, 1, 5)  # T1–T6
    assert dict(m.by_domain) == {"finance": 3, "land": 2}
    assert dict(m.by_town) == {"城关镇": 3, "大营镇": 2}
    # 签收: on time T1, T4, T6; late T2 (claimed late), T3 (unclaimed past 11:00) → 3/5.
    assert (m.claim_on_time, m.claim_decided) == (3, 5)
    assert m.claim_rate == pytest.approx(0.6)
    # First contact: T1, T4, T6 on time; T2 past its Tue 15:00 deadline → 3/4.
    assert m.contact_rate == pytest.approx(0.75)
    # 办结: T1, T4 of 5 valid.
    assert (m.resolved, m.closed) == (2, 2)
    assert m.resolved_rate == pytest.approx(0.4)
    # On time: T1, T4 resolved in time; T6 open past its deadline → 2/3.
    assert (m.resolved_on_time, m.due_decided, m.overdue) == (2, 3, 1)
    # Firm-confirmed solved: only T1 (T4 was explained, not solved) → 1/2.
    assert m.solved_rate == pytest.approx(0.5)
    # 满意 + 基本满意 = 2 of 2 rated; coverage 2 rated of 2 closed.
    assert m.satisfaction_rate == 1.0
    assert m.rating_coverage == 1.0
    # T1: Mon 9:00 → Tue 15:00 = 6 h + 4 h = 10/6.5 days; T4: 1 day.
    assert m.avg_workdays == pytest.approx((10 / 6.5 + 1) / 2)
    assert (m.returns, m.reopens, m.supervised) == (1, 0, 1)
    finance, land = week.team("finance"), week.team("land")
    assert (finance.new, finance.valid, finance.resolved) == (4, 3, 1)
    assert (land.new, land.claim_on_time, land.claim_decided) == (2, 1, 2)
    assert week.team("publicity").new == 0


def test_compare_and_year(tickets: list[Ticket], policy: DeadlinePolicy) -> None:
    facts: dict[int, TicketFacts] = {}
    digest = build_digest(tickets, now=NOW, policy=policy, facts=facts)
    last = digest.previous.overall
    assert (last.new, last.resolved, last.claim_rate, last.on_time_rate) == (1, 1, 1.0, 1.0)
    delta = compare(digest.period.overall, last)
    assert delta["new"] == 5
    assert delta["claim_rate"] == pytest.approx(-40.0)  # 60 % vs 100 %
    assert delta["resolved_rate"] == pytest.approx(-60.0)
    assert digest.ytd.overall.new == 8  # T1–T8, the draft excluded
    opened = digest.open_now["all"]
    assert opened[TicketState.IN_PROGRESS] == 2  # T2, T6
    assert opened[TicketState.LONG_TERM] == 1
    assert opened[TicketState.PENDING_CLAIM] == 1
    # Only T6 is overdue: Wed 9:00 → Fri 16:00 = 6 + 6.5 + 5 working hours.
    assert [(i.number, i.owner) for i in digest.overdue] == [("YM-20251125-0006", "<赵>干事")]
    assert digest.overdue[0].workdays == pytest.approx(17.5 / 6.5)
    assert not digest.overdue[0].named
    assert len(facts) == 7  # cached for the next call (T5 cancelled, T9 draft skipped)


def test_digest_text(tickets: list[Ticket], policy: DeadlinePolicy) -> None:
    # As Telegram shows it: the digest is neutral markup, escaped where it is rendered.
    text = html(render_digest(build_digest(tickets, now=NOW, policy=policy)))
    assert "本周新增 <b>6</b> 件（+5）" in text
    assert "年度累计 8 件" in text
    assert "金融服务 3件、土地服务 2件" in text
    assert "及时率 60.0%（-40.0个百分点）" in text
    assert "首次联系及时率 75.0%" in text
    assert "办结率 40.0%" in text
    assert "66.7%" in text
    assert "企业确认解决率</b>　50.0%" in text
    assert "满意率</b>　100.0%" in text
    assert "1.3 个工作日" in text
    assert "退单 1 次，重办 0 次，督办 1 件" in text
    assert "&lt;赵&gt;干事" in text and "<赵>" not in text
    assert "超期 2.7 个工作日" in text
    assert len(text) <= 4096


def test_digest_for_one_team(tickets: list[Ticket], policy: DeadlinePolicy) -> None:
    text = html(render_digest(build_digest(tickets, now=NOW, policy=policy, team_id="land")))
    assert "土地服务一米团" in text
    assert "本周新增 <b>2</b> 件" in text
    assert "分团情况" not in text


def test_long_overdue_list_is_truncated(policy: DeadlinePolicy) -> None:
    many = [
        make(policy, i, at(10, 9, 9), enterprise_name="很长的企业名称" * 3, claimed_at=at(10, 9, 10),
             claimed_by_name="负责人" + str(i))
        for i in range(1, 400)
    ]  # fmt: skip
    digest = build_digest(many, now=NOW, policy=policy)
    assert all(item.named for item in digest.overdue)  # 6 weeks late: 通报
    text = render_digest(digest)
    assert len(text) <= 4096
    assert "【通报】" in text
    assert "……等 " in text and " 条" in text


def test_chart_is_png(tickets: list[Ticket], policy: DeadlinePolicy) -> None:
    png = render_chart(build_digest(tickets, now=NOW, policy=policy))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000


def test_chart_without_cjk_font(
    tickets: list[Ticket], policy: DeadlinePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digest, "_font_cache", [None])
    png = render_chart(build_digest(tickets, now=NOW, policy=policy))
    assert png.startswith(b"\x89PNG")
