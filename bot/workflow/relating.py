"""Related reports on the workflow's side: the finder kept in step with the database, the links
stored at submission (the card shows them), the burst alert to the coordinators and /related.

The finder (bot/workflow/related.py) lives in memory and is rebuilt from the database at start:
open tickets of the last RELATED_WINDOW_WORKDAYS working days, in submission order, grouped by
the links stored before. A ticket is indexed inside its submission's transaction; the database
decides what is open (a ticket the finder proposes is checked there), so a rolled-back
submission or a ticket closed since can never appear as related. Confidential tickets
(complaints about officials) are neither indexed nor looked up.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from datetime import datetime, timedelta

from bot.core.errors import NotAllowed, NotFound
from bot.core.models import TEAM_NAMES, Ticket, TicketState
from bot.core.ports import Actor
from bot.render import texts
from bot.render.keyboards import Reply
from bot.storage.db import Repo
from bot.storage.related import Link, RelatedRepo
from bot.workflow.base import OPEN, Ground
from bot.workflow.outbound import to_coordinators
from bot.workflow.related import Match, Neighbours, RelatedFinder, Report

logger = logging.getLogger(__name__)

OPEN_STATES = tuple(s.value for s in OPEN)
# Forgotten and out-of-window entries are dropped from the lists after this many submissions.
PRUNE_EVERY = 2000


class Relating:
    """Finds, stores and shows related reports; alerts the coordinators to bursts."""

    def __init__(self, ground: Ground) -> None:
        self.ground = ground
        settings = ground.settings
        self._tokens = ground.classifier.tokens
        self._neighbours = Neighbours.of(settings.related_neighbours)
        # One finder per county: counties are apart (the same problem in another county is
        # not related, a town of the same name there is another place), and a lookup walks
        # its own county's open tickets only.
        self.finders: dict[str, RelatedFinder] = {}
        self._loaded = False
        self._since_prune = 0

    def finder_of(self, county: str) -> RelatedFinder:
        """The finder of a county's tickets (made when first needed)."""
        finder = self.finders.get(county)
        if finder is None:
            finder = self.finders[county] = RelatedFinder(self._tokens, self._neighbours)
        return finder

    @property
    def finder(self) -> RelatedFinder:
        """The finder of a one-county deployment (its county '')."""
        return self.finder_of("")

    def since(self, now: datetime) -> datetime:
        """The start of the window: RELATED_WINDOW_WORKDAYS working days back, midnight."""
        calendar = self.ground.calendar
        day = calendar.local(now).date()
        counted = 0
        while True:
            if calendar.is_workday(day):
                counted += 1
                if counted >= self.ground.settings.related_window_workdays:
                    break
            day -= timedelta(days=1)
        start = calendar.local(now).replace(
            year=day.year, month=day.month, day=day.day, hour=0, minute=0, second=0
        )
        return start.replace(microsecond=0)

    async def load(self) -> int:
        """Rebuild the finder from the database (at start). How many tickets it indexed."""
        async with self.ground.db.read() as repo:
            count = await self._load(repo)
        return count

    async def _load(self, repo: Repo) -> int:
        store = RelatedRepo(repo)
        since = self.since(self.ground.now())
        rows = await store.open_since(since, OPEN_STATES)
        links = await store.links_since(since)
        self.finders = {}
        for row in rows:
            report = Report(
                row.id,
                row.number,
                row.town,
                row.team,
                row.enterprise,
                row.submitted_at.timestamp(),
                row.words,
            )
            self.finder_of(row.county).add(report, row.text, links.get(row.id, ()))
        self._loaded = True
        logger.info("related reports: %d open tickets indexed since %s", len(rows), since)
        return len(rows)

    # -- at submission -----------------------------------------------------------------------

    async def submitted(self, repo: Repo, ticket: Ticket) -> list[Match]:
        """Inside the submission's transaction: find the ticket's related open tickets, store
        the links, index the ticket and alert the coordinators to a burst (once per burst)."""
        if ticket.confidential or not ticket.number or ticket.submitted_at is None:
            return []
        if not self._loaded:
            await self._load(repo)
        now = self.ground.now()
        store = RelatedRepo(repo)
        at = ticket.submitted_at.timestamp()
        since = self.since(now)
        finder = self.finder_of(ticket.county)
        matches = finder.find(
            ticket.text,
            town=ticket.town,
            team=ticket.predicted_team,
            at=at,
            words=ticket.domain_words,
            since=since.timestamp(),
            enterprise=ticket.enterprise_id,
            exclude=ticket.id,
            limit=50,
        )
        states = await store.states([m.report.id for m in matches])
        for match in matches:
            if states.get(match.report.id) not in OPEN_STATES:
                finder.discard(match.report.id)  # closed since: not a candidate again
        matches = [m for m in matches if states.get(m.report.id) in OPEN_STATES]
        for match in matches:
            await store.insert_link(
                ticket.id,
                match.report.id,
                match.score,
                match.place,
                match.shared,
                match.same_firm,
                now,
            )
        report = Report(
            ticket.id,
            ticket.number,
            ticket.town,
            ticket.predicted_team,
            ticket.enterprise_id,
            at,
            tuple(ticket.domain_words),
        )
        finder.add(report, ticket.text, [m.report.id for m in matches])
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            self._since_prune = 0
            for each in self.finders.values():
                each.prune(since.timestamp())
        if matches:
            logger.info(
                "ticket %s: %d related (%s)",
                ticket.number,
                len(matches),
                ", ".join(m.report.number for m in matches[:5]),
            )
            await self._burst(store, repo, ticket, matches, now)
        return matches

    async def _burst(
        self, store: RelatedRepo, repo: Repo, ticket: Ticket, matches: list[Match], now: datetime
    ) -> None:
        """RELATED_BURST_COUNT firms of one town within RELATED_BURST_MINUTES: one message to
        the coordinators; later related reports of the same burst join it silently."""
        town = ticket.town
        if not town:
            return
        settings = self.ground.settings
        start = now - timedelta(minutes=settings.related_burst_minutes)
        local = [m for m in matches if m.place == "same" and m.report.at >= start.timestamp()]
        if not local:
            return
        ids = [m.report.id for m in local]
        ongoing = await store.burst_of(town, ids, start)
        if ongoing is not None:
            await store.join_burst(ongoing, [ticket.id], now)
            return
        firms = {m.report.enterprise or -m.report.id for m in local}
        firms.add(ticket.enterprise_id or -ticket.id)
        if len(firms) < settings.related_burst_count:
            return
        words = Counter(w for m in local for w in m.report.words)
        words.update(ticket.domain_words)
        topic = (
            max(words, key=lambda w: (words[w], w in ticket.domain_words))
            if words
            else texts.RELATED_TOPIC_NONE
        )
        started = datetime.fromtimestamp(min(m.report.at for m in local), tz=now.tzinfo)
        await store.insert_burst(town, topic, started, now, [*ids, ticket.id])
        span = texts.span_of(settings.related_burst_minutes)
        earlier = sorted(local, key=lambda m: (m.report.at, m.report.id))
        numbers = "、".join([*(m.report.number for m in earlier), ticket.number or ""])
        text = texts.RELATED_BURST.format(
            town=town,
            span=span,
            count=len(firms),
            topic=topic,
            numbers=numbers,
            number=ticket.number,
        )
        await to_coordinators(repo, now, text, ticket)
        logger.info(
            "burst in %s: %d firms report %s (ticket %s)", town, len(firms), topic, ticket.number
        )

    # -- /related ----------------------------------------------------------------------------

    async def show(self, actor: Actor, number: str) -> list[Reply]:
        """/related <number>: the ticket's probably related tickets with the reasons, for the
        coordinators and the team that holds it."""
        async with self.ground.db.read() as repo:
            ticket = await self.ground._by_number(repo, number)
            if not self._loaded:
                await self._load(repo)
        if ticket.state == TicketState.DRAFT:
            raise NotFound(number)
        rights = self.ground.rights
        if not await rights.may_relate(actor, ticket):
            if await rights.may_view(actor, ticket):  # a co-handling team: it knows the ticket
                raise NotAllowed(texts.RELATED_NOT_ALLOWED)
            raise NotFound(number)  # firms and other teams: not even whether it exists
        now = self.ground.now()
        fresh: list[Match] = []
        if not ticket.confidential and ticket.submitted_at is not None:
            fresh = self.finder_of(ticket.county).find(
                ticket.text,
                town=ticket.town,
                team=ticket.predicted_team,
                at=ticket.submitted_at.timestamp(),
                words=ticket.domain_words,
                since=self.since(now).timestamp(),
                enterprise=ticket.enterprise_id,
                exclude=ticket.id,
                limit=50,
            )
        async with self.ground.db.read() as repo:
            store = RelatedRepo(repo)
            links = await store.links(ticket.id)
            others = {t.id: t for t in await repo.tickets.get_tickets([m.report.id for m in fresh])}
        rows = _merge(ticket, links, fresh, others)
        return [Reply(texts.render_related(ticket, rows))]


def _merge(
    ticket: Ticket, links: list[Link], fresh: list[Match], others: dict[int, Ticket]
) -> list[tuple[str, str, str, str | None, str, float]]:
    """Stored links and a fresh lookup, one line per ticket, most probable first."""
    rows: dict[int, tuple[str, str, str, str | None, str, float]] = {}
    for link in links:
        reason = texts.related_reason(link.place, ticket.town, link.words, link.same_firm)
        state = TicketState(link.state).label
        rows[link.other_id] = (
            link.number,
            state,
            link.town or "—",
            link.team if link.team in TEAM_NAMES else None,
            reason,
            _probability(link.score),
        )
    for match in fresh:
        other = others.get(match.report.id)
        if other is None or other.state == TicketState.DRAFT or match.report.id in rows:
            continue
        reason = texts.related_reason(match.place, ticket.town, match.shared, match.same_firm)
        rows[match.report.id] = (
            match.report.number,
            other.state.label,
            other.town or "—",
            other.team_id,
            reason,
            _probability(match.score),
        )
    return sorted(rows.values(), key=lambda r: -r[5])


def _probability(score: float) -> float:
    """The finder's log-odds as a probability."""
    return 1.0 / (1.0 + math.exp(-max(min(score, 30.0), -30.0)))
