"""合并: several firms' reports of one problem handled once, under a main ticket (no channel).

The rules (README "Merging related tickets"):

- `/merge YM-被合并 YM-主单`: the claimer of the main ticket or a member of its team merges a
  ticket of the same team; coordinators merge any two, across teams too (rights.may_merge).
  Refused: a ticket into itself; into a ticket that is itself merged (the reply names its main);
  a ticket already merged; a main ticket that has tickets merged into it (no chains, and so no
  cycles); closed, cancelled or 待评价 tickets on either side; a confidential ticket with
  a non-confidential one.
- The merged ticket goes to state `merged` with `merged_into` set and the main's team; its card
  shows "已合并到 YM-…" without buttons; its firm is told; no reminder or deadline runs on it.
- Whatever the main ticket's firm hears from the team (签收, /progress, the claimer's messages,
  the 办结 result) each merged firm hears too, under its own ticket number, with every involved
  firm's contact name and phone masked. On 办结 each merged ticket becomes 待评价 with the same
  result and its own rating buttons: it rates on its own. 满意/基本满意 closes it;
  未解决 takes it out of the merge (`merged_into` cleared): it is reopened in the main's team
  with the main's claimer as its own problem, and the team and the coordinators are told.
- 撤销合并 (the button on the merge reply, or `/unmerge YM-…`), for the same people, while the
  merged ticket had not been claimed when it was merged and nothing of the main ticket's
  handling (签收, progress, result) has reached its firm since: then it can be put back exactly
  as it was (state, team, co-handling teams, deadlines: the clock does not stop) and gets its
  card again. After that point the firm has been told the main's story, and the way out is the
  firm's own 未解决.
- The main ticket withdrawn by its firm or cancelled by the coordinators: every ticket still
  merged into it goes back to its team unclaimed, with a new card and a new 签收 deadline.
"""

from __future__ import annotations

import logging

from bot.core.errors import BadInput, NotAllowed, NotFound
from bot.core.models import Ticket, TicketState
from bot.core.ports import Actor
from bot.render import texts
from bot.render.keyboards import Button, Reply, cb
from bot.storage.db import Repo
from bot.workflow.base import Ground
from bot.workflow.following import card_back
from bot.workflow.outbound import to_firm, to_team

logger = logging.getLogger(__name__)

# States a ticket may be merged from, and states a main ticket may take tickets in.
MERGEABLE = (
    TicketState.PENDING_DISPATCH,
    TicketState.PENDING_CLAIM,
    TicketState.IN_PROGRESS,
    TicketState.LONG_TERM,
)
UNCLAIMED = (TicketState.PENDING_DISPATCH, TicketState.PENDING_CLAIM)
# Events on a merged ticket that mean its firm heard the main ticket's handling.
TOLD = frozenset({"main_claimed", "main_progress", "main_resolved"})


class Merging:
    """合并 and 撤销合并."""

    def __init__(self, ground: Ground) -> None:
        self.ground = ground

    async def _check_rights(self, repo: Repo, actor: Actor, ticket: Ticket, main: Ticket) -> None:
        """NotFound for someone who may see neither ticket (nothing is revealed), NotAllowed
        for staff who may see them but not merge them."""
        why = await self.ground.rights.may_merge(repo, actor, ticket, main)
        if why is None:
            return
        for t in (main, ticket):
            if not await self.ground.rights.may_view_in(repo, actor, t):
                raise NotFound(t.number or "")
        raise NotAllowed(why)

    async def merge(self, actor: Actor, number: str, main_number: str) -> list[Reply]:
        """/merge <merged> <main>: the first ticket is handled under the second."""
        if number.strip().upper() == main_number.strip().upper():
            raise BadInput(texts.MERGE_SELF.format(number=number.strip()[:40]))
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._by_number(repo, number)
            main = await self.ground._by_number(repo, main_number)
            if ticket.state == TicketState.DRAFT:
                raise NotFound(number.strip()[:40])
            if main.state == TicketState.DRAFT:
                raise NotFound(main_number.strip()[:40])
            await self._check_rights(repo, actor, ticket, main)
            self._check_merge(ticket, main)
            children = await repo.tickets.merged_tickets(ticket.id)
            if children:
                raise BadInput(
                    texts.MERGE_HAS_MERGED.format(
                        number=ticket.number, count=len(children), main=main.number
                    )
                )
            await repo.tickets.update_ticket(
                ticket.id,
                state=TicketState.MERGED.value,
                merged_into=main.id,
                team_id=main.team_id,
                co_teams=[],
                claimed_by=main.claimed_by,
                claimed_by_name=main.claimed_by_name,
                claimed_at=main.claimed_at,
                updated_at=now,
            )
            await self.ground._event(
                repo,
                ticket,
                actor.id,
                "merged",
                TicketState.MERGED,
                main=main.number,
                team=ticket.team_id,
                co_teams=ticket.co_teams,
                claimed_by=ticket.claimed_by,
                claimed_by_name=ticket.claimed_by_name,
                claimed_at=ticket.claimed_at.isoformat() if ticket.claimed_at else None,
            )
            await self.ground._event(repo, main, actor.id, "merge_added", merged=ticket.number)
            await self.ground._card_changed(repo, ticket.id)
            await self.ground._card_changed(repo, main.id)
            await to_firm(
                repo,
                now,
                ticket,
                texts.MERGE_FIRM.format(number=ticket.number, main=main.number),
            )
            firms = len(await repo.tickets.merged_tickets(main.id, (TicketState.MERGED,))) + 1
            await to_team(
                repo,
                now,
                main,
                texts.MERGE_GROUP_MAIN.format(
                    number=ticket.number,
                    enterprise=ticket.enterprise_name or "—",
                    main=main.number,
                    firms=firms,
                ),
            )
        logger.info(
            "ticket %s merged into %s by %s, chat %s",
            ticket.number,
            main.number,
            actor.id,
            actor.chat_id,
        )
        self.ground.on_change()
        text = texts.MERGE_DONE.format(
            number=ticket.number, enterprise=ticket.enterprise_name or "—", main=main.number
        )
        if ticket.state not in UNCLAIMED:
            return [Reply(text)]
        return [
            Reply(
                text + texts.MERGE_UNDO_HINT.format(number=ticket.number),
                buttons=[[Button(texts.MERGE_BUTTON, cb("unmerge", ticket.id))]],
            )
        ]

    def _check_merge(self, ticket: Ticket, main: Ticket) -> None:
        if ticket.id == main.id:
            raise BadInput(texts.MERGE_SELF.format(number=ticket.number))
        if ticket.state == TicketState.MERGED or ticket.merged_into is not None:
            raise BadInput(
                texts.MERGE_ALREADY.format(number=ticket.number, main=ticket.merged_into_number)
            )
        if main.state == TicketState.MERGED or main.merged_into is not None:
            raise BadInput(
                texts.MERGE_INTO_MERGED.format(
                    main=main.number, root=main.merged_into_number, number=ticket.number
                )
            )
        if ticket.state not in MERGEABLE:
            raise BadInput(
                texts.MERGE_NOT_OPEN.format(number=ticket.number, state=ticket.state.label)
            )
        if main.state == TicketState.PENDING_CONFIRM:
            raise BadInput(texts.MERGE_MAIN_DONE.format(number=main.number))
        if main.state not in MERGEABLE:
            raise BadInput(texts.MERGE_NOT_OPEN.format(number=main.number, state=main.state.label))
        if ticket.confidential != main.confidential:
            raise BadInput(texts.MERGE_CONFIDENTIAL)

    async def unmerge_number(self, actor: Actor, number: str) -> list[Reply]:
        """/unmerge <number>."""
        async with self.ground.db.read() as repo:
            ticket = await self.ground._by_number(repo, number)
        return await self.unmerge(actor, ticket.id)

    async def unmerge(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """撤销合并: the merged ticket back as it was before the merge (see the module's rules)."""
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            ticket = await self.ground._ticket(repo, ticket_id)
            if ticket.merged_into is None:
                if not await self.ground.rights.may_view_in(repo, actor, ticket):
                    raise NotFound(ticket.number or "")
                raise BadInput(texts.UNMERGE_NOT_MERGED.format(number=ticket.number))
            main = await self.ground._ticket(repo, ticket.merged_into)
            events = await repo.tickets.events(ticket.id)
            merges = [e for e in events if e.action == "merged"]
            merged = merges[-1] if merges else None
            before = dict(merged.payload) if merged is not None else {}
            previous = ticket.model_copy(update={"team_id": before.get("team")})
            await self._check_rights(repo, actor, previous, main)
            if ticket.state != TicketState.MERGED or merged is None:
                raise BadInput(texts.UNMERGE_TOLD.format(main=main.number, number=ticket.number))
            state = TicketState(merged.from_state or TicketState.PENDING_CLAIM.value)
            if state not in UNCLAIMED:
                raise BadInput(texts.UNMERGE_WAS_CLAIMED.format(number=ticket.number))
            if any(e.action in TOLD for e in events if e.id > merged.id):
                raise BadInput(texts.UNMERGE_TOLD.format(main=main.number, number=ticket.number))
            team = before.get("team")
            await repo.tickets.update_ticket(
                ticket.id,
                state=state.value,
                merged_into=None,
                team_id=team,
                co_teams=list(before.get("co_teams") or []),
                claimed_by=None,
                claimed_by_name=None,
                claimed_at=None,
                updated_at=now,
            )
            await self.ground._event(repo, ticket, actor.id, "unmerged", state, main=main.number)
            await self.ground._event(repo, main, actor.id, "merge_removed", merged=ticket.number)
            await self.ground._card_changed(repo, ticket.id)
            await self.ground._card_changed(repo, main.id)
            card_team = team if state == TicketState.PENDING_CLAIM else None
            await card_back(self.ground, repo, ticket, card_team)
            await to_firm(repo, now, ticket, texts.UNMERGE_FIRM.format(number=ticket.number))
            await to_team(
                repo,
                now,
                main,
                texts.UNMERGE_GROUP_MAIN.format(number=ticket.number, main=main.number),
            )
        logger.info("ticket %s unmerged from %s by %s", ticket.number, main.number, actor.id)
        self.ground.on_change()
        return [Reply(texts.UNMERGE_DONE.format(number=ticket.number, state=state.label))]
