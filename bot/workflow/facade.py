"""The ticket workflow as one object for the chat handlers (no telegram).

Its parts: bot.workflow.intake (registration, drafts, submit), bot.workflow.handling (claim, return, resolve, rate,
dispatch), bot.workflow.talking (relays between team and firm), on the shared bot.workflow.base.
"""

from __future__ import annotations

from bot.core.ports import Actor, Incoming, visible
from bot.render import texts
from bot.render.keyboards import Reply
from bot.workflow.base import MAX_REPORT_CHARS, OPEN, WorkflowBase
from bot.workflow.handling import Handling, pending_action
from bot.workflow.intake import Intake
from bot.workflow.talking import Talking

__all__ = ["MAX_REPORT_CHARS", "OPEN", "Incoming", "Workflow", "WorkflowBase"]


class Workflow(Intake, Handling, Talking):
    """The whole ticket loop, driven by any chat platform's handlers."""

    async def private_message(self, actor: Actor, incoming: Incoming) -> list[Reply]:
        """Anything a user sends privately, in this order: a registration answer, the text a
        退回/办结 waits for, an answer to a relayed message, else a report (or part of one)."""
        text = incoming.text
        plain = incoming.attachment is None and incoming.location is None
        async with self.db.read() as repo:  # one read decides the first three cases
            user = await repo.get_user(actor.id)
        registering = user is not None and user.reg_step is not None
        if incoming.contact is not None:
            if not registering:
                return [Reply(texts.UNSUPPORTED_MESSAGE)]
            phone, owner = incoming.contact
            return await self.registration_input(actor, contact_phone=phone, contact_user_id=owner)
        if not visible(text) and plain:
            return [Reply(texts.UNSUPPORTED_MESSAGE)]
        if text and plain and registering:
            return await self.registration_input(actor, text=text)
        if text and pending_action(user, actor.chat_id) is not None:
            return await self.complete_awaited(actor, text)
        if incoming.reply_to is not None:
            linked = await self.linked(actor.chat_id, incoming.reply_to)
            if linked is not None and linked[1] == "details":
                return await self.relay_to_firm(actor, linked[0], text, incoming.message_id)
            if linked is not None and linked[1] in ("relay", "result"):
                return await self.relay_to_team(
                    actor, linked[0], text, incoming.message_id, incoming.attachment
                )
        return await self.report(
            actor,
            incoming.message_id,
            text,
            attachment=incoming.attachment,
            location=incoming.location,
        )

    async def group_message(self, actor: Actor, incoming: Incoming) -> list[Reply]:
        """A member's text in a group: the reason or result a 退回/办结 waits for, or an answer
        to one of the bot's cards (relayed to the firm). Other group talk is not the bot's."""
        text = incoming.text
        if not visible(text):
            return []
        if await self.awaited(actor) is not None:
            return await self.complete_awaited(actor, text)
        if incoming.reply_to is None:
            return []
        linked = await self.linked(actor.chat_id, incoming.reply_to)
        if linked is None:
            return []
        if linked[1] == "batch":
            return [Reply(texts.BATCH_REPLY_HINT)]
        return await self.relay_to_firm(actor, linked[0], text, incoming.message_id)
