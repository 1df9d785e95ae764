"""Who may do what: every permission decision of the workflow, asked of the database and of the
channel's group membership (never passed in by a channel)."""

from __future__ import annotations

from bot.core.counties import Counties
from bot.core.models import COORDINATOR, LEADERS, Binding, Ticket, team_name
from bot.core.ports import Actor, Membership
from bot.render import texts
from bot.storage.db import Database, Repo


class NoMembership:
    """For tools that run without a channel (the command line): nobody is in any group."""

    async def is_member(self, chat_id: str, user_id: str) -> bool:
        """Never."""
        return False


class Rights:
    """Roles read from group bindings and membership at the moment of the action.

    Every role is a county's (bot.core.counties): the coordinators, a team's members and the
    county admins of one county act on that county's tickets only. ADMIN_IDS (the deployment's
    admins, `Actor.is_admin`) act everywhere.
    """

    def __init__(self, db: Database, membership: Membership, counties: Counties) -> None:
        self.db = db
        self.membership = membership
        self.counties = counties

    def is_county_admin(self, actor: Actor, county: str | None = None) -> bool:
        """The deployment's admins, and a county's own admins (of `county`, or of any county
        when None)."""
        if actor.is_admin:
            return True
        if county is None:
            return bool(self.counties.admin_of(actor.id))
        found = self.counties.get(county)
        return found is not None and actor.id in found.admins

    async def is_coordinator(self, actor: Actor, county: str | None = None) -> bool:
        """Admins and members of the coordinators' group: of `county`, or of any county when
        None (a first check before the ticket, and so its county, is known)."""
        if self.is_county_admin(actor, county):
            return True
        async with self.db.read() as repo:
            if county is not None:
                chats = [await repo.users.get_team_chat(COORDINATOR, county)]
            else:
                chats = [chat for _, chat in await repo.users.team_chats(COORDINATOR)]
        for chat in chats:
            if chat is not None and await self.membership.is_member(chat, actor.id):
                return True
        return False

    async def is_team_member(self, actor: Actor, team_id: str | None, county: str = "") -> bool:
        """Admins and members of the team's bound group in the county."""
        if actor.is_admin:
            return True
        if team_id is None:
            return False
        async with self.db.read() as repo:
            chat = await repo.users.get_team_chat(team_id, county)
        return chat is not None and await self.membership.is_member(chat, actor.id)

    async def co_team(self, repo: Repo, actor: Actor, ticket: Ticket) -> str | None:
        """The co-handling (协办) team the actor acts for on `ticket`: the chat is bound to one
        of its co-teams in the ticket's county and the actor is in it (admins too). None
        otherwise. Asked inside the caller's transaction (`repo`)."""
        binding = await repo.users.get_binding(actor.chat_id)
        if binding is None or binding.county != ticket.county:
            return None
        team = binding.team_id
        if team not in ticket.co_teams or team == ticket.team_id:
            return None
        if actor.is_admin or await self.membership.is_member(actor.chat_id, actor.id):
            return team
        return None

    async def may_view(self, actor: Actor, ticket: Ticket) -> bool:
        """Staff who may see a ticket: its county's coordinators, its team and its co-handling
        teams."""
        if await self.is_coordinator(actor, ticket.county):
            return True
        for team in (ticket.team_id, *ticket.co_teams):
            if await self.is_team_member(actor, team, ticket.county):
                return True
        return False

    async def _in_team(
        self, repo: Repo, actor: Actor, team_id: str | None, county: str = ""
    ) -> bool:
        """`is_team_member` inside the caller's transaction (`repo`); for the coordinators,
        the county's admins too."""
        if team_id == COORDINATOR and self.is_county_admin(actor, county):
            return True
        if actor.is_admin:
            return True
        chat = await repo.users.get_team_chat(team_id, county) if team_id is not None else None
        return chat is not None and await self.membership.is_member(chat, actor.id)

    async def coordinates(self, repo: Repo, actor: Actor, ticket: Ticket) -> bool:
        """The actor is a coordinator (or admin) of the ticket's county, asked inside the
        caller's transaction (`repo`)."""
        return await self._in_team(repo, actor, COORDINATOR, ticket.county)

    async def may_view_in(self, repo: Repo, actor: Actor, ticket: Ticket) -> bool:
        """`may_view` inside the caller's transaction (`repo`)."""
        teams = [COORDINATOR, ticket.team_id, *ticket.co_teams]
        return any([await self._in_team(repo, actor, team, ticket.county) for team in teams])

    async def may_merge(self, repo: Repo, actor: Actor, ticket: Ticket, main: Ticket) -> str | None:
        """合并 `ticket` into `main` (and 撤销合并): None when the actor may, else why not.

        Coordinators (and admins) merge any two tickets, across teams too: they route
        tickets, and a cross-team merge moves a firm to another team. The claimer of the main
        ticket and the members of its team merge a ticket of their own team only. Firms and
        members of other teams may not. Asked inside the caller's transaction (`repo`).
        """
        if ticket.county != main.county:
            return texts.MERGE_OTHER_COUNTY
        if await self._in_team(repo, actor, COORDINATOR, main.county):
            return None
        handles_main = main.claimed_by == actor.id or await self._in_team(
            repo, actor, main.team_id, main.county
        )
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
        if await self.is_coordinator(actor, ticket.county):
            return True
        return ticket.team_id is not None and await self.is_team_member(
            actor, ticket.team_id, ticket.county
        )

    async def chat_binding(self, actor: Actor) -> Binding | None:
        """The binding of the chat the actor acts in."""
        async with self.db.read() as repo:
            return await repo.users.get_binding(actor.chat_id)

    async def chat_team(self, actor: Actor) -> str | None:
        """The team (or coordinator / leaders) bound to the chat the actor acts in."""
        binding = await self.chat_binding(actor)
        return binding.team_id if binding else None

    async def stats_scope(self, actor: Actor) -> tuple[bool, str | None, str | None]:
        """(allowed, county, team): a team group sees its team, the coordinators' and leaders'
        groups their county's teams; the leaders' group bound with no county (a city's or a
        province's, or a one-county deployment's) sees every county (county None)."""
        binding = await self.chat_binding(actor)
        if binding is None:
            return False, None, None
        county = binding.county or None
        if binding.team_id in (COORDINATOR, LEADERS):
            return True, county, None
        return True, county, binding.team_id

    async def export_scope(self, actor: Actor) -> tuple[bool, str | None]:
        """(allowed, county): the ledger is exported in a coordinators' group only, of its
        county (every county in a one-county deployment)."""
        binding = await self.chat_binding(actor)
        if binding is None or binding.team_id != COORDINATOR:
            return False, None
        return True, binding.county or None
