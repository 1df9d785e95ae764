"""Who may do what: every permission decision of the workflow, asked of the database and of the
channel's group membership (never passed in by a channel)."""

from __future__ import annotations

from bot.core.models import COORDINATOR, LEADERS, Ticket, team_name
from bot.core.ports import Actor, Membership
from bot.render import texts
from bot.storage.db import Database, Repo


class NoMembership:
    """For tools that run without a channel (the command line): nobody is in any group."""

    async def is_member(self, chat_id: str, user_id: str) -> bool:
        """Never."""
        return False


class Rights:
    """Roles read from group bindings and membership at the moment of the action."""

    def __init__(self, db: Database, membership: Membership) -> None:
        self.db = db
        self.membership = membership

    async def is_coordinator(self, actor: Actor) -> bool:
        """Admins and members of the coordinators' group."""
        if actor.is_admin:
            return True
        async with self.db.read() as repo:
            chat = await repo.users.get_team_chat(COORDINATOR)
        return chat is not None and await self.membership.is_member(chat, actor.id)

    async def is_team_member(self, actor: Actor, team_id: str | None) -> bool:
        """Admins and members of the team's bound group."""
        if actor.is_admin:
            return True
        if team_id is None:
            return False
        async with self.db.read() as repo:
            chat = await repo.users.get_team_chat(team_id)
        return chat is not None and await self.membership.is_member(chat, actor.id)

    async def co_team(self, repo: Repo, actor: Actor, ticket: Ticket) -> str | None:
        """The co-handling (协办) team the actor acts for on `ticket`: the chat is bound to one
        of its co-teams and the actor is in it (admins too). None otherwise. Asked inside the
        caller's transaction (`repo`)."""
        binding = await repo.users.get_binding(actor.chat_id)
        team = binding.team_id if binding else None
        if team is None or team not in ticket.co_teams or team == ticket.team_id:
            return None
        if actor.is_admin or await self.membership.is_member(actor.chat_id, actor.id):
            return team
        return None

    async def may_view(self, actor: Actor, ticket: Ticket) -> bool:
        """Staff who may see a ticket: coordinators, its team and its co-handling teams."""
        if await self.is_coordinator(actor) or await self.is_team_member(actor, ticket.team_id):
            return True
        for team in ticket.co_teams:
            if await self.is_team_member(actor, team):
                return True
        return False

    async def _in_team(self, repo: Repo, actor: Actor, team_id: str | None) -> bool:
        """`is_team_member` inside the caller's transaction (`repo`)."""
        if actor.is_admin:
            return True
        chat = await repo.users.get_team_chat(team_id) if team_id is not None else None
        return chat is not None and await self.membership.is_member(chat, actor.id)

    async def may_view_in(self, repo: Repo, actor: Actor, ticket: Ticket) -> bool:
        """`may_view` inside the caller's transaction (`repo`)."""
        teams = [COORDINATOR, ticket.team_id, *ticket.co_teams]
        return any([await self._in_team(repo, actor, team) for team in teams])

    async def may_merge(self, repo: Repo, actor: Actor, ticket: Ticket, main: Ticket) -> str | None:
        """合并 `ticket` into `main` (and 撤销合并): None when the actor may, else why not.

        Coordinators (and admins) merge any two tickets, across teams too: they route
        tickets, and a cross-team merge moves a firm to another team. The claimer of the main
        ticket and the members of its team merge a ticket of their own team only. Firms and
        members of other teams may not. Asked inside the caller's transaction (`repo`).
        """
        if await self._in_team(repo, actor, COORDINATOR):
            return None
        handles_main = main.claimed_by == actor.id or await self._in_team(repo, actor, main.team_id)
        if not handles_main or main.team_id is None:
            return texts.MERGE_RULE
        if ticket.team_id != main.team_id:
            return texts.MERGE_OTHER_TEAM.format(
                number=ticket.number or "", team=team_name(ticket.team_id)
            )
        return None

    async def may_relate(self, actor: Actor, ticket: Ticket) -> bool:
        """/related: the coordinators and the team that holds the ticket (not its co-handling
        teams, not firms)."""
        if await self.is_coordinator(actor):
            return True
        return ticket.team_id is not None and await self.is_team_member(actor, ticket.team_id)

    async def chat_team(self, actor: Actor) -> str | None:
        """The team (or coordinator / leaders) bound to the chat the actor acts in."""
        async with self.db.read() as repo:
            binding = await repo.users.get_binding(actor.chat_id)
        return binding.team_id if binding else None

    async def stats_scope(self, actor: Actor) -> tuple[bool, str | None]:
        """(allowed, team): a team group sees its team, coordinators and leaders everyone."""
        team = await self.chat_team(actor)
        if team is None:
            return False, None
        return True, None if team in (COORDINATOR, LEADERS) else team

    async def may_export(self, actor: Actor) -> bool:
        """The ledger is exported in the coordinators' group only."""
        return await self.chat_team(actor) == COORDINATOR
