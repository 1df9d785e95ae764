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
from collections.abc import Callable, Sequence
from typing import Any

from bot.core.errors import BadInput, NotAllowed, NotFound
from bot.core.models import COORDINATOR, Ticket, TicketState, team_name
from bot.core.ports import Actor
from bot.core.privacy import mask_name, mask_phone
from bot.render import texts
from bot.render.keyboards import Button, Reply, cb, rating_keyboard
from bot.storage.db import Repo
from bot.workflow.base import Ground
from bot.workflow.outbound import enqueue, message, to_coordinators, to_firm, to_team

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


def scrub(text: str, tickets: Sequence[Ticket]) -> str:
    """The text with every involved firm's contact name and phone masked: what the claimer
    wrote to the main firm goes to the merged firms too."""
    for t in tickets:
        if t.contact_phone:
            text = text.replace(t.contact_phone, mask_phone(t.contact_phone))
        if t.contact_name and len(t.contact_name) >= 2:
            text = text.replace(t.contact_name, mask_name(t.contact_name))
    return text


async def followers(repo: Repo, main: Ticket) -> list[Ticket]:
    """The tickets merged into `main` that still wait for its handling."""
    return await repo.tickets.merged_tickets(main.id, (TicketState.MERGED,))


async def main_of(repo: Repo, ticket: Ticket) -> Ticket | None:
    """The main ticket of a ticket still merged (waiting for the main's handling)."""
    if ticket.state != TicketState.MERGED or ticket.merged_into is None:
        return None
    return await repo.tickets.get_ticket(ticket.merged_into)


async def fan_out(
    ground: Ground,
    repo: Repo,
    main: Ticket,
    action: str,
    render: Callable[[Ticket], str],
    **payload: Any,
) -> int:
    """What the main ticket's firm was just told, to every merged firm under its own number
    (logged on the merged ticket as `action`). How many firms."""
    merged = await followers(repo, main)
    now = ground.now()
    involved = [main, *merged]
    for ticket in merged:
        await ground._event(repo, ticket, None, action, main=main.number, **payload)
        await to_firm(repo, now, ticket, scrub(render(ticket), involved), link="relay")
    return len(merged)


async def tell_firms(
    ground: Ground, repo: Repo, main: Ticket, template: str, text: str, action: str
) -> None:
    """A team's words (`template` with team, number, text) to the main ticket's firm, and as
    progress to every firm merged into it, each under its own number."""
    team = team_name(main.team_id)
    await to_firm(
        repo,
        ground.now(),
        main,
        template.format(team=team, number=main.number, text=text),
        link="relay",
    )
    await fan_out(
        ground,
        repo,
        main,
        action,
        lambda t: template.format(team=team, number=t.number, text=text),
        text=text,
    )


async def follow_claim(ground: Ground, repo: Repo, main: Ticket, actor: Actor) -> None:
    """The main ticket was claimed: its claimer is the merged tickets' too; their firms told."""
    now = ground.now()
    for ticket in await followers(repo, main):
        await repo.tickets.update_ticket(
            ticket.id,
            claimed_by=actor.id,
            claimed_by_name=actor.name,
            claimed_at=now,
            updated_at=now,
        )
    await fan_out(
        ground,
        repo,
        main,
        "main_claimed",
        lambda t: texts.CLAIM_FIRM.format(
            number=t.number, team=team_name(main.team_id), name=actor.name
        ),
    )


async def card_back(ground: Ground, repo: Repo, ticket: Ticket, team: str | None) -> None:
    """The ticket is on its own again: its card in the group it now belongs to is edited back
    (buttons and all, with the card_edit the caller queued) and a note answers it there; where
    it has no card yet (a cross-team merge moved it), a new card is sent."""
    now = ground.now()
    chat = await repo.users.get_team_chat(team or COORDINATOR, ticket.county)
    cards = await repo.tickets.card_messages(ticket.id)
    if chat is None or not any(c == chat for c, _, p in cards if p in ("card", "coord_card")):
        await ground._send_card(repo, ticket.id, team)
        return
    note = texts.UNMERGED_GROUP.format(number=ticket.number)
    target = f"team:{team}" if team else COORDINATOR
    await enqueue(repo, now, target, "message", message(note, reply_to="card"), ticket.id)


async def follow_route(repo: Repo, main: Ticket, **fields: Any) -> None:
    """The main ticket was returned or re-routed: the merged tickets follow (team, claimer)."""
    for ticket in await followers(repo, main):
        await repo.tickets.update_ticket(ticket.id, **fields)


async def pass_result(ground: Ground, repo: Repo, main: Ticket, result: str) -> None:
    """办结 of the main ticket: each merged ticket gets the result and its own rating."""
    now = ground.now()
    merged = await followers(repo, main)
    involved = [main, *merged]
    for ticket in merged:
        await repo.tickets.update_ticket(
            ticket.id,
            state=TicketState.PENDING_CONFIRM.value,
            result_text=result,
            resolved_at=now,
            resolve_workdays=max(
                ground.calendar.work_days_between(ticket.submitted_at or now, now), 0.0
            ),
            updated_at=now,
        )
        await ground._event(
            repo, ticket, None, "main_resolved", TicketState.PENDING_CONFIRM, main=main.number
        )
        await ground._card_changed(repo, ticket.id)
        text = texts.RESOLVE_FIRM.format(
            number=ticket.number, team=team_name(main.team_id), result=result
        )
        await to_firm(
            repo, now, ticket, scrub(text, involved), rating_keyboard(ticket.id), link="result"
        )


async def release(ground: Ground, repo: Repo, main: Ticket) -> None:
    """The main ticket was withdrawn or cancelled: the tickets merged into it go back to the
    team on their own, unclaimed, with a new card and a new 签收 deadline."""
    now = ground.now()
    merged = await followers(repo, main)
    for ticket in merged:
        state = TicketState.PENDING_CLAIM if ticket.team_id else TicketState.PENDING_DISPATCH
        await repo.tickets.update_ticket(
            ticket.id,
            state=state.value,
            merged_into=None,
            claimed_by=None,
            claimed_by_name=None,
            claimed_at=None,
            dispatched_at=now,
            claim_due_at=ground.policy_for(ticket.county).claim_due(now),
            updated_at=now,
        )
        await ground._event(repo, ticket, None, "main_released", state, main=main.number)
        await ground._card_changed(repo, ticket.id)
        await card_back(ground, repo, ticket, ticket.team_id)
        await to_firm(repo, now, ticket, texts.MAIN_RELEASED_FIRM.format(number=ticket.number))
    if merged:
        numbers = "、".join(t.number or "" for t in merged)
        await to_team(
            repo, now, main, texts.MAIN_RELEASED_GROUP.format(main=main.number, numbers=numbers)
        )
        logger.info("ticket %s cancelled: %d merged tickets released", main.number, len(merged))


async def reopen_merged(ground: Ground, repo: Repo, actor: Actor, ticket: Ticket) -> str:
    """A merged firm says the main's result did not solve its problem: its ticket leaves the
    merge and is reopened in the main's team with the main's claimer. The firm's reply."""
    now = ground.now()
    count = ticket.reopen_count + 1
    await repo.tickets.update_ticket(
        ticket.id,
        state=TicketState.IN_PROGRESS.value,
        merged_into=None,
        reopen_count=count,
        satisfaction="unsolved",
        rated_at=now,
        updated_at=now,
    )
    await ground._event(
        repo,
        ticket,
        actor.id,
        "reopened",
        TicketState.IN_PROGRESS,
        rating="unsolved",
        unmerged_from=ticket.merged_into_number,
    )
    await card_back(ground, repo, ticket, ticket.team_id)
    owner = ticket.claimed_by_name or "未签收"
    note = texts.MERGED_REOPEN_GROUP.format(
        number=ticket.number, main=ticket.merged_into_number, count=count, owner=owner
    )
    await to_team(repo, now, ticket, note)
    await to_coordinators(
        repo,
        now,
        texts.MERGED_REOPEN_COORD.format(
            number=ticket.number, main=ticket.merged_into_number, team=team_name(ticket.team_id)
        ),
        ticket,
    )
    if ticket.claimed_by:  # the claimer now talks to this firm directly
        await enqueue(repo, now, f"user:{ticket.claimed_by}", "details", {}, ticket.id)
        await ground._event(repo, ticket, ticket.claimed_by, "details_viewed")
    logger.info("ticket %s left the merge into %s: not solved", ticket.number, ticket.merged_into)
    return texts.RATE_REOPEN_FIRM.format(number=ticket.number, rating="不满意")


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
