"""Talking: messages relayed between a team and a firm, withdrawals (no telegram)."""

from __future__ import annotations

import logging

from bot.core.errors import BadInput, NotFound, WrongState
from bot.core.models import TicketState
from bot.core.ports import Actor
from bot.render import texts
from bot.render.keyboards import Reply
from bot.workflow import following
from bot.workflow.base import Ground
from bot.workflow.outbound import enqueue, to_team

logger = logging.getLogger(__name__)


class Talking:
    """The firm and the team talk through the bot; every message is in the log."""

    def __init__(self, ground: Ground) -> None:
        self.ground = ground

    # -- talking -----------------------------------------------------------------------------

    async def relay_to_firm(
        self, actor: Actor, ticket_id: int, text: str, message_id: str
    ) -> list[Reply]:
        """A team member's reply to the card (or /reply): relayed to the firm, marked with the team."""
        text = text.strip()[:3000]
        if not text:
            raise BadInput(texts.REPLY_USAGE)
        async with self.ground.db.tx() as repo:
            if not await repo.tickets.mark_seen(actor.chat_id, message_id, ticket_id):
                return []
            ticket = await self.ground._ticket(repo, ticket_id)
            await self.ground._require_handler(repo, actor, ticket, "reply")
            await self.ground._event(repo, ticket, actor.id, "relay_to_firm", text=text)
            # The claimer's words to the main firm are progress for every merged firm.
            await following.tell_firms(
                self.ground, repo, ticket, texts.RELAY_TO_FIRM, text, "main_progress"
            )
        self.ground.on_change()
        return [Reply(texts.RELAY_SENT)]

    async def relay_to_team(
        self,
        actor: Actor,
        ticket_id: int,
        text: str,
        message_id: str,
        attachment: tuple[str, str] | None = None,
    ) -> list[Reply]:
        """The firm's answer: shown in the team group as a reply to the card."""
        now = self.ground.now()
        text = text.strip()[:3000]
        async with self.ground.db.tx() as repo:
            if not await repo.tickets.mark_seen(actor.chat_id, message_id, ticket_id):
                return []
            ticket = await self.ground._ticket(repo, ticket_id)
            await self.ground._require_reporter(repo, actor, ticket)
            if not ticket.state.is_open:
                raise WrongState(ticket.number, ticket.state.label, "reply")
            if not text and attachment is None:
                raise BadInput(texts.REPLY_USAGE)
            await self.ground._event(repo, ticket, actor.id, "relay_to_team", text=text)
            main = await following.main_of(repo, ticket)
            if main is not None:  # the team works the problem on the main ticket's card
                note = texts.MERGED_RELAY_TO_GROUP.format(
                    number=ticket.number, main=main.number, text=text or "（附件）"
                )
                await to_team(repo, now, main, note)
            else:
                await to_team(
                    repo,
                    now,
                    ticket,
                    texts.RELAY_TO_GROUP.format(number=ticket.number, text=text or "（附件）"),
                )
            if attachment is not None:
                await repo.tickets.insert_attachment(
                    ticket_id, attachment[0], attachment[1], text, now
                )
                if ticket.claimed_by:
                    await enqueue(
                        repo,
                        now,
                        f"user:{ticket.claimed_by}",
                        "media",
                        {
                            "media": attachment[0],
                            "file_id": attachment[1],
                            "caption": f"{ticket.number} 企业补充附件",
                        },
                        ticket_id,
                    )
        self.ground.on_change()
        return [Reply(texts.RELAY_SENT)]

    async def reply_command(
        self, actor: Actor, number: str, text: str, message_id: str
    ) -> list[Reply]:
        """/reply <number> <text> in private: from a firm to its team, or from staff to the firm."""
        async with self.ground.db.read() as repo:
            ticket = await self.ground._by_number(repo, number)
            user = await repo.users.get_user(actor.id)
        own = ticket.reporter_id == actor.id or (
            user is not None
            and user.enterprise_id is not None
            and user.enterprise_id == ticket.enterprise_id
        )
        if own:
            return await self.relay_to_team(actor, ticket.id, text, message_id)
        if not (
            await self.ground.is_coordinator(actor, ticket.county)
            or await self.ground.is_team_member(actor, ticket.team_id, ticket.county)
        ):
            raise NotFound(number.strip()[:40])
        return await self.relay_to_firm(actor, ticket.id, text, message_id)

    async def withdraw(self, actor: Actor, number: str) -> list[Reply]:
        """/withdraw: the firm cancels its own open ticket."""
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._by_number(repo, number)
            await self.ground._require_reporter(repo, actor, ticket)
            if not ticket.state.is_open:
                raise WrongState(ticket.number, ticket.state.label, "withdraw")
            await repo.tickets.update_ticket(
                ticket.id,
                state=TicketState.CANCELLED.value,
                closed_at=now,
                closed_by=actor.id,
                updated_at=now,
            )
            await self.ground._event(repo, ticket, actor.id, "withdrawn", TicketState.CANCELLED)
            await to_team(repo, now, ticket, texts.WITHDRAW_GROUP.format(number=ticket.number))
            await self.ground._card_changed(repo, ticket.id)
            await following.release(self.ground, repo, ticket)
            main = await following.main_of(repo, ticket)
            if main is not None:
                await self.ground._card_changed(repo, main.id)
        self.ground.on_change()
        return [Reply(texts.WITHDRAW_DONE.format(number=ticket.number))]
