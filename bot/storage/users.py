"""Firms (enterprises), their users, the team groups' bindings and the teams' leads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.core.models import (
    Binding,
    Enterprise,
    User,
)
from bot.storage.rows import (
    Queries,
    to_db,
    ts,
    user_of,
)


class UserRepo(Queries):
    """Firms (enterprises), their users, the team groups' bindings and the teams' leads."""

    async def get_user(self, user_id: str) -> User | None:
        row = await self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        return user_of(row) if row else None

    async def upsert_user(
        self, user_id: str, display_name: str, username: str | None, now: datetime
    ) -> User:
        await self.conn.execute(
            "INSERT INTO users (id, display_name, username, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, "
            "username = excluded.username",
            (user_id, display_name, username, ts(now), ts(now)),
        )
        user = await self.get_user(user_id)
        assert user is not None
        return user

    async def update_user(self, user_id: str, now: datetime, **fields: Any) -> None:
        if "reg_data" in fields:
            fields["reg_data"] = json.dumps(fields["reg_data"], ensure_ascii=False)
        fields["updated_at"] = ts(now)
        sets = ", ".join(f"{name} = ?" for name in fields)
        params = [to_db(name, value) for name, value in fields.items()]
        await self.conn.execute(f"UPDATE users SET {sets} WHERE id = ?", (*params, user_id))

    async def get_enterprise(self, enterprise_id: int) -> Enterprise | None:
        row = await self._one("SELECT * FROM enterprises WHERE id = ?", (enterprise_id,))
        return Enterprise.model_validate(dict(row)) if row else None

    async def find_enterprise(
        self, name: str, credit_code: str | None, county: str = ""
    ) -> Enterprise | None:
        """The firm with this credit code (unique in the country), else the same name in the
        county."""
        if credit_code:
            row = await self._one("SELECT * FROM enterprises WHERE credit_code = ?", (credit_code,))
            if row:
                return Enterprise.model_validate(dict(row))
        row = await self._one(
            "SELECT * FROM enterprises WHERE name = ? AND county = ? ORDER BY id LIMIT 1",
            (name, county),
        )
        return Enterprise.model_validate(dict(row)) if row else None

    async def insert_enterprise(
        self,
        name: str,
        credit_code: str | None,
        town: str | None,
        now: datetime,
        county: str = "",
    ) -> int:
        return await self._insert(
            "INSERT INTO enterprises (name, credit_code, town, county, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (name, credit_code, town, county, ts(now)),
        )

    async def update_enterprise(self, enterprise_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{name} = ?" for name in fields)
        await self.conn.execute(
            f"UPDATE enterprises SET {sets} WHERE id = ?", (*fields.values(), enterprise_id)
        )

    async def get_binding(self, chat_id: str) -> Binding | None:
        row = await self._one("SELECT * FROM bindings WHERE chat_id = ?", (chat_id,))
        return Binding.model_validate(dict(row)) if row else None

    async def get_team_chat(self, team_id: str, county: str = "") -> str | None:
        row = await self._one(
            "SELECT chat_id FROM bindings WHERE team_id = ? AND county = ?", (team_id, county)
        )
        return str(row[0]) if row else None

    async def team_chats(self, team_id: str) -> list[tuple[str, str]]:
        """(county, chat) of every county's group bound to the team."""
        rows = await self._all(
            "SELECT county, chat_id FROM bindings WHERE team_id = ? ORDER BY county", (team_id,)
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    async def list_bindings(self, county: str | None = None) -> list[Binding]:
        """Every binding, or one county's."""
        if county is None:
            rows = await self._all("SELECT * FROM bindings ORDER BY county, team_id")
        else:
            rows = await self._all(
                "SELECT * FROM bindings WHERE county = ? ORDER BY team_id", (county,)
            )
        return [Binding.model_validate(dict(row)) for row in rows]

    async def bind(
        self,
        chat_id: str,
        team_id: str,
        title: str | None,
        by: str,
        now: datetime,
        county: str = "",
    ) -> None:
        await self.conn.execute(
            "DELETE FROM bindings WHERE (team_id = ? AND county = ?) OR chat_id = ?",
            (team_id, county, chat_id),
        )
        await self.conn.execute(
            "INSERT INTO bindings (chat_id, county, team_id, title, bound_by, bound_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (chat_id, county, team_id, title, by, ts(now)),
        )

    async def unbind(self, chat_id: str) -> Binding | None:
        binding = await self.get_binding(chat_id)
        await self.conn.execute("DELETE FROM bindings WHERE chat_id = ?", (chat_id,))
        return binding

    async def migrate_chat(self, old_chat_id: str, new_chat_id: str) -> None:
        await self.conn.execute(
            "UPDATE bindings SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
        )
        await self.conn.execute(
            "UPDATE outbox SET chat_id = ? WHERE chat_id = ? AND status != 'sent'",
            (new_chat_id, old_chat_id),
        )

    async def set_lead(
        self, team_id: str, user_id: str, name: str | None, now: datetime, county: str = ""
    ) -> None:
        await self.conn.execute(
            "INSERT INTO team_leads (county, team_id, user_id, name, set_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(county, team_id) DO UPDATE SET "
            "user_id = excluded.user_id, name = excluded.name, set_at = excluded.set_at",
            (county, team_id, user_id, name, ts(now)),
        )

    async def get_lead(self, team_id: str, county: str = "") -> tuple[str, str | None] | None:
        row = await self._one(
            "SELECT user_id, name FROM team_leads WHERE team_id = ? AND county = ?",
            (team_id, county),
        )
        return (str(row[0]), row[1]) if row else None
