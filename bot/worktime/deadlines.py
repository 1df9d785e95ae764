"""Time limits, warning levels, extensions and reminders: pure computation over a ticket and now.

Rules (after WORKFLOW.md; every number comes from ``Settings``):

* The 办结 clock starts at submission. Ordinary: 7 calendar days; major: 30 calendar days; a
  calendar-day deadline that falls on a non-working day moves to the end of the next working day
  (17:30), as county offices do. Urgent (production stopped, safety): 24 real hours, never moved —
  an emergency does not wait for a holiday. Complex: 15 working days (``add_work_days``).
* 签收 within 2 working hours of the card reaching the team; reminders at 1 working hour (group),
  2 (team lead) and 1 working day (coordinators).
* First contact within 1 working day of 签收.
* Yellow when ``yellow_ratio`` of the time is used (working time for complex tickets, real time
  otherwise), red when overdue. Closed, cancelled, draft, 待评价 and 长期跟踪 tickets are green.
* Extensions: asked at least 1 working day before the deadline, 1 to ``extension_max_workdays``
  working days, added with ``add_work_days``.
* No answer from the firm ``no_evaluation_workdays`` working days after 办结 → close as
  no_evaluation.

``reminders_due`` returns every reminder whose time has come and whose key is not in
``already_sent``, oldest first, leaving out a warning a later one has overtaken (the bot was
stopped, or a tick was late): no yellow once the ticket is red, no 1-hour group reminder once the
team lead's is due. The caller stores the keys it has acted on (in the database, in the
same transaction as the messages), so each fires once, in order, and never again after a restart.
Keys are stable strings; a cycle that can repeat carries a suffix (``claim_1h:r1`` after the first
return, ``yellow:x1`` after the first extension, ``no_evaluation:re1`` after the first reopen).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.config import Settings
from bot.core.models import Ticket, TicketEvent, TicketState, Urgency, WarnLevel
from bot.worktime.calendar import WorkCalendar

#: States whose clock is the team's responsibility (warnings apply).
ACTIVE_STATES = frozenset(
    {TicketState.PENDING_DISPATCH, TicketState.PENDING_CLAIM, TicketState.IN_PROGRESS}
)
#: Event actions that count as feedback on a long-term item.
FEEDBACK_ACTIONS = frozenset({"progress", "feedback", "long_term_feedback"})


class ReminderKind(StrEnum):
    """What a reminder is about (``texts.py`` turns it into words)."""

    CLAIM = "claim"
    YELLOW = "yellow"
    RED = "red"
    FIRST_CONTACT = "first_contact"
    NO_EVALUATION = "no_evaluation"
    LONG_TERM_FEEDBACK = "long_term_feedback"


class ReminderTarget(StrEnum):
    """Who is reminded."""

    GROUP = "group"
    LEAD = "lead"
    COORDINATORS = "coordinators"
    FIRM = "firm"


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder that has fallen due. ``key`` is stable: store it once it is sent.

    ``NO_EVALUATION`` is an action, not only a message: the caller closes the ticket as
    no_evaluation and tells the coordinators.
    """

    key: str
    kind: ReminderKind
    target: ReminderTarget
    due_at: datetime
    ticket_id: int


def _suffix(tag: str, count: int) -> str:
    return f":{tag}{count}" if count else ""


class DeadlinePolicy:
    """The time limits of WORKFLOW.md on a ``WorkCalendar``."""

    def __init__(
        self,
        settings: Settings,
        calendar: WorkCalendar,
        counties: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """`counties`: each county's own deadline settings (bot.core.counties), over these."""
        self.settings = settings
        self.calendar = calendar
        self.by_county = {
            code: DeadlinePolicy(settings.model_copy(update=dict(own)), calendar)
            for code, own in (counties or {}).items()
            if own
        }

    def of(self, county: str) -> DeadlinePolicy:
        """The policy of a county's tickets: its own deadline settings, else these."""
        return self.by_county.get(county, self)

    # -- deadlines ----------------------------------------------------------------------------

    def due_at(self, submitted_at: datetime, urgency: Urgency) -> datetime:
        """The 办结 deadline of a ticket submitted at ``submitted_at``."""
        cal = self.calendar
        start = cal.local(submitted_at)
        s = self.settings
        if urgency is Urgency.URGENT:
            return start + timedelta(hours=s.due_hours_urgent)
        if urgency is Urgency.COMPLEX:
            return cal.add_work_days(start, s.due_workdays_complex)
        days = s.due_days_major if urgency is Urgency.MAJOR else s.due_days_normal
        return cal.next_workday_end(start + timedelta(days=days))

    def claim_due(self, submitted: datetime) -> datetime:
        """签收 deadline: ``claim_limit_hours`` working hours after the card reached the team."""
        return self.calendar.add_work_hours(submitted, self.settings.claim_limit_hours)

    def first_contact_due(self, claimed_at: datetime) -> datetime:
        """Deadline for the first contact with the firm: 1 working day after 签收."""
        return self.calendar.add_work_days(claimed_at, self.settings.first_contact_days)

    def extended_due(self, due: datetime, workdays: int) -> datetime:
        """The deadline after an extension of ``workdays`` working days."""
        return self.calendar.add_work_days(due, workdays)

    def _due(self, ticket: Ticket) -> datetime | None:
        if ticket.due_at is not None:
            return ticket.due_at
        if ticket.submitted_at is not None:
            return self.due_at(ticket.submitted_at, ticket.urgency)
        return None

    def _done_at(self, ticket: Ticket) -> datetime | None:
        """When the team finished (办结), if it has."""
        if ticket.state in (TicketState.PENDING_CONFIRM, TicketState.CLOSED):
            return ticket.resolved_at or ticket.closed_at
        return None

    # -- warning levels -----------------------------------------------------------------------

    def warn_level(self, ticket: Ticket, now: datetime) -> WarnLevel:
        """Green, yellow (``yellow_ratio`` of the time used) or red (overdue)."""
        if ticket.state not in ACTIVE_STATES or ticket.submitted_at is None:
            return WarnLevel.GREEN
        due = self._due(ticket)
        if due is None:
            return WarnLevel.GREEN
        if now >= due:
            return WarnLevel.RED
        return WarnLevel.YELLOW if now >= self.yellow_at(ticket) else WarnLevel.GREEN

    def yellow_at(self, ticket: Ticket) -> datetime:
        """When ``yellow_ratio`` of the ticket's time is used."""
        start = ticket.submitted_at
        due = self._due(ticket)
        if start is None or due is None:
            raise ValueError("ticket has not been submitted")
        ratio = self.settings.yellow_ratio
        if ticket.urgency is Urgency.COMPLEX:
            hours = self.calendar.work_hours_between(start, due) * ratio
            return self.calendar.add_work_hours(start, max(hours, 0.0))
        return start + (due - start) * ratio

    def is_overdue(self, ticket: Ticket, now: datetime) -> bool:
        """Past the deadline and not 办结 in time (long-term items are never overdue)."""
        return self.overdue_workdays(ticket, now) > 0

    def overdue_workdays(self, ticket: Ticket, now: datetime) -> float:
        """Working days past the deadline: until 办结, or until ``now`` while still open."""
        if ticket.state in (TicketState.DRAFT, TicketState.CANCELLED, TicketState.LONG_TERM):
            return 0.0
        due = self._due(ticket)
        if due is None:
            return 0.0
        end = self._done_at(ticket)
        if end is None:
            if ticket.state is TicketState.CLOSED:
                return 0.0
            end = now
        if end <= due:
            return 0.0
        return max(self.calendar.work_days_between(due, end), 0.0)

    # -- extensions ---------------------------------------------------------------------------

    def extension_allowed(self, ticket: Ticket, now: datetime, workdays: int) -> tuple[bool, str]:
        """Whether an extension of ``workdays`` may be asked now, with the reason in Chinese."""
        limit = self.settings.extension_max_workdays
        if ticket.state is not TicketState.IN_PROGRESS:
            return False, "只有办理中的工单可以申请延期。"
        if workdays < 1:
            return False, "延期天数至少为 1 个工作日。"
        if workdays > limit:
            return False, f"每次延期最多 {limit} 个工作日。"
        due = self._due(ticket)
        if due is None:
            return False, "该工单没有办结时限，无需延期。"
        if self.calendar.work_hours_between(now, due) < self.calendar.day_hours:
            return False, (
                f"延期须在办结时限前至少 1 个工作日提出（时限 {due:%Y-%m-%d %H:%M}），"
                "已来不及，请联系专班。"
            )
        new_due = self.extended_due(due, workdays)
        return True, f"可申请延期 {workdays} 个工作日，延期后办结时限为 {new_due:%Y-%m-%d %H:%M}。"

    # -- reminders ----------------------------------------------------------------------------

    def reminders_due(
        self,
        ticket: Ticket,
        now: datetime,
        already_sent: set[str],
        *,
        events: Iterable[TicketEvent] = (),
    ) -> list[Reminder]:
        """Reminders due at ``now`` and not in ``already_sent``, oldest first.

        ``events`` (the ticket's log) is only needed for long-term items: the approval time
        (the last event into ``long_term``) and the feedback notes (``FEEDBACK_ACTIONS``).
        """
        found: list[Reminder] = []

        def add(key: str, kind: ReminderKind, target: ReminderTarget, at: datetime) -> None:
            if at <= now and key not in already_sent:
                found.append(Reminder(key, kind, target, at, ticket.id))

        state = ticket.state
        cal = self.calendar
        s = self.settings
        if state is TicketState.PENDING_CLAIM:
            since = ticket.dispatched_at or ticket.submitted_at
            if since is not None:
                r = _suffix("r", ticket.return_count)
                if now < self.claim_due(since):  # overtaken by the lead's reminder (same group)
                    add(
                        f"claim_1h{r}",
                        ReminderKind.CLAIM,
                        ReminderTarget.GROUP,
                        cal.add_work_hours(since, s.claim_reminder_hours),
                    )
                add(
                    f"claim_2h_lead{r}",
                    ReminderKind.CLAIM,
                    ReminderTarget.LEAD,
                    self.claim_due(since),
                )
                add(
                    f"claim_1d_coord{r}",
                    ReminderKind.CLAIM,
                    ReminderTarget.COORDINATORS,
                    cal.add_work_days(since, s.claim_escalate_days),
                )
        if state in ACTIVE_STATES and ticket.submitted_at is not None:
            due = self._due(ticket)
            if due is not None:
                x = _suffix("x", ticket.extension_count)
                # Nobody but the coordinators owns a ticket that waits to be routed.
                owner = (
                    ReminderTarget.COORDINATORS
                    if state is TicketState.PENDING_DISPATCH
                    else ReminderTarget.GROUP
                )
                if now < due:  # once red, a yellow warning is stale: it is never sent
                    add(f"yellow{x}", ReminderKind.YELLOW, owner, self.yellow_at(ticket))
                add(f"red{x}", ReminderKind.RED, ReminderTarget.COORDINATORS, due)
        if (
            state is TicketState.IN_PROGRESS
            and ticket.claimed_at is not None
            and ticket.first_contact_at is None
        ):
            add(
                "first_contact",
                ReminderKind.FIRST_CONTACT,
                ReminderTarget.GROUP,
                self.first_contact_due(ticket.claimed_at),
            )
        if state is TicketState.PENDING_CONFIRM:
            done = ticket.resolved_at or ticket.updated_at
            if done is not None:
                add(
                    f"no_evaluation{_suffix('re', ticket.reopen_count)}",
                    ReminderKind.NO_EVALUATION,
                    ReminderTarget.COORDINATORS,
                    cal.add_work_days(done, s.no_evaluation_workdays),
                )
        if state is TicketState.LONG_TERM:
            reminder = self._long_term_reminder(ticket, now, list(events))
            if reminder is not None and reminder.key not in already_sent:
                found.append(reminder)
        found.sort(key=lambda r: r.due_at)
        return found

    def _long_term_reminder(
        self, ticket: Ticket, now: datetime, events: list[TicketEvent]
    ) -> Reminder | None:
        """The current feedback cycle's reminder, unless feedback was given in that cycle."""
        since: datetime | None = None
        for event in events:
            if event.to_state == TicketState.LONG_TERM.value:
                since = event.at
        since = since or ticket.claimed_at or ticket.submitted_at
        if since is None:
            return None
        cycle = timedelta(days=self.settings.long_term_feedback_days)
        n = int((now - since) / cycle)
        if n < 1:
            return None
        window_start = since + cycle * (n - 1)
        due = since + cycle * n
        if any(e.action in FEEDBACK_ACTIONS and window_start <= e.at <= due for e in events):
            return None
        return Reminder(
            f"long_term_feedback:{n}",
            ReminderKind.LONG_TERM_FEEDBACK,
            ReminderTarget.GROUP,
            due,
            ticket.id,
        )
