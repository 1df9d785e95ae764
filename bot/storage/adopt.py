"""`yimi-bot adopt-county CODE`: a one-county deployment grows into a city's or a province's.
Everything it stored before COUNTIES_FILE was set has the county '' (firms, tickets, team
groups, team leads); this gives it to one county of the file, in one transaction. A team
group is left as it is when that county already has one bound for the team (the command says
so: `/unbind` one of them first)."""

from __future__ import annotations

from bot.storage.db import Database

_TEAM_TABLES = ("bindings", "team_leads")


async def adopt_county(db: Database, code: str) -> dict[str, int]:
    """Rows moved to county `code` per table, and `kept` for the groups left unassigned."""
    moved: dict[str, int] = {}
    async with db.tx() as repo:
        conn = repo.conn
        for table in ("enterprises", "tickets"):
            result = await conn.execute(f"UPDATE {table} SET county = ? WHERE county = ''", (code,))
            moved[table] = result.rowcount
        for table in _TEAM_TABLES:
            result = await conn.execute(
                f"UPDATE {table} SET county = ? WHERE county = '' AND team_id NOT IN "
                f"(SELECT team_id FROM {table} WHERE county = ?)",
                (code, code),
            )
            moved[table] = result.rowcount
        kept = await conn.execute_fetchall(
            "SELECT COUNT(*) FROM bindings WHERE county = '' AND team_id <> 'leaders'"
        )
        moved["kept"] = int(kept[0][0])
    return moved
