"""Handling: the team's claim, return, resolve and progress, the firm's rating, and the awaited
text that completes a 退回, 办结 or 无效/重复 (no telegram). The coordinators' routing is in
routing.py."""

from __future__ import annotations

import logging
from typing import Any

from bot.core.errors import BadInput, NotAllowed, NotFound, WrongState
from bot.core.models import (
    COORDINATOR,
    CloseType,
    Satisfaction,
    Ticket,
    TicketState,
    User,
    team_name,
)
from bot.core.ports import Actor
from bot.render import texts
from bot.render.keyboards import (
    Button,
    Reply,
    rating_keyboard,
)
from bot.render.markup import STAFF_START_URL
from bot.storage.db import Repo
from bot.workflow import following
from bot.workflow.base import OPEN, Ground
from bot.workflow.outbound import (
    enqueue,
    to_co_teams,
    to_coordinators,
    to_firm,
    to_team,
)
from bot.workflow.routing import DISCARD_TYPES, Routing, await_text

logger = logging.getLogger(__name__)


class Handling:
    """What teams and coordinators do with a submitted ticket."""

    def __init__(self, ground: Ground, routing: Routing) -> None:
        self.ground = ground
        self.routing = routing  # 无效 / 重复 are completed by the reason the coordinator writes

    # -- team actions ------------------------------------------------------------------------

    async def claim(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """签收 from the card: exactly one claimer; details go privately to them."""
        await self.ground._require_member(actor)
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            await self.ground._require_team_chat(repo, actor, ticket)
            if ticket.state != TicketState.PENDING_CLAIM:
                if ticket.claimed_by_name and ticket.state in OPEN:
                    raise BadInput(texts.CLAIM_TAKEN.format(name=ticket.claimed_by_name))
                raise WrongState(ticket.number, ticket.state.label, "claim")
            await repo.users.upsert_user(actor.id, actor.name, actor.username, now)
            await repo.users.update_user(actor.id, now, is_staff=1)
            await repo.tickets.update_ticket(
                ticket_id,
                state=TicketState.IN_PROGRESS.value,
                claimed_by=actor.id,
                claimed_by_name=actor.name,
                claimed_at=now,
                first_contact_due_at=self.ground.policy_for(ticket.county).first_contact_due(now),
                updated_at=now,
            )
            await self.ground._event(repo, ticket, actor.id, "claimed", TicketState.IN_PROGRESS)
            await self.ground._event(repo, ticket, actor.id, "details_viewed")
            await self.ground._card_changed(repo, ticket_id)
            await enqueue(repo, now, f"user:{actor.id}", "details", {}, ticket_id)
            for attachment in await repo.tickets.attachments(ticket_id):
                await enqueue(
                    repo,
                    now,
                    f"user:{actor.id}",
                    "media",
                    {
                        "media": attachment.kind,
                        "file_id": attachment.file_id,
                        "caption": f"{ticket.number} 附件",
                    },
                    ticket_id,
                )
            await to_firm(
                repo,
                now,
                ticket,
                texts.CLAIM_FIRM.format(
                    number=ticket.number,
                    team=team_name(ticket.team_id),
                    name=actor.name,
                ),
            )
            await following.follow_claim(self.ground, repo, ticket, actor)
            claimer = await repo.users.get_user(actor.id)
            started = claimer is not None and claimer.private_started
        logger.info("ticket %s claimed by %s, chat %s", ticket.number, actor.id, actor.chat_id)
        self.ground.on_change()
        if started:
            return [Reply(texts.CLAIM_DONE.format(number=ticket.number))]
        return [
            Reply(
                texts.CLAIM_NEED_START.format(mention=actor.mention),
                buttons=[[Button("私聊机器人", url=STAFF_START_URL)]],
            )
        ]

    async def ask_return(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """退回: ask for the reason (the next message of this member in this chat)."""
        await self.ground._require_member(actor)
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            await self.ground._require_team_chat(repo, actor, ticket)
            self._check_return(ticket, await repo.tickets.events(ticket_id))
            await await_text(self.ground, repo, actor, f"return:{ticket_id}:{actor.chat_id}")
        return [Reply(texts.RETURN_ASK.format(number=ticket.number), force_reply=True)]

    def _check_return(self, ticket: Ticket, events: list[Any]) -> None:
        if ticket.state not in (TicketState.PENDING_CLAIM, TicketState.IN_PROGRESS):
            raise WrongState(ticket.number, ticket.state.label, "return")
        if any(e.action == "returned" and e.payload.get("team") == ticket.team_id for e in events):
            raise BadInput(texts.RETURN_TWICE)
        since = ticket.dispatched_at or ticket.submitted_at
        if since is not None and self.ground.calendar.work_days_between(
            since, self.ground.now()
        ) > (self.ground.settings.return_window_workdays):
            raise BadInput(texts.RETURN_LATE)

    async def return_ticket(self, actor: Actor, ticket_id: int, reason: str) -> list[Reply]:
        """The reason arrived: back to the coordinators."""
        now = self.ground.now()
        reason = reason.strip()[:500]
        if not reason:
            raise BadInput(texts.RETURN_ASK.format(number=""))
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            await self.ground._require_team_chat(repo, actor, ticket)
            self._check_return(ticket, await repo.tickets.events(ticket_id))
            await repo.tickets.update_ticket(
                ticket_id,
                state=TicketState.PENDING_DISPATCH.value,
                return_count=ticket.return_count + 1,
                claimed_by=None,
                claimed_by_name=None,
                claimed_at=None,
                updated_at=now,
            )
            await self.ground._event(
                repo,
                ticket,
                actor.id,
                "returned",
                TicketState.PENDING_DISPATCH,
                team=ticket.team_id,
                reason=reason,
            )
            await repo.users.update_user(actor.id, now, awaiting=None)
            await following.follow_route(
                repo, ticket, claimed_by=None, claimed_by_name=None, claimed_at=None
            )
            await self.ground._card_changed(repo, ticket_id)
            await to_coordinators(
                repo,
                now,
                texts.COORD_RETURNED.format(team=team_name(ticket.team_id), reason=reason),
                ticket,
            )
            await enqueue(repo, now, COORDINATOR, "card", {"coordinator": True}, ticket_id)
        logger.info("ticket %s returned by %s", ticket.number, ticket.team_id)
        self.ground.on_change()
        return [Reply(texts.RETURN_DONE.format(number=ticket.number))]

    async def _may_resolve(self, repo: Repo, actor: Actor, ticket: Ticket) -> None:
        if ticket.claimed_by == actor.id or await self.ground.rights.coordinates(
            repo, actor, ticket
        ):
            return
        raise NotAllowed("只有责任人、专班或管理员可以办结")

    async def ask_resolve(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """办结: ask for the result text."""
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            if ticket.state not in (TicketState.IN_PROGRESS, TicketState.LONG_TERM):
                raise WrongState(ticket.number, ticket.state.label, "resolve")
            await self._may_resolve(repo, actor, ticket)
            await await_text(self.ground, repo, actor, f"resolve:{ticket_id}:{actor.chat_id}")
        return [Reply(texts.RESOLVE_ASK.format(number=ticket.number), force_reply=True)]

    async def resolve(self, actor: Actor, ticket_id: int, result: str) -> list[Reply]:
        """The result arrived: the firm is asked to confirm and rate."""
        now = self.ground.now()
        result = result.strip()[:2000]
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            if ticket.state not in (TicketState.IN_PROGRESS, TicketState.LONG_TERM):
                raise WrongState(ticket.number, ticket.state.label, "resolve")
            await self._may_resolve(repo, actor, ticket)
            if not result:
                raise BadInput(texts.RESOLVE_ASK.format(number=ticket.number))
            await repo.tickets.update_ticket(
                ticket_id,
                state=TicketState.PENDING_CONFIRM.value,
                result_text=result,
                resolved_at=now,
                resolve_workdays=max(
                    self.ground.calendar.work_days_between(ticket.submitted_at or now, now), 0.0
                ),
                updated_at=now,
            )
            await self.ground._event(
                repo, ticket, actor.id, "resolved", TicketState.PENDING_CONFIRM, result=result
            )
            await repo.users.update_user(actor.id, now, awaiting=None)
            await self.ground._card_changed(repo, ticket_id)
            await to_firm(
                repo,
                now,
                ticket,
                texts.RESOLVE_FIRM.format(
                    number=ticket.number, team=team_name(ticket.team_id), result=result
                ),
                rating_keyboard(ticket_id),
                link="result",
            )
            await to_co_teams(
                repo,
                now,
                ticket,
                texts.CO_RESOLVED.format(
                    number=ticket.number, lead=team_name(ticket.team_id), result=result
                ),
            )
            await following.pass_result(self.ground, repo, ticket, result)
        logger.info("ticket %s resolved by %s", ticket.number, actor.id)
        self.ground.on_change()
        return [Reply(texts.RESOLVE_DONE.format(number=ticket.number))]

    async def rate(self, actor: Actor, ticket_id: int, value: str) -> list[Reply]:
        """The firm's answer: closes the ticket, or reopens it (重办)."""
        now = self.ground.now()
        try:
            rating = Satisfaction(value)
        except ValueError as exc:
            raise BadInput(texts.STALE_BUTTON) from exc
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            await self.ground._require_reporter(repo, actor, ticket)
            if ticket.state != TicketState.PENDING_CONFIRM:
                raise WrongState(ticket.number, ticket.state.label, "rate")
            if rating == Satisfaction.UNSOLVED and ticket.merged_into is not None:
                reply = await following.reopen_merged(self.ground, repo, actor, ticket)
            elif rating == Satisfaction.UNSOLVED:
                count = ticket.reopen_count + 1
                await repo.tickets.update_ticket(
                    ticket_id,
                    state=TicketState.IN_PROGRESS.value,
                    reopen_count=count,
                    satisfaction=rating.value,
                    rated_at=now,
                    updated_at=now,
                )
                await self.ground._event(
                    repo, ticket, actor.id, "reopened", TicketState.IN_PROGRESS, rating=rating.value
                )
                note = texts.REOPEN_GROUP.format(number=ticket.number, count=count)
                await to_team(repo, now, ticket, note)
                await to_coordinators(
                    repo,
                    now,
                    texts.COORD_REOPENED.format(
                        number=ticket.number, team=team_name(ticket.team_id)
                    ),
                    ticket,
                )
                reply = texts.RATE_REOPEN_FIRM.format(number=ticket.number, rating=rating.label)
            else:
                await repo.tickets.update_ticket(
                    ticket_id,
                    state=TicketState.CLOSED.value,
                    satisfaction=rating.value,
                    rated_at=now,
                    closed_at=now,
                    closed_by=actor.id,
                    close_type=CloseType.SOLVED.value,
                    updated_at=now,
                )
                await self.ground._event(
                    repo, ticket, actor.id, "rated", TicketState.CLOSED, rating=rating.value
                )
                await to_team(
                    repo,
                    now,
                    ticket,
                    texts.CLOSED_GROUP.format(number=ticket.number, rating=rating.label),
                )
                reply = texts.RATE_THANKS.format(number=ticket.number, rating=rating.label)
            await self.ground._card_changed(repo, ticket_id)
        logger.info("ticket %s rated %s", ticket.number, rating.value)
        self.ground.on_change()
        return [Reply(reply)]

    async def first_contact(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """已首次联系企业 on the private details message."""
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            if ticket.claimed_by != actor.id:
                raise NotAllowed("只有责任人可以记录")
            if ticket.first_contact_at is None:
                await repo.tickets.update_ticket(ticket_id, first_contact_at=now, updated_at=now)
                await self.ground._event(repo, ticket, actor.id, "first_contact")
        return [Reply(texts.FIRST_CONTACT_DONE)]

    async def progress(self, actor: Actor, number: str, note: str) -> list[Reply]:
        """/progress: a note in the log that the firm also sees."""
        now = self.ground.now()
        note = note.strip()[:1000]
        if not note:
            raise BadInput(texts.PROGRESS_USAGE)
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._by_number(repo, number)
            co = await self.ground.rights.co_team(repo, actor, ticket) is not None
            if co:
                replies = await self._co_progress(repo, actor, ticket, note)
        if co:
            self.ground.on_change()
            return replies
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._by_number(repo, number)
            await self.ground._require_handler(repo, actor, ticket, "progress")
            await repo.tickets.update_ticket(ticket.id, latest_progress=note, updated_at=now)
            await self.ground._event(repo, ticket, actor.id, "progress", text=note)
            await following.tell_firms(
                self.ground, repo, ticket, texts.PROGRESS_FIRM, note, "main_progress"
            )
            await self.ground._card_changed(repo, ticket.id)
        self.ground.on_change()
        return [Reply(texts.PROGRESS_DONE.format(number=ticket.number))]

    async def co_progress(self, actor: Actor, ticket_id: int, note: str) -> list[Reply]:
        """A co-handling team's answer (a reply to its card): logged and sent to the lead."""
        note = note.strip()[:1000]
        if not note:
            raise BadInput(texts.PROGRESS_USAGE)
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            replies = await self._co_progress(repo, actor, ticket, note)
        self.ground.on_change()
        return replies

    async def _co_progress(
        self, repo: Repo, actor: Actor, ticket: Ticket, note: str
    ) -> list[Reply]:
        """协办意见: in the log and on every card, told to the lead team; the firm hears from the
        lead team only (WORKFLOW.md)."""
        team = await self.ground.rights.co_team(repo, actor, ticket)
        lead = team_name(ticket.team_id)
        if team is None:
            raise NotAllowed(texts.CO_NOT_ALLOWED.format(lead=lead))
        if not ticket.state.is_open:
            raise WrongState(ticket.number, ticket.state.label, "progress")
        now = self.ground.now()
        short = team_name(team).replace("服务一米团", "").replace("一米团", "")
        await repo.tickets.update_ticket(
            ticket.id, latest_progress=f"【协办·{short}】{note}", updated_at=now
        )
        await self.ground._event(repo, ticket, actor.id, "co_progress", team=team, text=note)
        await to_team(
            repo,
            now,
            ticket,
            texts.CO_PROGRESS_LEAD.format(team=team_name(team), number=ticket.number, text=note),
        )
        await self.ground._card_changed(repo, ticket.id)
        logger.info("ticket %s: co-handling note from %s by %s", ticket.number, team, actor.id)
        return [Reply(texts.CO_PROGRESS_DONE.format(lead=lead, number=ticket.number))]

    # -- coordinators ------------------------------------------------------------------------

    # -- awaited input -----------------------------------------------------------------------

    async def awaited(self, actor: Actor) -> tuple[str, int] | None:
        """The action this user's next message in this chat completes, if any."""
        async with self.ground.db.read() as repo:
            user = await repo.users.get_user(actor.id)
        return pending_action(user, actor.chat_id)

    async def complete_awaited(self, actor: Actor, text: str) -> list[Reply]:
        """Finish a 退回 or 办结 with the text the member just wrote."""
        pending = await self.awaited(actor)
        if pending is None:
            return []
        action, ticket_id = pending
        try:
            if action == "return":
                return await self.return_ticket(actor, ticket_id, text)
            if action in DISCARD_TYPES:
                return await self.routing.discard(actor, ticket_id, action, text)
            return await self.resolve(actor, ticket_id, text)
        except (WrongState, NotAllowed, NotFound):
            async with self.ground.db.tx() as repo:
                await repo.users.update_user(actor.id, self.ground.now(), awaiting=None)
            raise


def pending_action(user: User | None, chat_id: str) -> tuple[str, int] | None:
    """The 退回/办结 a user's next message in `chat_id` completes (from users.awaiting)."""
    if user is None or not user.awaiting:
        return None
    action, ticket_id, chat = user.awaiting.split(":", 2)
    return (action, int(ticket_id)) if chat == chat_id else None
