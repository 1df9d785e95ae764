"""Routing by the coordinators (专班): co-handling teams (协办), dispatch (分拨) and closing a
ticket as 无效 or 重复 with the reason the firm will see (no telegram)."""

from __future__ import annotations

import logging

from bot.classify.classifier import GENERAL
from bot.core.errors import BadInput, NotAllowed, WrongState
from bot.core.models import (
    TEAM_NAMES,
    CloseType,
    TicketState,
    team_name,
)
from bot.core.ports import Actor
from bot.render import texts
from bot.render.keyboards import (
    Reply,
)
from bot.storage.db import Repo
from bot.workflow import following
from bot.workflow.base import Ground
from bot.workflow.outbound import (
    enqueue,
    message,
    to_firm,
    to_team,
)

logger = logging.getLogger(__name__)

DISCARD_TYPES = (CloseType.INVALID.value, CloseType.DUPLICATE.value)


class Routing:
    """What the coordinators do to send a ticket where it belongs."""

    def __init__(self, ground: Ground) -> None:
        self.ground = ground

    async def set_co_team(self, actor: Actor, number: str, team_arg: str) -> list[Reply]:
        """/cohandle <number> <team> adds a co-handling team (it gets its card), `-<team>`
        removes one (its card says so): coordinators and admins, on a routed open ticket."""
        remove = team_arg.startswith("-")
        team = team_arg.lstrip("-+")
        if team not in TEAM_NAMES:
            raise BadInput(texts.COHANDLE_USAGE.format(teams=", ".join(TEAM_NAMES)))
        if not await self.ground.is_coordinator(actor):
            raise NotAllowed("只有专班或管理员可以调整协办单位")
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._by_number(repo, number)
            await self.ground._require_coordinator(
                repo, actor, ticket, "只有专班或管理员可以调整协办单位"
            )
            if (
                not ticket.state.is_open
                or ticket.team_id is None
                or ticket.state == TicketState.MERGED
            ):
                raise WrongState(ticket.number, ticket.state.label, "cohandle")
            if team == ticket.team_id:
                raise BadInput(texts.COHANDLE_LEAD.format(team=team_name(team)))
            if remove == (team not in ticket.co_teams):  # nothing to change
                template = texts.COHANDLE_NOT_CO if remove else texts.COHANDLE_ALREADY
                return [Reply(template.format(number=ticket.number, team=team_name(team)))]
            teams = [t for t in ticket.co_teams if t != team] + ([] if remove else [team])
            await repo.tickets.update_ticket(ticket.id, co_teams=teams, updated_at=now)
            action = "co_removed" if remove else "co_added"
            await self.ground._event(repo, ticket, actor.id, action, team=team)
            await self.ground._card_changed(repo, ticket.id)
            if remove:
                note = texts.COHANDLE_REMOVED_GROUP.format(number=ticket.number)
                await enqueue(repo, now, f"team:{team}", "message", message(note), ticket.id)
            else:
                await enqueue(repo, now, f"team:{team}", "card", {"co": True}, ticket.id)
            await to_team(
                repo,
                now,
                ticket,
                (texts.COHANDLE_LEAD_REMOVED if remove else texts.COHANDLE_LEAD_ADDED).format(
                    number=ticket.number, team=team_name(team)
                ),
            )
        logger.info("ticket %s: co-team %s %s by %s", ticket.number, team, action, actor.id)
        self.ground.on_change()
        template = texts.COHANDLE_REMOVED if remove else texts.COHANDLE_ADDED
        return [Reply(template.format(number=ticket.number, team=team_name(team)))]

    async def dispatch(self, actor: Actor, ticket_id: int, team: str) -> list[Reply]:
        """Route (or re-route) an open ticket to a team: coordinators and admins only."""
        if team not in TEAM_NAMES:
            raise BadInput(texts.DISPATCH_USAGE.format(teams=", ".join(TEAM_NAMES)))
        if not await self.ground.is_coordinator(actor):
            raise NotAllowed("只有专班或管理员可以分拨")
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            await self.ground._require_coordinator(repo, actor, ticket, "只有专班或管理员可以分拨")
            if not ticket.state.is_open or ticket.state in (
                TicketState.PENDING_CONFIRM,
                TicketState.MERGED,
            ):
                raise WrongState(ticket.number, ticket.state.label, "dispatch")
            if ticket.team_id == team and ticket.state != TicketState.PENDING_DISPATCH:
                return [
                    Reply(texts.DISPATCH_SAME.format(number=ticket.number, team=team_name(team)))
                ]
            await repo.tickets.update_ticket(
                ticket_id,
                state=TicketState.PENDING_CLAIM.value,
                team_id=team,
                co_teams=[],
                classified_by="coordinator",
                dispatched_at=now,
                claim_due_at=self.ground.policy_for(ticket.county).claim_due(now),
                claimed_by=None,
                claimed_by_name=None,
                claimed_at=None,
                updated_at=now,
            )
            await self.ground._event(
                repo,
                ticket,
                actor.id,
                "dispatched",
                TicketState.PENDING_CLAIM,
                team=team,
                previous=ticket.team_id,
            )
            if (ticket.predicted_team or GENERAL) != team:
                await repo.tickets.insert_correction(
                    ticket_id,
                    ticket.text,
                    ticket.predicted_team or GENERAL,
                    team,
                    "coordinator",
                    now,
                )
            await following.follow_route(
                repo, ticket, team_id=team, claimed_by=None, claimed_by_name=None, claimed_at=None
            )
            await self.ground._card_changed(repo, ticket_id)
            await self.ground._send_card(repo, ticket_id, team)
            await to_firm(
                repo,
                now,
                ticket,
                texts.DISPATCH_FIRM.format(number=ticket.number, team=team_name(team)),
            )
        logger.info("ticket %s dispatched to %s by %s", ticket.number, team, actor.id)
        self.ground.on_change()
        return [Reply(texts.DISPATCH_DONE.format(number=ticket.number, team=team_name(team)))]

    async def ask_discard(self, actor: Actor, ticket_id: int, kind: str) -> list[Reply]:
        """无效 / 重复 on the coordinators' card: ask for the reason the firm will see."""
        close = _discard_type(kind)
        if not await self.ground.is_coordinator(actor):
            raise NotAllowed("只有专班或管理员可以按无效或重复处理")
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            await self.ground._require_coordinator(
                repo, actor, ticket, "只有专班或管理员可以按无效或重复处理"
            )
            if not ticket.state.is_open:
                raise WrongState(ticket.number, ticket.state.label, "discard")
            await await_text(self.ground, repo, actor, f"{close.value}:{ticket_id}:{actor.chat_id}")
        return [
            Reply(
                texts.DISCARD_ASK.format(number=ticket.number, kind=close.label),
                force_reply=True,
            )
        ]

    async def discard(self, actor: Actor, ticket_id: int, kind: str, reason: str) -> list[Reply]:
        """The reason arrived: the ticket is cancelled as 无效 / 重复 and the firm is told why."""
        close = _discard_type(kind)
        reason = reason.strip()[:500]
        if not await self.ground.is_coordinator(actor):
            raise NotAllowed("只有专班或管理员可以按无效或重复处理")
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            await self.ground._require_coordinator(
                repo, actor, ticket, "只有专班或管理员可以按无效或重复处理"
            )
            if not reason:
                raise BadInput(texts.DISCARD_ASK.format(number=ticket.number, kind=close.label))
            if not ticket.state.is_open:
                raise WrongState(ticket.number, ticket.state.label, "discard")
            await repo.tickets.update_ticket(
                ticket_id,
                state=TicketState.CANCELLED.value,
                close_type=close.value,
                result_text=f"{close.label}：{reason}",
                closed_at=now,
                closed_by=actor.id,
                updated_at=now,
            )
            await self.ground._event(
                repo,
                ticket,
                actor.id,
                "discarded",
                TicketState.CANCELLED,
                close_type=close.value,
                reason=reason,
            )
            await repo.users.update_user(actor.id, now, awaiting=None)
            await self.ground._card_changed(repo, ticket_id)
            await following.release(self.ground, repo, ticket)
            main = await following.main_of(repo, ticket)
            if main is not None:  # its count of merged tickets changed
                await self.ground._card_changed(repo, main.id)
            await to_firm(
                repo,
                now,
                ticket,
                texts.DISCARD_FIRM.format(number=ticket.number, kind=close.label, reason=reason),
            )
        logger.info("ticket %s closed as %s by %s", ticket.number, close.value, actor.id)
        self.ground.on_change()
        return [Reply(texts.DISCARD_DONE.format(number=ticket.number, kind=close.label))]

    async def dispatch_number(self, actor: Actor, number: str, team: str) -> list[Reply]:
        """/dispatch <number> <team_id>."""
        async with self.ground.db.read() as repo:
            ticket = await self.ground._by_number(repo, number)
        return await self.dispatch(actor, ticket.id, team)


def _discard_type(kind: str) -> CloseType:
    if kind not in DISCARD_TYPES:
        raise BadInput(texts.STALE_BUTTON)
    return CloseType(kind)


async def await_text(ground: Ground, repo: Repo, actor: Actor, key: str) -> None:
    """The actor's next text in this chat completes `key`; a second press of the same button
    asks nothing new (the first prompt stands)."""
    user = await repo.users.upsert_user(actor.id, actor.name, actor.username, ground.now())
    if user.awaiting == key:
        raise BadInput(texts.AWAITING_ALREADY)
    await repo.users.update_user(actor.id, ground.now(), awaiting=key)
