"""The Friday metrics of WORKFLOW.md, computed from tickets (the digest's text and chart are in
digest.py).

Definitions (a period is [start, end); ``as_of`` = min(end, now); the cohort of a period is the
tickets submitted in it, cancelled ones counted as ``cancelled`` and left out of every rate; of
those, the ones coordinators closed as 无效 or 重复 are also counted apart, ``invalid`` and
``duplicate``):

1. ``new``: tickets submitted; ``by_domain`` / ``by_town`` over the valid ones; cumulative = the
   year-to-date period's ``new``.
2. 签收及时率 = claimed within ``claim_limit_hours`` working hours of dispatch / (claimed + still
   unclaimed past that limit); first contact likewise within 1 working day of 签收.
3. 办结率 = 办结 by the team (待评价 or 已销号) / valid; in-progress and long-term counts are a
   snapshot of all open tickets at ``now``.
4. 按期办结率 = 办结 on or before the deadline / (办结 + open past the deadline); long-term items
   are out of it while open. The overdue list names every open ticket past its deadline.
5. 解决率 (firm-confirmed) = closed as solved with 满意/基本满意 / 办结 — apart from 办结率.
6. 满意率 = (满意 + 基本满意) / rated; 评价覆盖率 = rated closed / closed.
7. 平均办结用时: working days from submission to 办结.
8. returns (退单), reopens (重办), supervised tickets (督办 ≥ 1).

Merged tickets (合并, ``merged_into`` set) are one problem with their main ticket: they are left
out of every count above and counted as ``merged``; ``firms`` = valid + merged is the firms'
reports the problems stand for ("问题 N 个，涉及企业 M 家"; a firm that reported the same problem
twice counts twice). A merged ticket that was cancelled is in neither. A merged firm that says
"not solved" makes its ticket a problem of its own again (``merged_into`` cleared).

Everything is a count or a sum, so the same ``Metrics`` can be filled from SQL aggregates.
Per-ticket clock values that never change once known (the 签收 and first-contact deadlines, the
working days to 办结) are ``TicketFacts``; pass a dict as ``facts`` to keep them between calls.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.core.models import (
    GENERAL,
    TEAM_NAMES,
    CloseType,
    Satisfaction,
    Ticket,
    TicketState,
)
from bot.worktime.deadlines import ACTIVE_STATES, DeadlinePolicy

logger = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096
NAMED_OVERDUE_WORKDAYS = 5.0
POSITIVE = frozenset({Satisfaction.SATISFIED, Satisfaction.BASIC})
OPEN_STATES = (
    TicketState.PENDING_DISPATCH,
    TicketState.PENDING_CLAIM,
    TicketState.IN_PROGRESS,
    TicketState.LONG_TERM,
    TicketState.PENDING_CONFIRM,
)
PeriodKind = Literal["week", "month", "year"]


def domain_of(ticket: Ticket) -> str:
    """The ticket's domain id: its team, else the classifier's guess, else ``general``."""
    return ticket.team_id or ticket.predicted_team or GENERAL


def domain_label(domain: str) -> str:
    """Short Chinese domain name: ``finance`` → 金融服务, ``general`` → 综合."""
    if domain == GENERAL:
        return "综合"
    return TEAM_NAMES.get(domain, domain).removesuffix("一米团")


def done_at(ticket: Ticket) -> datetime | None:
    """When the team finished (办结), if it has."""
    if ticket.state in (TicketState.PENDING_CONFIRM, TicketState.CLOSED):
        return ticket.resolved_at or ticket.closed_at
    return None


def period_bounds(kind: PeriodKind, now: datetime) -> tuple[datetime, datetime]:
    """``week``: the last 7 days; ``month``: since the 1st; ``year``: since 1 January."""
    if kind == "week":
        return now - timedelta(days=7), now
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "month":
        return midnight.replace(day=1), now
    return midnight.replace(month=1, day=1), now


def previous_bounds(kind: PeriodKind, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The same span one period earlier (last week, last month, last year)."""
    if kind == "week":
        return start - timedelta(days=7), end - timedelta(days=7)
    if kind == "month":
        prev_start = (start - timedelta(days=1)).replace(day=1)
        return prev_start, prev_start + (end - start)
    return start.replace(year=start.year - 1), end.replace(year=end.year - 1)


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """Clock values of one ticket that do not change once its events have happened."""

    stamp: tuple[datetime | None, ...]
    claim_due_at: datetime | None
    first_contact_due_at: datetime | None
    resolve_workdays: float | None


def facts_stamp(t: Ticket) -> tuple[datetime | None, ...]:
    """The fields ``TicketFacts`` depend on: cached facts with another stamp are stale."""
    return (t.dispatched_at, t.submitted_at, t.claimed_at, t.resolved_at, t.closed_at)


def ticket_facts(ticket: Ticket, policy: DeadlinePolicy) -> TicketFacts:
    """A ticket's ``TicketFacts``: the values the workflow stored (at dispatch, 签收 and 办结)
    where it has them, otherwise computed (a few working-calendar look-ups)."""
    since = ticket.dispatched_at or ticket.submitted_at
    claim_due = ticket.claim_due_at
    if claim_due is None and since is not None:
        claim_due = policy.claim_due(since)
    contact_due = ticket.first_contact_due_at
    if contact_due is None and ticket.claimed_at is not None:
        contact_due = policy.first_contact_due(ticket.claimed_at)
    finished = done_at(ticket)
    workdays = ticket.resolve_workdays if finished is not None else None
    if workdays is None and finished is not None and ticket.submitted_at is not None:
        workdays = max(policy.calendar.work_days_between(ticket.submitted_at, finished), 0.0)
    return TicketFacts(facts_stamp(ticket), claim_due, contact_due, workdays)


@dataclass(slots=True)
class Metrics:
    """Counts and sums for one period and one team (or all)."""

    new: int = 0
    cancelled: int = 0
    invalid: int = 0
    duplicate: int = 0
    by_domain: Counter[str] = field(default_factory=Counter)
    by_town: Counter[str] = field(default_factory=Counter)
    claim_decided: int = 0
    claim_on_time: int = 0
    contact_decided: int = 0
    contact_on_time: int = 0
    resolved: int = 0
    closed: int = 0
    due_decided: int = 0
    resolved_on_time: int = 0
    overdue: int = 0
    solved_confirmed: int = 0
    rated: int = 0
    satisfied: int = 0
    rated_closed: int = 0
    workdays_sum: float = 0.0
    returns: int = 0
    reopens: int = 0
    supervised: int = 0
    merged: int = 0

    @property
    def valid(self) -> int:
        """Submitted and not cancelled."""
        return self.new - self.cancelled

    @property
    def firms(self) -> int:
        """涉及企业: the valid problems' reports, each merged firm's included."""
        return self.valid + self.merged

    @property
    def claim_rate(self) -> float | None:
        """签收及时率."""
        return _rate(self.claim_on_time, self.claim_decided)

    @property
    def contact_rate(self) -> float | None:
        """首次联系及时率."""
        return _rate(self.contact_on_time, self.contact_decided)

    @property
    def resolved_rate(self) -> float | None:
        """办结率."""
        return _rate(self.resolved, self.valid)

    @property
    def on_time_rate(self) -> float | None:
        """按期办结率."""
        return _rate(self.resolved_on_time, self.due_decided)

    @property
    def solved_rate(self) -> float | None:
        """企业确认解决率."""
        return _rate(self.solved_confirmed, self.resolved)

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率."""
        return _rate(self.satisfied, self.rated)

    @property
    def rating_coverage(self) -> float | None:
        """评价覆盖率."""
        return _rate(self.rated_closed, self.closed)

    @property
    def avg_workdays(self) -> float | None:
        """平均办结用时（工作日）."""
        return self.workdays_sum / self.resolved if self.resolved else None

    def add(self, other: Metrics) -> None:
        """Add ``other``'s counts into this one."""
        for name in (f.name for f in fields(self)):
            mine = getattr(self, name)
            if isinstance(mine, Counter):
                mine.update(getattr(other, name))
            else:
                setattr(self, name, mine + getattr(other, name))


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(slots=True)
class PeriodStats:
    """Metrics of one period, overall and per team."""

    start: datetime
    end: datetime
    overall: Metrics
    teams: dict[str, Metrics]

    def team(self, team_id: str) -> Metrics:
        """One team's metrics (empty if it had no tickets)."""
        return self.teams.get(team_id) or Metrics()


@dataclass(frozen=True, slots=True)
class OverdueItem:
    """One open ticket past its deadline, named for the weekly report."""

    number: str
    team_id: str | None
    owner: str | None
    enterprise: str | None
    due_at: datetime
    workdays: float

    @property
    def named(self) -> bool:
        """Overdue 5 working days or more: listed by name (通报)."""
        return self.workdays >= NAMED_OVERDUE_WORKDAYS


def compute(
    tickets: Sequence[Ticket],
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    policy: DeadlinePolicy,
    facts: MutableMapping[int, TicketFacts] | None = None,
) -> PeriodStats:
    """The eight metrics for tickets submitted in [start, end), overall and per team."""
    as_of = min(end, now)
    cache: MutableMapping[int, TicketFacts] = {} if facts is None else facts
    teams: dict[str, Metrics] = {}
    for t in tickets:
        sub = t.submitted_at
        if sub is None or not start <= sub < end or t.state is TicketState.DRAFT:
            continue
        team = t.team_id or GENERAL
        m = teams.get(team)
        if m is None:
            m = teams[team] = Metrics()
        state = t.state
        if t.merged_into is not None:  # one problem with its main: only a firm affected
            m.merged += state is not TicketState.CANCELLED
            continue
        m.new += 1
        if state is TicketState.CANCELLED:
            m.cancelled += 1
            m.invalid += t.close_type is CloseType.INVALID
            m.duplicate += t.close_type is CloseType.DUPLICATE
            continue
        f = cache.get(t.id)
        if f is None or f.stamp != facts_stamp(t):
            f = cache[t.id] = ticket_facts(t, policy.of(t.county))
        m.by_domain[domain_of(t)] += 1
        m.by_town[t.town or "未填写"] += 1
        claimed = t.claimed_at
        if claimed is not None:
            m.claim_decided += 1
            if f.claim_due_at is None or claimed <= f.claim_due_at:
                m.claim_on_time += 1
            if f.first_contact_due_at is not None:
                contact = t.first_contact_at
                if contact is not None:
                    m.contact_decided += 1
                    m.contact_on_time += contact <= f.first_contact_due_at
                elif f.first_contact_due_at <= as_of:
                    m.contact_decided += 1
        elif (
            state is TicketState.PENDING_CLAIM
            and f.claim_due_at is not None
            and f.claim_due_at <= as_of
        ):
            m.claim_decided += 1
        finished = done_at(t)
        due = t.due_at
        if finished is not None:
            m.resolved += 1
            m.workdays_sum += f.resolve_workdays or 0.0
            m.due_decided += 1
            if due is None or finished <= due:
                m.resolved_on_time += 1
            else:
                m.overdue += 1
        elif state in ACTIVE_STATES and due is not None and due <= as_of:
            m.due_decided += 1
            m.overdue += 1
        if state is TicketState.CLOSED:
            m.closed += 1
        sat = t.satisfaction
        if sat is not None:
            m.rated += 1
            m.satisfied += sat in POSITIVE
            if state is TicketState.CLOSED:
                m.rated_closed += 1
                m.solved_confirmed += sat in POSITIVE and t.close_type is CloseType.SOLVED
        m.returns += t.return_count
        m.reopens += t.reopen_count
        m.supervised += t.supervise_count > 0
    overall = Metrics()
    for m in teams.values():
        overall.add(m)
    return PeriodStats(start, end, overall, teams)


def from_groups(
    start: datetime,
    end: datetime,
    groups: Sequence[Mapping[str, Any]],
    breakdown: Sequence[tuple[str, str, str, int]] = (),
) -> PeriodStats:
    """``PeriodStats`` from the database's grouped counts (bot.storage.db ``period_groups``).

    Each group shares team, state, rating and close type; the rules are those of ``compute``.
    """
    teams: dict[str, Metrics] = {}
    done_states = {TicketState.PENDING_CONFIRM.value, TicketState.CLOSED.value}
    active = {s.value for s in ACTIVE_STATES}
    positive = {s.value for s in POSITIVE}
    for g in groups:
        m = teams.setdefault(str(g["team"]), Metrics())
        n, state, sat = int(g["n"]), str(g["state"]), g["satisfaction"]
        if g.get("merged"):  # merged tickets, not cancelled (bot.storage.db period_groups)
            m.merged += n
            continue
        m.new += n
        if state == TicketState.CANCELLED.value:
            m.cancelled += n
            m.invalid += n if g["close_type"] == CloseType.INVALID.value else 0
            m.duplicate += n if g["close_type"] == CloseType.DUPLICATE.value else 0
            continue
        m.claim_decided += int(g["claimed"] or 0)
        if state == TicketState.PENDING_CLAIM.value:
            m.claim_decided += int(g["unclaimed_late"] or 0)
        m.claim_on_time += int(g["claim_on_time"] or 0)
        m.contact_decided += int(g["contact_decided"] or 0)
        m.contact_on_time += int(g["contact_on_time"] or 0)
        if state in done_states:
            done, late = int(g["done"] or 0), int(g["done_late"] or 0)
            m.resolved += done
            m.workdays_sum += float(g["workdays"] or 0.0)
            m.due_decided += done
            m.resolved_on_time += done - late
            m.overdue += late
        elif state in active:
            m.due_decided += int(g["due_passed"] or 0)
            m.overdue += int(g["due_passed"] or 0)
        if state == TicketState.CLOSED.value:
            m.closed += n
        if sat is not None:
            m.rated += n
            m.satisfied += n if sat in positive else 0
            if state == TicketState.CLOSED.value:
                m.rated_closed += n
                if sat in positive and g["close_type"] == CloseType.SOLVED.value:
                    m.solved_confirmed += n
        m.returns += int(g["returns"] or 0)
        m.reopens += int(g["reopens"] or 0)
        m.supervised += int(g["supervised"] or 0)
    for team, domain, town, count in breakdown:
        m = teams.setdefault(team, Metrics())
        m.by_domain[domain] += count
        m.by_town[town] += count
    overall = Metrics()
    for m in teams.values():
        overall.add(m)
    return PeriodStats(start, end, overall, teams)


def open_counts_from(rows: Sequence[tuple[str, str, int]]) -> dict[str, Counter[TicketState]]:
    """``open_counts`` from (team, state, count) rows."""
    out: dict[str, Counter[TicketState]] = {"all": Counter()}
    for team, state, count in rows:
        out["all"][TicketState(state)] += count
        out.setdefault(team, Counter())[TicketState(state)] += count
    return out


def compare(this: Metrics, last: Metrics) -> dict[str, float | None]:
    """Change from ``last`` to ``this``: counts as differences, rates in percentage points."""
    out: dict[str, float | None] = {}
    for name in ("new", "resolved", "closed", "overdue", "returns", "reopens", "supervised"):
        out[name] = float(getattr(this, name) - getattr(last, name))
    for name in (
        "claim_rate",
        "contact_rate",
        "resolved_rate",
        "on_time_rate",
        "solved_rate",
        "satisfaction_rate",
        "rating_coverage",
    ):
        a, b = getattr(this, name), getattr(last, name)
        out[name] = None if a is None or b is None else (a - b) * 100
    a_days, b_days = this.avg_workdays, last.avg_workdays
    out["avg_workdays"] = None if a_days is None or b_days is None else a_days - b_days
    return out


def open_counts(tickets: Sequence[Ticket]) -> dict[str, Counter[TicketState]]:
    """Open tickets by team and state right now (``all`` for the total)."""
    out: dict[str, Counter[TicketState]] = {"all": Counter()}
    for t in tickets:
        if t.state in OPEN_STATES and t.merged_into is None:
            out["all"][t.state] += 1
            out.setdefault(t.team_id or GENERAL, Counter())[t.state] += 1
    return out


def overdue_list(
    tickets: Sequence[Ticket], now: datetime, policy: DeadlinePolicy
) -> list[OverdueItem]:
    """Open tickets past their deadline, most overdue first."""
    items = []
    for t in tickets:
        if t.state in ACTIVE_STATES and t.due_at is not None and t.due_at <= now:
            items.append(
                OverdueItem(
                    t.number or f"#{t.id}",
                    t.team_id,
                    t.claimed_by_name,
                    t.enterprise_name,
                    t.due_at,
                    policy.of(t.county).overdue_workdays(t, now),
                )
            )
    items.sort(key=lambda i: (-i.workdays, i.number))
    return items


@dataclass(slots=True)
class Digest:
    """Everything the Friday report shows."""

    now: datetime
    kind: PeriodKind
    team_id: str | None
    period: PeriodStats
    previous: PeriodStats
    ytd: PeriodStats
    open_now: dict[str, Counter[TicketState]]
    overdue: list[OverdueItem]
    overdue_count: int | None = None  # all overdue tickets, when `overdue` lists only the first
    area: str = "全县"  # what it covers: 全县, a county's name, or every county

    @property
    def overdue_total(self) -> int:
        """How many tickets are overdue now."""
        return len(self.overdue) if self.overdue_count is None else self.overdue_count

    def metrics(self, stats: PeriodStats) -> Metrics:
        """The digest's scope (one team or all) in ``stats``."""
        return stats.overall if self.team_id is None else stats.team(self.team_id)


def build_digest(
    tickets: Sequence[Ticket],
    *,
    now: datetime,
    policy: DeadlinePolicy,
    kind: PeriodKind = "week",
    team_id: str | None = None,
    facts: MutableMapping[int, TicketFacts] | None = None,
) -> Digest:
    """This period, the previous one and the year to date, plus open counts and overdue list."""
    cache: MutableMapping[int, TicketFacts] = {} if facts is None else facts
    scope = tickets if team_id is None else [t for t in tickets if t.team_id == team_id]
    start, end = period_bounds(kind, now)
    prev_start, prev_end = previous_bounds(kind, start, end)
    ytd_start, _ = period_bounds("year", now)
    return Digest(
        now=now,
        kind=kind,
        team_id=team_id,
        period=compute(scope, start, end, now=now, policy=policy, facts=cache),
        previous=compute(scope, prev_start, prev_end, now=now, policy=policy, facts=cache),
        ytd=compute(scope, ytd_start, now, now=now, policy=policy, facts=cache),
        open_now=open_counts(scope),
        overdue=overdue_list(scope, now, policy),
    )
