"""The ticket workflow as one facade for every channel's handlers (imports no channel).

Its parts are plain classes with explicit dependencies on one shared `Ground` (database, clock,
classifier, rights, lookups): `Intake` (registration, drafts, submit), `Handling` (claim, return,
resolve, rate), `Routing` (协办, 分拨, 无效/重复), `Talking` (relays between team and firm), `Merging` (合并 and
撤销合并). The facade names every action it offers, so a call graph leads from a handler to the
part that does the work.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.classify.classifier import Classifier
from bot.config import Settings
from bot.core.ports import Actor, Clock, Incoming, Membership, visible
from bot.render import texts
from bot.render.keyboards import Reply
from bot.storage.db import Database
from bot.workflow.base import MAX_REPORT_CHARS, OPEN, Ground
from bot.workflow.handling import Handling, pending_action
from bot.workflow.intake import Intake
from bot.workflow.merging import Merging
from bot.workflow.relating import Relating
from bot.workflow.routing import Routing
from bot.workflow.talking import Talking

__all__ = ["MAX_REPORT_CHARS", "OPEN", "Incoming", "Workflow"]


class Workflow:
    """The whole ticket loop, driven by any chat platform's handlers."""

    def __init__(
        self,
        db: Database,
        classifier: Classifier,
        settings: Settings,
        clock: Clock,
        membership: Membership,
    ) -> None:
        ground = Ground(db, classifier, settings, clock, membership)
        self.ground = ground
        self.db, self.settings, self.rights = ground.db, ground.settings, ground.rights
        self.calendar, self.policy = ground.calendar, ground.policy
        self.relating = relating = Relating(ground)
        self.intake = intake = Intake(ground, relating)
        self.routing = routing = Routing(ground)
        self.handling = handling = Handling(ground, routing)
        self.talking = talking = Talking(ground)
        self.merging = merging = Merging(ground)
        # -- intake: registration, drafts, submission
        self.start = intake.start
        self.registration_input = intake.registration_input
        self.needs_registration = intake.needs_registration
        self.profile = intake.profile
        self.report = intake.report
        self.choose_team = intake.choose_team
        self.pick_team = intake.pick_team
        self.toggle_urgent = intake.toggle_urgent
        self.cancel_draft = intake.cancel_draft
        self.confirm = intake.confirm
        # -- handling: the team's actions on a ticket, the firm's rating, awaited texts
        self.claim = handling.claim
        self.ask_return = handling.ask_return
        self.return_ticket = handling.return_ticket
        self.ask_resolve = handling.ask_resolve
        self.resolve = handling.resolve
        self.rate = handling.rate
        self.first_contact = handling.first_contact
        self.progress = handling.progress
        self.co_progress = handling.co_progress
        self.awaited = handling.awaited
        self.complete_awaited = handling.complete_awaited
        # -- routing: the coordinators send a ticket where it belongs
        self.set_co_team = routing.set_co_team
        self.dispatch = routing.dispatch
        self.dispatch_number = routing.dispatch_number
        self.ask_discard = routing.ask_discard
        self.discard = routing.discard
        # -- merging: one problem reported by several firms, handled once (合并)
        self.merge = merging.merge
        self.unmerge = merging.unmerge
        self.unmerge_number = merging.unmerge_number
        # -- talking: relays between the team and the firm
        self.relay_to_firm = talking.relay_to_firm
        self.relay_to_team = talking.relay_to_team
        self.reply_command = talking.reply_command
        self.withdraw = talking.withdraw
        # -- lookups, rights and group bindings
        self.now = ground.now
        self.is_coordinator = ground.is_coordinator
        self.is_team_member = ground.is_team_member
        self.my_tickets = ground.my_tickets
        self.view = ground.view
        self.bind = ground.bind
        self.unbind = ground.unbind
        self.teams = ground.teams
        self.migrate_chat = ground.migrate_chat
        self.binding_of = ground.binding_of
        self.linked = ground.linked
        self.arrived = ground.arrived
        # -- related reports (issue 13)
        self.related = relating.show

    @property
    def on_change(self) -> Callable[[], None]:
        """Called after a change that queued messages (the delivery loop's wake-up)."""
        return self.ground.on_change

    @on_change.setter
    def on_change(self, callback: Callable[[], None]) -> None:
        self.ground.on_change = callback

    async def private_message(self, actor: Actor, incoming: Incoming) -> list[Reply]:
        """Anything a user sends privately, in this order: a registration answer, the text a
        退回/办结 waits for, an answer to a relayed message, else a report (or part of one)."""
        text = incoming.text
        plain = incoming.attachment is None and incoming.location is None
        async with self.db.read() as repo:  # one read decides the first three cases
            user = await repo.users.get_user(actor.id)
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
        if linked[1] == "co_card":  # a co-handling team answers the lead, not the firm
            return await self.co_progress(actor, linked[0], text)
        return await self.relay_to_firm(actor, linked[0], text, incoming.message_id)
