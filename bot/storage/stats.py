"""The Friday metrics as aggregates (see bot.reporting.stats for the definitions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.models import Ticket
from bot.storage.rows import (
    PERIOD_GROUPS,
    PERIOD_MERGED,
    TICKET_SELECT,
    Queries,
    by_county,
    in_county,
    tickets_of,
    ts,
)


class StatsRepo(Queries):
    """The Friday metrics as aggregates (see bot.reporting.stats for the definitions)."""

    async def period_groups(
        self, start: datetime, end: datetime, as_of: datetime, county: str | None = None
    ) -> list[dict[str, Any]]:
        """Counts per (team, state, rating, close type) for tickets submitted in [start, end)
        (of one county, or all), merged ones apart: a group per team with ``merged`` set and
        only ``n``."""
        params = {"start": ts(start), "end": ts(end), "as_of": ts(as_of)}
        if county is not None:
            params["county"] = county
        rows = await self._all(in_county(PERIOD_GROUPS, county), params)
        merged = await self._all(in_county(PERIOD_MERGED, county), params)
        return [dict(row) for row in rows] + [_merged_group(row) for row in merged]

    async def period_groups_by_county(
        self, start: datetime, end: datetime, as_of: datetime
    ) -> dict[str, list[dict[str, Any]]]:
        """`period_groups` of every county at once, by county code."""
        params = {"start": ts(start), "end": ts(end), "as_of": ts(as_of)}
        out: dict[str, list[dict[str, Any]]] = {}
        for row in await self._all(by_county(PERIOD_GROUPS), params):
            group = dict(row)
            out.setdefault(str(group.pop("county")), []).append(group)
        merged_sql = PERIOD_MERGED.replace("SELECT ", "SELECT county, ", 1).replace(
            "GROUP BY 1", "GROUP BY 1, 2", 1
        )
        for row in await self._all(merged_sql, params):
            out.setdefault(str(row["county"]), []).append(_merged_group(row))
        return out

    async def period_breakdown(
        self, start: datetime, end: datetime, county: str | None = None, *, by_county: bool = False
    ) -> list[tuple[str, str, str, int]]:
        """(team, domain, town, count) of valid tickets submitted in [start, end); with
        `by_county` the town is '<county>|<town>' (two counties' 城关镇 are two places)."""
        town = "COALESCE(e.town, '未填写')"
        rows = await self._all(
            "SELECT COALESCE(t.team_id, 'general'), "
            "COALESCE(t.team_id, t.predicted_team, 'general'), "
            + (f"t.county || '|' || {town}, " if by_county else f"{town}, ")
            + "COUNT(*) FROM tickets t LEFT JOIN enterprises e ON e.id = t.enterprise_id "
            "WHERE t.submitted_at >= ? AND t.submitted_at < ? "
            "AND t.state NOT IN ('draft', 'cancelled') AND t.merged_into IS NULL "
            + ("AND t.county = ? " if county is not None else "")
            + "GROUP BY 1, 2, 3",
            (ts(start), ts(end), *([county] if county is not None else [])),
        )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    async def open_state_counts(self, county: str | None = None) -> list[tuple[str, str, int]]:
        """(team, state, count) of open tickets now (of one county, or all)."""
        rows = await self._all(
            "SELECT COALESCE(team_id, 'general'), state, COUNT(*) FROM tickets "
            "WHERE state IN ('pending_dispatch', 'pending_claim', 'in_progress', 'long_term', "
            "'pending_confirm') AND merged_into IS NULL "
            + ("AND county = ? " if county is not None else "")
            + "GROUP BY 1, 2",
            [county] if county is not None else [],
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def overdue_by_county(self, now: datetime) -> dict[str, int]:
        """How many active tickets are overdue now, per county."""
        rows = await self._all(
            "SELECT county, COUNT(*) FROM tickets "
            "WHERE state IN ('pending_dispatch', 'pending_claim', 'in_progress') "
            "AND due_at <= ? GROUP BY 1",
            (ts(now),),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    async def overdue_open(
        self,
        now: datetime,
        team_id: str | None = None,
        limit: int = 100,
        county: str | None = None,
    ) -> tuple[list[Ticket], int]:
        """The most overdue active tickets (at most `limit`) and how many there are in all."""
        where = (
            "WHERE t.state IN ('pending_dispatch', 'pending_claim', 'in_progress') "
            "AND t.due_at <= ?"
            + (" AND t.team_id = ?" if team_id else "")
            + (" AND t.county = ?" if county is not None else "")
        )
        params: list[Any] = [
            ts(now),
            *([team_id] if team_id else []),
            *([county] if county is not None else []),
        ]
        rows = await self._all(
            TICKET_SELECT + where + " ORDER BY t.due_at LIMIT ?", [*params, limit]
        )
        total = await self._one("SELECT COUNT(*) FROM tickets t " + where, params)
        return tickets_of(rows), int(total[0]) if total else 0

    async def ticket_counts(self) -> list[tuple[str, str, int]]:
        """(team, state, count) of every ticket but drafts."""
        rows = await self._all(
            "SELECT COALESCE(team_id, 'general'), state, COUNT(*) FROM tickets "
            "WHERE state != 'draft' GROUP BY 1, 2"
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def _merged_group(row: Any) -> dict[str, Any]:
    """A PERIOD_MERGED row as a group of `period_groups`."""
    return {"team": row["team"], "state": "merged", "satisfaction": None, "close_type": None} | {
        "n": row["n"],
        "merged": 1,
    }
