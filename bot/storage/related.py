"""The related-reports tables (issue 13): links found at submission and the bursts alerted.

A repository of its own over a `Repo`'s connection (one transaction with the workflow's writes),
like bot/storage/wecom.py, so the shared `Repo` does not grow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.storage.db import Repo, ts


@dataclass(frozen=True, slots=True)
class IndexRow:
    """What the finder indexes of an open, submitted ticket."""

    id: int
    number: str
    town: str | None
    team: str | None
    enterprise: int | None
    submitted_at: datetime
    text: str
    words: tuple[str, ...]
    county: str = ""


@dataclass(frozen=True, slots=True)
class Link:
    """A stored "probably the same problem" link, seen from one of its two tickets."""

    other_id: int
    number: str
    state: str
    team: str | None
    town: str | None
    score: float
    place: str
    words: tuple[str, ...]
    same_firm: bool


class RelatedRepo:
    """Queries of the related-reports tables on one `Repo`'s connection."""

    def __init__(self, repo: Repo) -> None:
        self.conn = repo.conn

    async def open_since(self, since: datetime, states: tuple[str, ...]) -> list[IndexRow]:
        """Open tickets submitted since `since` (not confidential), in submission order."""
        marks = ", ".join("?" * len(states))
        rows = await self.conn.execute_fetchall(
            "SELECT t.id, t.number, e.town, t.predicted_team, t.enterprise_id, t.submitted_at, "
            "t.text, t.domain_words, t.county FROM tickets t "
            "LEFT JOIN enterprises e ON e.id = t.enterprise_id "
            f"WHERE t.state IN ({marks}) AND t.submitted_at >= ? AND t.confidential = 0 "
            "AND t.number IS NOT NULL ORDER BY t.submitted_at, t.id",
            (*states, ts(since)),
        )
        return [
            IndexRow(
                id=int(r[0]),
                number=str(r[1]),
                town=r[2],
                team=r[3],
                enterprise=r[4],
                submitted_at=datetime.fromisoformat(r[5]),
                text=r[6] or "",
                words=tuple(json.loads(r[7] or "[]")),
                county=str(r[8] or ""),
            )
            for r in rows
        ]

    async def links_since(self, since: datetime) -> dict[int, list[int]]:
        """ticket id → the earlier tickets it was linked to, for tickets submitted since."""
        rows = await self.conn.execute_fetchall(
            "SELECT l.ticket_id, l.related_id FROM related_links l "
            "JOIN tickets t ON t.id = l.ticket_id WHERE t.submitted_at >= ?",
            (ts(since),),
        )
        out: dict[int, list[int]] = {}
        for r in rows:
            out.setdefault(int(r[0]), []).append(int(r[1]))
        return out

    async def states(self, ticket_ids: list[int]) -> dict[int, str]:
        """The current state of each ticket."""
        if not ticket_ids:
            return {}
        marks = ", ".join("?" * len(ticket_ids))
        rows = await self.conn.execute_fetchall(
            f"SELECT id, state FROM tickets WHERE id IN ({marks})", ticket_ids
        )
        return {int(r[0]): str(r[1]) for r in rows}

    async def insert_link(
        self,
        ticket_id: int,
        related_id: int,
        score: float,
        place: str,
        words: tuple[str, ...],
        same_firm: bool,
        now: datetime,
    ) -> None:
        """Store one link (new ticket → earlier ticket)."""
        await self.conn.execute(
            "INSERT INTO related_links "
            "(ticket_id, related_id, score, place, words, same_firm, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ticket_id, related_id) DO UPDATE SET "
            "score = excluded.score, place = excluded.place, words = excluded.words, "
            "same_firm = excluded.same_firm, created_at = excluded.created_at",
            (
                ticket_id,
                related_id,
                score,
                place,
                json.dumps(list(words), ensure_ascii=False),
                int(same_firm),
                ts(now),
            ),
        )

    async def links(self, ticket_id: int, *, both: bool = True) -> list[Link]:
        """The ticket's links, best first: to the earlier tickets found at its submission and
        (with `both`) from the later tickets that found it."""
        sql = (
            "SELECT l.related_id, t.number, t.state, t.team_id, e.town, l.score, l.place, "
            "l.words, l.same_firm FROM related_links l JOIN tickets t ON t.id = l.related_id "
            "LEFT JOIN enterprises e ON e.id = t.enterprise_id WHERE l.ticket_id = ?"
        )
        params: list[int] = [ticket_id]
        if both:
            sql += (
                " UNION ALL SELECT l.ticket_id, t.number, t.state, t.team_id, e.town, l.score, "
                "l.place, l.words, l.same_firm FROM related_links l "
                "JOIN tickets t ON t.id = l.ticket_id "
                "LEFT JOIN enterprises e ON e.id = t.enterprise_id WHERE l.related_id = ?"
            )
            params.append(ticket_id)
        rows = await self.conn.execute_fetchall(f"{sql} ORDER BY 6 DESC, 1", params)
        return [
            Link(
                other_id=int(r[0]),
                number=str(r[1]),
                state=str(r[2]),
                team=r[3],
                town=r[4],
                score=float(r[5]),
                place=str(r[6]),
                words=tuple(json.loads(r[7] or "[]")),
                same_firm=bool(r[8]),
            )
            for r in rows
        ]

    async def numbers_for(self, ticket_ids: list[int]) -> dict[int, list[str]]:
        """ticket id → the numbers of the tickets found related at its submission, best first."""
        if not ticket_ids:
            return {}
        marks = ", ".join("?" * len(ticket_ids))
        rows = await self.conn.execute_fetchall(
            "SELECT l.ticket_id, t.number FROM related_links l "
            f"JOIN tickets t ON t.id = l.related_id WHERE l.ticket_id IN ({marks}) "
            "ORDER BY l.ticket_id, l.score DESC, l.related_id",
            ticket_ids,
        )
        out: dict[int, list[str]] = {}
        for r in rows:
            out.setdefault(int(r[0]), []).append(str(r[1]))
        return out

    # -- bursts ------------------------------------------------------------------------------

    async def burst_of(self, town: str, ticket_ids: list[int], since: datetime) -> int | None:
        """A burst in `town` still going on (a member since `since`) that one of the tickets
        belongs to."""
        if not ticket_ids:
            return None
        marks = ", ".join("?" * len(ticket_ids))
        row = await self.conn.execute_fetchall(
            "SELECT b.id FROM related_bursts b JOIN related_burst_members m ON m.burst_id = b.id "
            f"WHERE b.town = ? AND b.last_at >= ? AND m.ticket_id IN ({marks}) "
            "ORDER BY b.id DESC LIMIT 1",
            (town, ts(since), *ticket_ids),
        )
        rows = list(row)
        return int(rows[0][0]) if rows else None

    async def insert_burst(
        self, town: str, topic: str, started_at: datetime, now: datetime, members: list[int]
    ) -> int:
        """A new burst, alerted now, with its members."""
        burst_id = await self.conn.execute_insert(
            "INSERT INTO related_bursts (town, topic, started_at, last_at, alerted_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (town, topic, ts(started_at), ts(now), ts(now)),
        )
        await self.join_burst(burst_id, members, now)
        return burst_id

    async def join_burst(self, burst_id: int, members: list[int], now: datetime) -> None:
        """Tickets join a burst (no new alert)."""
        await self.conn.executemany(
            "INSERT INTO related_burst_members (burst_id, ticket_id) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            [(burst_id, m) for m in members],
        )
        await self.conn.execute(
            "UPDATE related_bursts SET last_at = ? WHERE id = ?", (ts(now), burst_id)
        )

    async def burst_size(self, burst_id: int) -> int:
        """How many tickets a burst has."""
        rows = list(
            await self.conn.execute_fetchall(
                "SELECT COUNT(*) FROM related_burst_members WHERE burst_id = ?", (burst_id,)
            )
        )
        return int(rows[0][0])
