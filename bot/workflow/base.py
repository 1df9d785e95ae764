"""The workflow's shared ground: its dependencies, permissions, lookups and group bindings.

Every state change, its event-log line and the messages it causes are written in one transaction.
Methods return the replies for the acting chat; everything else goes through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.classify.classifier import Classification, Classifier
from bot.config import Settings
from bot.core.counties import SEP, scoped
from bot.core.errors import BadInput, NotAllowed, NotFound, WrongState
from bot.core.models import (
    BINDABLE,
    COORDINATOR,
    LEADERS,
    TEAM_NAMES,
    Ticket,
    TicketState,
    User,
    team_name,
)
from bot.core.ports import Actor, Clock, Membership
from bot.render import texts
from bot.render.keyboards import Reply
from bot.storage.db import Database, Repo
from bot.workflow.outbound import enqueue
from bot.workflow.rights import Rights
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy

logger = logging.getLogger(__name__)

MAX_REPORT_CHARS = 4000
OPEN = (
    TicketState.PENDING_DISPATCH,
    TicketState.PENDING_CLAIM,
    TicketState.IN_PROGRESS,
    TicketState.LONG_TERM,
    TicketState.PENDING_CONFIRM,
)


class Ground:
    """What every part of the workflow shares: database, clock, classifier, rights."""

    def __init__(
        self,
        db: Database,
        classifier: Classifier,
        settings: Settings,
        clock: Clock,
        membership: Membership,
    ) -> None:
        self.db = db
        self.classifier = classifier
        self.settings = settings
        self.clock = clock
        self.membership = membership
        self.counties = settings.counties()
        self.rights = Rights(db, membership, self.counties)
        self.calendar = WorkCalendar(settings)
        self.policy = DeadlinePolicy(
            settings, self.calendar, {c.code: c.deadlines for c in self.counties}
        )
        self.on_change: Callable[[], None] = lambda: None

    # -- helpers -----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The workflow's clock."""
        return self.clock.now()

    def policy_for(self, county: str) -> DeadlinePolicy:
        """The deadline policy of a county: the settings with the county's own deadlines."""
        return self.policy.of(county)

    async def _user(self, repo: Repo, actor: Actor) -> User:
        user = await repo.users.get_user(actor.id)
        if user is None:
            user = await repo.users.upsert_user(actor.id, actor.name, actor.username, self.now())
        return user

    async def arrived(self, actor: Actor, *, staff: bool = False) -> int:
        """Someone wrote to the bot in their private chat, on a channel where that is what makes
        them reachable (WeCom members, 微信客服's 48-hour window): what waited for them is
        released. How many messages were released."""
        now = self.now()
        async with self.db.tx() as repo:
            user = await repo.users.get_user(actor.id)
            if user is None:
                user = await repo.users.upsert_user(actor.id, actor.name, actor.username, now)
            fields: dict[str, Any] = {}
            if not user.private_started:
                fields["private_started"] = 1
            if staff and not user.is_staff:
                fields["is_staff"] = 1
            if fields:
                await repo.users.update_user(actor.id, now, **fields)
            released = await repo.outbox.release_waiting(f"user:{actor.id}", actor.id, now)
        if released:
            self.on_change()
        return released

    async def _ticket(self, repo: Repo, ticket_id: int) -> Ticket:
        ticket = await repo.tickets.get_ticket(ticket_id)
        if ticket is None:
            raise NotFound(str(ticket_id))
        return ticket

    async def _by_number(self, repo: Repo, number: str) -> Ticket:
        ticket = await repo.tickets.get_ticket_by_number(number.strip())
        if ticket is None:
            raise NotFound(number.strip()[:40])
        return ticket

    async def _event(
        self,
        repo: Repo,
        ticket: Ticket,
        actor_id: str | None,
        action: str,
        to_state: TicketState | None = None,
        **payload: Any,
    ) -> None:
        await repo.tickets.insert_event(
            ticket.id,
            actor_id,
            action,
            ticket.state.value,
            (to_state or ticket.state).value,
            payload,
            self.now(),
        )

    async def _card_changed(self, repo: Repo, ticket_id: int) -> None:
        await enqueue(repo, self.now(), f"ticket:{ticket_id}", "card_edit", {}, ticket_id)

    async def is_coordinator(self, actor: Actor, county: str | None = None) -> bool:
        """Admins and members of the coordinators' group (of `county`, or of any)."""
        return await self.rights.is_coordinator(actor, county)

    async def is_team_member(self, actor: Actor, team_id: str | None, county: str = "") -> bool:
        """Admins and members of the team's bound group in the county."""
        return await self.rights.is_team_member(actor, team_id, county)

    async def _require_member(self, actor: Actor) -> None:
        """The presser is in the group they press in (asked before any transaction)."""
        if actor.is_admin or actor.private:
            return
        if not await self.membership.is_member(actor.chat_id, actor.id):
            raise NotAllowed("您不是本群成员")

    async def _require_team_chat(self, repo: Repo, actor: Actor, ticket: Ticket) -> None:
        """A button or command in a group acts on the tickets of the team bound there."""
        binding = await repo.users.get_binding(actor.chat_id)
        if binding is None:
            raise NotAllowed("本群未绑定团队")
        if binding.county != ticket.county:
            raise NotAllowed(texts.OTHER_COUNTY)
        if binding.team_id == COORDINATOR:
            return
        if binding.team_id != ticket.team_id:
            raise NotAllowed(f"该工单不属于{team_name(binding.team_id)}")

    async def _require_coordinator(
        self, repo: Repo, actor: Actor, ticket: Ticket, why: str
    ) -> None:
        """A coordinator (or admin) of the ticket's county, else NotAllowed(why)."""
        if not await self.rights.coordinates(repo, actor, ticket):
            raise NotAllowed(why)

    async def _require_reporter(self, repo: Repo, actor: Actor, ticket: Ticket) -> None:
        user = await repo.users.get_user(actor.id)
        same_firm = (
            user is not None
            and user.enterprise_id is not None
            and user.enterprise_id == ticket.enterprise_id
        )
        if ticket.reporter_id != actor.id and not same_firm:
            raise NotFound(ticket.number or "")

    async def _require_handler(self, repo: Repo, actor: Actor, ticket: Ticket, action: str) -> None:
        """The claimer (or a coordinator/admin) on an open, claimed ticket; on a merged ticket,
        whoever may handle its main ticket."""
        if ticket.state == TicketState.MERGED and ticket.merged_into is not None:
            main = await self._ticket(repo, ticket.merged_into)
            await self._require_handler(repo, actor, main, action)
            return
        if ticket.state not in (
            TicketState.IN_PROGRESS,
            TicketState.LONG_TERM,
            TicketState.PENDING_CONFIRM,
        ):
            if ticket.state == TicketState.PENDING_CLAIM:
                raise BadInput(texts.RELAY_NEED_CLAIM)
            raise WrongState(ticket.number, ticket.state.label, action)
        if ticket.claimed_by == actor.id or await self.rights.coordinates(repo, actor, ticket):
            return
        raise NotAllowed(texts.RELAY_NOT_CLAIMER.format(name=ticket.claimed_by_name or "责任人"))

    async def _send_card(self, repo: Repo, ticket_id: int, team: str | None) -> None:
        """The card for the team the ticket goes to (the coordinators when none), and a
        read-only card for each of its co-handling (协办) teams."""
        if team is None:
            await enqueue(repo, self.now(), COORDINATOR, "card", {"coordinator": True}, ticket_id)
            return
        await enqueue(repo, self.now(), f"team:{team}", "card", {}, ticket_id)
        ticket = await repo.tickets.get_ticket(ticket_id)
        for co in ticket.co_teams if ticket is not None else []:
            if co != team:
                await enqueue(repo, self.now(), f"team:{co}", "card", {"co": True}, ticket_id)

    # -- looking things up -------------------------------------------------------------------

    async def my_tickets(self, actor: Actor) -> list[Reply]:
        """/my: the firm's tickets."""
        async with self.db.read() as repo:
            user = await repo.users.get_user(actor.id)
            if user is None or user.enterprise_id is None:
                return [Reply(texts.MY_NONE)]
            tickets = await repo.tickets.tickets_of_enterprise(user.enterprise_id)
        return [Reply(texts.render_my(tickets))]

    async def view(self, actor: Actor, number: str) -> list[Reply]:
        """/ticket <number>: state and history, for those allowed to see it."""
        async with self.db.read() as repo:
            ticket = await self._by_number(repo, number)
            user = await repo.users.get_user(actor.id)
            events = await repo.tickets.events(ticket.id)
        own = ticket.reporter_id == actor.id or (
            user is not None
            and user.enterprise_id is not None
            and user.enterprise_id == ticket.enterprise_id
        )
        staff = False
        if not own:
            staff = await self.rights.may_view(actor, ticket)
        if not own and not staff:
            raise NotFound(number)
        if ticket.state == TicketState.DRAFT:
            raise NotFound(number)
        return [Reply(texts.render_ticket_view(ticket, events, full=staff))]

    # -- groups ------------------------------------------------------------------------------

    async def bind(self, actor: Actor, title: str | None, team: str) -> list[Reply]:
        """/bind <team_id>[@county] in a group (admins only); waiting messages for it are
        released. With several counties the county is named, or is the one the county admin
        administers; the leaders' group of the whole deployment is bound with no county."""
        if not self.rights.is_county_admin(actor):
            raise NotAllowed(texts.NOT_ADMIN)
        team, _, code = team.partition(SEP)
        if team not in BINDABLE:
            raise BadInput(texts.BIND_USAGE.format(teams=_team_list()))
        county = self._bind_county(actor, team, code)
        now = self.now()
        async with self.db.tx() as repo:
            before = await repo.users.get_binding(actor.chat_id)
            if before is not None and not self.rights.is_county_admin(actor, before.county):
                # Another county's group: only its own admins may give it away.
                name = self.counties.of(before.county).name or team_name(before.team_id)
                raise NotAllowed(texts.BIND_NOT_COUNTY_ADMIN.format(county=name))
            await repo.users.bind(actor.chat_id, team, title, actor.id, now, county)
            target = team if team in (COORDINATOR, LEADERS) else f"team:{team}"
            await repo.outbox.release_waiting(scoped(target, county), actor.chat_id, now)
        logger.info("chat %s bound to %s (county %r) by %s", actor.chat_id, team, county, actor.id)
        self.on_change()
        if county:
            name = self.counties.of(county).name
            return [Reply(texts.BIND_DONE_COUNTY.format(county=name, team=team_name(team)))]
        return [Reply(texts.BIND_DONE.format(team=team_name(team)))]

    def _bind_county(self, actor: Actor, team: str, code: str) -> str:
        """The county a /bind is for (BadInput / NotAllowed when it cannot be)."""
        if self.counties.single:
            if code:
                raise BadInput(texts.BIND_USAGE.format(teams=_team_list()))
            return ""
        if not code:
            own = self.counties.admin_of(actor.id)
            if team == LEADERS and actor.is_admin:
                return ""  # the city's or province's leaders: every county
            if len(own) == 1 and not actor.is_admin:
                return own[0].code
            raise BadInput(
                texts.BIND_USAGE_COUNTY.format(
                    example=f"{team}{SEP}{self.counties.all[0].code}",
                    counties=self._county_list(),
                )
            )
        county = self.counties.get(code)
        if county is None:
            raise BadInput(
                texts.BIND_UNKNOWN_COUNTY.format(code=code[:32], counties=self._county_list())
            )
        if not self.rights.is_county_admin(actor, county.code):
            raise NotAllowed(texts.BIND_NOT_COUNTY_ADMIN.format(county=county.name))
        return county.code

    def _county_list(self) -> str:
        return "\n".join(f"{c.code} {c.name}" for c in self.counties)

    async def unbind(self, actor: Actor) -> list[Reply]:
        """/unbind (admins only: of the group's county)."""
        if not self.rights.is_county_admin(actor):
            raise NotAllowed(texts.NOT_ADMIN)
        async with self.db.tx() as repo:
            binding = await repo.users.get_binding(actor.chat_id)
            if binding is not None and not self.rights.is_county_admin(actor, binding.county):
                raise NotAllowed(texts.NOT_ADMIN)
            binding = await repo.users.unbind(actor.chat_id)
        if binding is None:
            return [Reply(texts.UNBIND_NONE)]
        return [Reply(texts.UNBIND_DONE.format(team=team_name(binding.team_id)))]

    async def teams(self) -> list[Reply]:
        """/teams: which group is bound to which team (per county, when there are several)."""
        async with self.db.read() as repo:
            bindings = {(b.county, b.team_id): b for b in await repo.users.list_bindings()}
        lines = [texts.TEAMS_HEADER]
        for county in self.counties:
            if not self.counties.single:
                lines.append(texts.TEAMS_COUNTY_HEADER.format(county=county.name))
            for team in BINDABLE:
                if team == LEADERS and not self.counties.single:
                    continue
                binding = bindings.get((county.code, team))
                where = binding.title or str(binding.chat_id) if binding else texts.TEAMS_UNBOUND
                lines.append(f"{team_name(team)}（{scoped(team, county.code)}）：{where}")
        if not self.counties.single:
            binding = bindings.get(("", LEADERS))
            where = binding.title or str(binding.chat_id) if binding else texts.TEAMS_UNBOUND
            lines.append(f"{team_name(LEADERS)}（{LEADERS}）：{where}")
        return [Reply("\n".join(lines))]

    async def migrate_chat(self, old: str, new: str) -> None:
        """A group became a supergroup: its binding follows."""
        async with self.db.tx() as repo:
            await repo.users.migrate_chat(old, new)
        logger.info("chat %s migrated to %s", old, new)

    async def binding_of(self, chat_id: str) -> str | None:
        """The team bound to a chat, if any."""
        async with self.db.read() as repo:
            binding = await repo.users.get_binding(chat_id)
        return binding.team_id if binding else None

    async def linked(self, chat_id: str, message_id: str) -> tuple[int, str] | None:
        """The ticket (and purpose) a delivered message belongs to.

        A batch card that lists several tickets gives (0, "batch"): the reply must say which.
        """
        async with self.db.read() as repo:
            found = await repo.tickets.linked_ticket(chat_id, message_id)
            if found is not None:
                return found
            batch = await repo.outbox.batch_tickets(chat_id, message_id)
        if len(batch) == 1:
            return batch[0], "card"
        return (0, "batch") if batch else None


def team_of(result: Classification, low_confidence: float) -> str | None:
    """The team a classification routes to, or None for the coordinators (no team fits, or the
    classifier is less sure than LOW_CONFIDENCE)."""
    if result.primary not in TEAM_NAMES or result.confidence < low_confidence:
        return None
    return result.primary


def _team_list() -> str:
    return "\n".join(f"{team} {team_name(team)}" for team in BINDABLE)
