"""The clock and follow-up: warning levels, reminders, escalation, extensions, long-term items.

Computed from the database on every tick, so nothing depends on timers held in memory: a
reminder is stored as sent in the same transaction as its message, and fires once across restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.config import Settings
from bot.core.counties import scoped
from bot.core.errors import BadInput, NotAllowed, WrongState
from bot.core.models import COORDINATOR, CloseType, Ticket, TicketState, team_name
from bot.core.ports import Actor, Clock
from bot.render import texts
from bot.render.keyboards import Button, Reply, cb
from bot.render.markup import mention
from bot.storage.db import Database, Repo
from bot.workflow.outbound import enqueue, message, to_coordinators, to_firm, to_team
from bot.workflow.rights import Rights
from bot.worktime.deadlines import DeadlinePolicy, Reminder, ReminderKind, ReminderTarget

logger = logging.getLogger(__name__)


def _in_team(ticket: Ticket) -> bool:
    """A ticket in a team's hands (not waiting for the coordinators to route it)."""
    return ticket.team_id is not None and ticket.state != TicketState.PENDING_DISPATCH


class FollowUp:
    """Ticks the clock over open tickets; handles extensions, long-term items and team leads."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        policy: DeadlinePolicy,
        rights: Rights,
    ) -> None:
        self.db = db
        self.rights = rights
        self.settings = settings
        self.clock = clock
        self.policy = policy  # each county's own deadlines through policy.of(county)
        self.on_change: Callable[[], None] = lambda: None

    async def tick(self) -> int:
        """Update warning levels and send every reminder that is due; returns how many.

        One read decides which open tickets have something to do; only those get a write.
        """
        now = self.clock.now()
        sent = 0
        async with self.db.read() as repo:
            tickets = await repo.tickets.open_tickets()
            already_sent = await repo.followup.reminders_sent_open()
        for ticket in tickets:
            policy = self.policy.of(ticket.county)
            if ticket.state != TicketState.LONG_TERM and (
                policy.warn_level(ticket, now) == ticket.warn_level
                and not policy.reminders_due(ticket, now, already_sent.get(ticket.id, set()))
            ):
                continue
            async with self.db.tx() as repo:
                fresh = await repo.tickets.get_ticket(ticket.id)
                if fresh is None or not fresh.state.is_open:
                    continue
                level = policy.warn_level(fresh, now)
                if level != fresh.warn_level:
                    await repo.tickets.update_ticket(fresh.id, warn_level=level.value)
                    await enqueue(repo, now, f"ticket:{fresh.id}", "card_edit", {}, fresh.id)
                already = await repo.followup.reminders_sent(fresh.id)
                events = (
                    await repo.tickets.events(fresh.id)
                    if fresh.state == TicketState.LONG_TERM
                    else []
                )
                for reminder in policy.reminders_due(fresh, now, already, events=events):
                    if await repo.followup.mark_reminder(fresh.id, reminder.key, now):
                        await self._remind(repo, fresh, reminder, now)
                        sent += 1
        return sent

    async def _remind(self, repo: Repo, ticket: Ticket, reminder: Reminder, now: datetime) -> None:
        number = ticket.number or ""
        team = team_name(ticket.team_id)
        owner = ticket.claimed_by_name or "（未签收）"
        due = texts.fmt_dt(ticket.due_at)
        await repo.tickets.insert_event(
            ticket.id,
            None,
            "reminder",
            ticket.state.value,
            ticket.state.value,
            {"key": reminder.key},
            now,
        )
        if reminder.kind == ReminderKind.NO_EVALUATION:
            await repo.tickets.update_ticket(
                ticket.id,
                state=TicketState.CLOSED.value,
                closed_at=now,
                close_type=CloseType.NO_EVALUATION.value,
                updated_at=now,
            )
            await repo.tickets.insert_event(
                ticket.id,
                None,
                "closed",
                ticket.state.value,
                TicketState.CLOSED.value,
                {"close_type": CloseType.NO_EVALUATION.value},
                now,
            )
            note = texts.NO_EVALUATION_CLOSED.format(number=number)
            await to_coordinators(repo, now, note, ticket)
            await to_team(repo, now, ticket, note)
            await enqueue(repo, now, f"ticket:{ticket.id}", "card_edit", {}, ticket.id)
            return
        text = {
            ReminderKind.CLAIM: {
                ReminderTarget.GROUP: texts.REMIND_CLAIM_GROUP,
                ReminderTarget.LEAD: texts.REMIND_CLAIM_LEAD,
                ReminderTarget.COORDINATORS: texts.REMIND_CLAIM_COORD,
            }.get(reminder.target, texts.REMIND_CLAIM_GROUP),
            ReminderKind.YELLOW: texts.REMIND_YELLOW,
            ReminderKind.RED: texts.REMIND_RED,
            ReminderKind.FIRST_CONTACT: texts.REMIND_FIRST_CONTACT,
            ReminderKind.LONG_TERM_FEEDBACK: texts.REMIND_LONG_TERM,
        }[reminder.kind]
        lead = await repo.users.get_lead(ticket.team_id, ticket.county) if ticket.team_id else None
        lead_text = mention(lead[0], lead[1] or "团长") if lead else "团长"
        body = text.format(number=number, team=team, owner=owner, due=due, lead=lead_text)
        if reminder.target == ReminderTarget.COORDINATORS or ticket.team_id is None:
            target = COORDINATOR
        elif reminder.target == ReminderTarget.FIRM:
            target = f"user:{ticket.reporter_id}"
        else:
            target = f"team:{ticket.team_id}"
        reply_to = "card" if target.startswith("team:") else None
        await enqueue(repo, now, target, "message", message(body, reply_to=reply_to), ticket.id)
        if reminder.kind == ReminderKind.RED and target == COORDINATOR and _in_team(ticket):
            # The team hears it too, not only through the card turning red.
            note = texts.REMIND_RED_GROUP.format(number=number, due=due)
            await to_team(repo, now, ticket, note)
        logger.info("reminder %s for %s to %s", reminder.key, number, target)

    async def overdue_report(self, county: str | None = None) -> str:
        """The named list of overdue tickets (of one county, or all), for the coordinators
        every working morning."""
        now = self.clock.now()
        async with self.db.read() as repo:
            tickets = await repo.tickets.open_tickets()
        lines = [texts.OVERDUE_HEADER.format(date=now.strftime("%Y-%m-%d"))]
        for ticket in tickets:
            if county is not None and ticket.county != county:
                continue
            if self.policy.of(ticket.county).is_overdue(ticket, now):
                lines.append(
                    texts.OVERDUE_LINE.format(
                        number=ticket.number,
                        team=team_name(ticket.team_id),
                        owner=ticket.claimed_by_name or "未签收",
                        days=f"{self.policy.of(ticket.county).overdue_workdays(ticket, now):.1f}",
                    )
                )
        if len(lines) == 1:
            lines.append(texts.OVERDUE_NONE)
        return texts.clip("\n".join(lines), texts.MAX_TEXT)

    async def send_overdue_report(self) -> None:
        """Queue the morning list for the coordinators (working days only)."""
        now = self.clock.now()
        if not self.policy.calendar.is_workday(now.date()):
            return
        counties = self.settings.counties()
        reports = [
            (scoped(COORDINATOR, county.code), await self.overdue_report(county.code))
            for county in counties
        ]
        async with self.db.tx() as repo:
            for target, report in reports:
                await enqueue(repo, now, target, "message", message(report))

    # -- team lead -------------------------------------------------------------------------

    async def set_lead(self, actor: Actor, lead_id: str, lead_name: str) -> list[Reply]:
        """/lead in a team group: by the lead themself, or by an admin replying to them."""
        if lead_id != actor.id and not actor.is_admin:
            raise NotAllowed("只有管理员可以指定他人为团长")
        async with self.db.tx() as repo:
            binding = await repo.users.get_binding(actor.chat_id)
            if binding is None or binding.team_id == COORDINATOR:
                raise BadInput(texts.GROUP_UNBOUND)
            await repo.users.set_lead(
                binding.team_id, lead_id, lead_name, self.clock.now(), binding.county
            )
        return [Reply(texts.LEAD_DONE.format(name=lead_name, team=team_name(binding.team_id)))]

    # -- extensions and long-term ----------------------------------------------------------

    async def request(
        self, actor: Actor, number: str, kind: str, workdays: int | None, reason: str
    ) -> list[Reply]:
        """延期 / 长期跟踪 asked by the claimer; coordinators decide with buttons."""
        limit = self.settings.extension_max_workdays
        if kind == "extension" and (workdays is None or not 1 <= workdays <= limit):
            raise BadInput(texts.EXTEND_USAGE.format(max=limit))
        now = self.clock.now()
        reason = reason.strip()[:300]
        async with self.db.tx() as repo:
            ticket = await repo.tickets.get_ticket_by_number(number)
            if ticket is None:
                raise BadInput(texts.TICKET_NOT_FOUND.format(number=number[:40]))
            if ticket.claimed_by != actor.id and not actor.is_admin:
                raise NotAllowed("只有责任人可以申请")
            if ticket.state not in (TicketState.IN_PROGRESS, TicketState.LONG_TERM):
                raise WrongState(ticket.number, ticket.state.label, "extend")
            check = ""
            if kind == "extension":
                assert workdays is not None
                ok, why = self.policy.of(ticket.county).extension_allowed(ticket, now, workdays)
                if not ok:
                    raise BadInput(why)
                check = why
            request_id = await repo.followup.insert_extension(
                ticket.id, kind, workdays, reason, actor.id, now
            )
            await repo.tickets.insert_event(
                ticket.id,
                actor.id,
                "extension_requested",
                ticket.state.value,
                ticket.state.value,
                {"kind": kind, "workdays": workdays, "reason": reason},
                now,
            )
            template = texts.EXTEND_COORD if kind == "extension" else texts.LONGTERM_COORD
            body = template.format(
                number=ticket.number,
                team=team_name(ticket.team_id),
                who=actor.name,
                days=workdays,
                reason=reason,
                check=check,
            )
            buttons = [
                [
                    Button("批准", cb("ext_ok", ticket.id, str(request_id))),
                    Button("不批准", cb("ext_no", ticket.id, str(request_id))),
                ]
            ]
            await to_coordinators(repo, now, body, ticket, buttons)
        self.on_change()
        reply = texts.EXTEND_ASKED if kind == "extension" else texts.LONGTERM_ASKED
        return [Reply(reply.format(number=ticket.number, days=workdays))]

    async def decide(
        self, actor: Actor, ticket_id: int, request_id: int, approve: bool
    ) -> list[Reply]:
        """A coordinator approves or refuses; the team and the firm are told."""
        if not await self.rights.is_coordinator(actor):
            raise NotAllowed("只有专班或管理员可以审批")
        now = self.clock.now()
        async with self.db.tx() as repo:
            request = await repo.followup.get_extension(request_id)
            ticket = await repo.tickets.get_ticket(ticket_id)
            if request is None or ticket is None or request["ticket_id"] != ticket_id:
                raise BadInput(texts.STALE_BUTTON)
            if not await self.rights.coordinates(repo, actor, ticket):
                raise NotAllowed("只有专班或管理员可以审批")
            if not await repo.followup.decide_extension(
                request_id, "approved" if approve else "refused", actor.id, now
            ):
                raise BadInput(texts.EXT_DONE_ALREADY)
            await repo.tickets.insert_event(
                ticket.id,
                actor.id,
                "extension_decided",
                ticket.state.value,
                ticket.state.value,
                {"request": request_id, "approved": approve, "kind": request["kind"]},
                now,
            )
            if not approve:
                note = texts.EXT_REFUSED.format(number=ticket.number)
                await to_team(repo, now, ticket, note)
                return [Reply(note)]
            if request["kind"] == "long_term":
                if ticket.state != TicketState.IN_PROGRESS:
                    raise WrongState(ticket.number, ticket.state.label, "extend")
                await repo.tickets.update_ticket(
                    ticket.id, state=TicketState.LONG_TERM.value, updated_at=now
                )
                await repo.tickets.insert_event(
                    ticket.id,
                    actor.id,
                    "long_term",
                    ticket.state.value,
                    TicketState.LONG_TERM.value,
                    {},
                    now,
                )
                note = texts.LONGTERM_APPROVED.format(
                    number=ticket.number, days=self.settings.long_term_feedback_days
                )
                firm = texts.LONGTERM_FIRM.format(number=ticket.number)
            else:
                assert ticket.due_at is not None
                due = self.policy.of(ticket.county).extended_due(
                    ticket.due_at, int(request["workdays"])
                )
                await repo.tickets.update_ticket(
                    ticket.id,
                    due_at=due,
                    extension_count=ticket.extension_count + 1,
                    updated_at=now,
                )
                note = texts.EXT_APPROVED.format(number=ticket.number, due=texts.fmt_dt(due))
                firm = texts.EXT_FIRM.format(
                    number=ticket.number,
                    due=texts.fmt_dt(due),
                    reason=str(request["reason"]),
                )
            await to_team(repo, now, ticket, note)
            await to_firm(repo, now, ticket, firm)
            await enqueue(repo, now, f"ticket:{ticket.id}", "card_edit", {}, ticket.id)
        self.on_change()
        return [Reply(note)]
