"""Warning levels, extensions and reminders: each fires once, in order, and not again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.core.models import Ticket, TicketEvent, TicketState, Urgency, WarnLevel
from bot.worktime.deadlines import DeadlinePolicy, Reminder, ReminderKind, ReminderTarget
from tests.builders import make_policy, make_ticket

TZ = ZoneInfo("Asia/Shanghai")


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ)


@pytest.fixture
def policy() -> DeadlinePolicy:
    return make_policy()


def ticket(policy: DeadlinePolicy, **kw: Any) -> Ticket:
    submitted = kw.pop("submitted_at", at(2025, 11, 17, 9, 0))  # Monday
    kw.setdefault("state", TicketState.PENDING_CLAIM)
    return make_ticket(policy, 1, submitted, **kw)


def run_loop(
    policy: DeadlinePolicy, t: Ticket, times: list[datetime], sent: set[str]
) -> list[tuple[datetime, Reminder]]:
    """What a job-queue loop does: ask at each tick, send, store the keys."""
    fired: list[tuple[datetime, Reminder]] = []
    for now in times:
        for reminder in policy.reminders_due(t, now, sent):
            fired.append((now, reminder))
            sent.add(reminder.key)
    return fired


def test_claim_reminders_fire_once_in_order(policy: DeadlinePolicy) -> None:
    t = ticket(policy)  # Monday 9:00, card in the group at once
    ticks = [at(2025, 11, 17, 9, 0) + timedelta(minutes=10 * i) for i in range(6 * 24 * 8)]
    sent: set[str] = set()
    fired = run_loop(policy, t, ticks, sent)
    keys = [r.key for _, r in fired]
    assert keys == ["claim_1h", "claim_2h_lead", "claim_1d_coord", "yellow", "red"]
    when = {r.key: now for now, r in fired}
    assert when["claim_1h"] == at(2025, 11, 17, 10, 0)
    assert when["claim_2h_lead"] == at(2025, 11, 17, 11, 0)
    assert when["claim_1d_coord"] == at(2025, 11, 18, 9, 0)
    # 80 % of 7 days = 5.6 days → Sat 22 Nov 23:24; red at Mon 24 Nov 9:00.
    assert when["yellow"] == at(2025, 11, 22, 23, 30)
    assert when["red"] == at(2025, 11, 24, 9, 0)
    targets = [r.target for _, r in fired]
    assert targets == [
        ReminderTarget.GROUP,
        ReminderTarget.LEAD,
        ReminderTarget.COORDINATORS,
        ReminderTarget.GROUP,
        ReminderTarget.COORDINATORS,
    ]


def test_restart_does_not_repeat(policy: DeadlinePolicy) -> None:
    t = ticket(policy)
    sent = {"claim_1h"}  # stored in the database before the restart
    due = policy.reminders_due(t, at(2025, 11, 17, 11, 30), sent)
    assert [r.key for r in due] == ["claim_2h_lead"]
    # After a long outage everything missed comes at once, oldest first, except a warning
    # overtaken by a later one: the ticket is red, so no yellow (issue 15 item 16).
    due = policy.reminders_due(t, at(2025, 11, 25, 9, 0), sent)
    assert [r.key for r in due] == ["claim_2h_lead", "claim_1d_coord", "red"]
    assert [r.kind for r in due][-1] is ReminderKind.RED


def test_return_restarts_the_claim_cycle(policy: DeadlinePolicy) -> None:
    t = ticket(policy, return_count=1, dispatched_at=at(2025, 11, 18, 9, 0))
    due = policy.reminders_due(t, at(2025, 11, 18, 10, 0), {"claim_1h", "claim_2h_lead"})
    assert [r.key for r in due] == ["claim_1h:r1"]


def test_claimed_ticket_first_contact(policy: DeadlinePolicy) -> None:
    t = ticket(
        policy,
        state=TicketState.IN_PROGRESS,
        claimed_at=at(2025, 11, 17, 10, 0),
    )
    assert policy.reminders_due(t, at(2025, 11, 18, 9, 59), set()) == []
    due = policy.reminders_due(t, at(2025, 11, 18, 10, 0), set())
    assert [(r.key, r.target) for r in due] == [("first_contact", ReminderTarget.GROUP)]
    contacted = t.model_copy(update={"first_contact_at": at(2025, 11, 17, 15, 0)})
    assert policy.reminders_due(contacted, at(2025, 11, 18, 10, 0), set()) == []


def test_no_evaluation_after_five_working_days(policy: DeadlinePolicy) -> None:
    t = ticket(
        policy,
        state=TicketState.PENDING_CONFIRM,
        claimed_at=at(2025, 11, 17, 10, 0),
        first_contact_at=at(2025, 11, 17, 10, 30),
        resolved_at=at(2025, 11, 19, 15, 0),  # Wednesday
    )
    # Five working days later: Wed 26 Nov 15:00.
    assert policy.reminders_due(t, at(2025, 11, 26, 14, 59), set()) == []
    due = policy.reminders_due(t, at(2025, 11, 26, 15, 0), set())
    assert [(r.key, r.kind) for r in due] == [("no_evaluation", ReminderKind.NO_EVALUATION)]
    reopened = t.model_copy(update={"reopen_count": 1})
    due = policy.reminders_due(reopened, at(2025, 11, 26, 15, 0), {"no_evaluation"})
    assert [r.key for r in due] == ["no_evaluation:re1"]


def test_long_term_feedback_cycle(policy: DeadlinePolicy) -> None:
    approved = at(2025, 11, 1, 10, 0)
    t = ticket(policy, state=TicketState.LONG_TERM, claimed_at=at(2025, 10, 30, 9, 0))
    events = [
        TicketEvent(
            id=1,
            ticket_id=1,
            actor_id="telegram:2",
            action="long_term",
            from_state="in_progress",
            to_state="long_term",
            at=approved,
        )
    ]
    assert policy.reminders_due(t, at(2025, 11, 30, 10, 0), set(), events=events) == []
    due = policy.reminders_due(t, at(2025, 12, 1, 10, 0), set(), events=events)
    assert [r.key for r in due] == ["long_term_feedback:1"]
    feedback = TicketEvent(
        id=2, ticket_id=1, actor_id="telegram:3", action="progress", from_state=None, to_state=None,
        at=at(2025, 12, 20, 10, 0),
    )  # fmt: skip
    # Feedback given in the second cycle: nothing at its end; the third cycle is reminded.
    assert policy.reminders_due(t, at(2025, 12, 31, 11, 0), set(), events=[*events, feedback]) == []
    due = policy.reminders_due(t, at(2026, 1, 30, 11, 0), set(), events=[*events, feedback])
    assert [r.key for r in due] == ["long_term_feedback:3"]
    # A long-term item is never overdue nor warned.
    assert policy.warn_level(t, at(2026, 6, 1)) is WarnLevel.GREEN
    assert policy.overdue_workdays(t, at(2026, 6, 1)) == 0.0


def test_warn_levels(policy: DeadlinePolicy) -> None:
    t = ticket(policy, state=TicketState.IN_PROGRESS)  # due Mon 24 Nov 9:00
    assert t.due_at == at(2025, 11, 24, 9, 0)
    assert policy.warn_level(t, at(2025, 11, 22, 23, 0)) is WarnLevel.GREEN
    assert policy.warn_level(t, at(2025, 11, 22, 23, 24)) is WarnLevel.YELLOW
    assert policy.warn_level(t, at(2025, 11, 24, 9, 0)) is WarnLevel.RED
    for state in (TicketState.CLOSED, TicketState.CANCELLED, TicketState.LONG_TERM):
        done = t.model_copy(update={"state": state})
        assert policy.warn_level(done, at(2025, 12, 24)) is WarnLevel.GREEN
    # Overdue in working days: Mon 9:00 → Wed 9:00 is 2 working days.
    assert policy.overdue_workdays(t, at(2025, 11, 26, 9, 0)) == pytest.approx(2.0)
    # Resolved late: counted until 办结, not until now.
    late = t.model_copy(update={"state": TicketState.CLOSED, "resolved_at": at(2025, 11, 25, 9, 0)})
    assert policy.overdue_workdays(late, at(2025, 12, 24)) == pytest.approx(1.0)


def test_complex_warn_uses_working_time(policy: DeadlinePolicy) -> None:
    t = ticket(policy, state=TicketState.IN_PROGRESS, urgency=Urgency.COMPLEX)
    # 15 working days from Mon 17 Nov 9:00 → Mon 8 Dec 9:00; 80 % = 12 working days → Wed 3 Dec.
    assert t.due_at == at(2025, 12, 8, 9, 0)
    assert policy.yellow_at(t) == at(2025, 12, 3, 9, 0)


def test_extension_rules(policy: DeadlinePolicy) -> None:
    t = ticket(policy, state=TicketState.IN_PROGRESS)  # due Mon 24 Nov 9:00
    ok, reason = policy.extension_allowed(t, at(2025, 11, 20, 9, 0), 5)
    assert ok
    # Five working days after Mon 24 Nov 9:00 → Mon 1 Dec 9:00.
    assert "2025-12-01 09:00" in reason
    assert policy.extended_due(at(2025, 11, 24, 9, 0), 5) == at(2025, 12, 1, 9, 0)
    # Exactly one working day before: still allowed; later: refused.
    assert policy.extension_allowed(t, at(2025, 11, 21, 9, 0), 3)[0]
    ok, reason = policy.extension_allowed(t, at(2025, 11, 21, 9, 1), 3)
    assert not ok
    assert "至少 1 个工作日" in reason
    ok, reason = policy.extension_allowed(t, at(2025, 11, 18, 9, 0), 11)
    assert not ok
    assert "最多 10 个工作日" in reason
    assert not policy.extension_allowed(t, at(2025, 11, 18, 9, 0), 0)[0]
    pending = t.model_copy(update={"state": TicketState.PENDING_CLAIM})
    assert not policy.extension_allowed(pending, at(2025, 11, 18, 9, 0), 3)[0]


def test_extension_restarts_warnings(policy: DeadlinePolicy) -> None:
    t = ticket(
        policy,
        state=TicketState.IN_PROGRESS,
        claimed_at=at(2025, 11, 17, 9, 30),
        first_contact_at=at(2025, 11, 17, 10, 0),
        extension_count=1,
        due_at=at(2025, 12, 1, 9, 0),
    )
    due = policy.reminders_due(t, at(2025, 11, 30, 9, 0), {"yellow", "red"})
    assert [r.key for r in due] == ["yellow:x1"]
    due = policy.reminders_due(t, at(2025, 12, 1, 9, 0), {"yellow", "yellow:x1", "red"})
    assert [r.key for r in due] == ["red:x1"]
