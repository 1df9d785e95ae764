"""Upgrading a database made by the previous release (schema 4, bare Telegram integer ids)."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from bot.storage.db import Database
from bot.workflow.handling import pending_action

NOW = "2026-11-27T09:00:00+08:00"


def release_4_database(path: Path) -> None:
    """A database as the previous release left it: migrations 1-4 and a claimed ticket."""
    conn = sqlite3.connect(path)
    for entry in sorted(resources.files("bot.storage.migrations").iterdir(), key=lambda e: e.name):
        if entry.name[:4].isdigit() and int(entry.name[:4]) <= 4:
            conn.executescript(entry.read_text(encoding="utf-8"))
    conn.execute("PRAGMA user_version = 4")
    conn.executescript(f"""
        INSERT INTO enterprises (id, name, town, created_at) VALUES (1, '宏远铸造厂', '城关镇', '{NOW}');
        INSERT INTO users (id, display_name, enterprise_id, contact_name, phone, private_started,
            created_at, updated_at) VALUES (1001, '张伟', 1, '张伟', '13812345678', 1, '{NOW}', '{NOW}');
        INSERT INTO users (id, display_name, is_staff, private_started, awaiting, created_at,
            updated_at) VALUES (2001, '王工', 1, 1, 'resolve:1:-1001', '{NOW}', '{NOW}');
        INSERT INTO bindings (chat_id, team_id, title, bound_by, bound_at)
            VALUES (-1001, 'tech_industry', '科技工信群', 9, '{NOW}');
        INSERT INTO team_leads (team_id, user_id, name, set_at) VALUES ('tech_industry', 2001, '王工', '{NOW}');
        INSERT INTO tickets (id, number, state, reporter_id, enterprise_id, text, team_id,
            created_at, submitted_at, claimed_by, claimed_by_name, claimed_at, updated_at)
            VALUES (1, 'YM-20261127-0001', 'in_progress', 1001, 1, '变压器跳闸', 'tech_industry',
            '{NOW}', '{NOW}', 2001, '王工', '{NOW}', '{NOW}');
        INSERT INTO ticket_events (ticket_id, actor_id, action, from_state, to_state, at)
            VALUES (1, 2001, 'claimed', 'pending_claim', 'in_progress', '{NOW}');
        INSERT INTO seen_messages (chat_id, message_id, ticket_id) VALUES (1001, 5, 1);
        INSERT INTO message_links (chat_id, message_id, ticket_id, purpose) VALUES (-1001, 77, 1, 'card');
        INSERT INTO outbox (chat_id, target, kind, ticket_id, payload, status, next_at, message_id,
            created_at) VALUES (-1001, 'team:tech_industry', 'card', 1, '{{}}', 'sent', '{NOW}', 77, '{NOW}');
        INSERT INTO outbox (chat_id, target, kind, ticket_id, payload, status, next_at, created_at)
            VALUES (NULL, 'user:2001', 'details', 1, '{{}}', 'waiting', '{NOW}', '{NOW}');
        INSERT INTO outbox (chat_id, target, kind, payload, status, next_at, created_at)
            VALUES (1001, 'chat:1001', 'message', '{{"text": "好"}}', 'pending', '{NOW}', '{NOW}');
        INSERT INTO audit_log (actor_id, action, at) VALUES (9, 'export', '{NOW}');
        INSERT INTO extensions (ticket_id, kind, workdays, reason, requested_by, created_at)
            VALUES (1, 'extension', 3, '等设备', 2001, '{NOW}');
    """)
    conn.commit()
    conn.close()


async def test_an_upgraded_database_keeps_every_row_with_qualified_ids(tmp_path: Path) -> None:
    path = tmp_path / "yimi.db"
    release_4_database(path)
    db = await Database.open(path)
    try:
        async with db.read() as repo:
            firm = await repo.users.get_user("telegram:1001")
            member = await repo.users.get_user("telegram:2001")
            ticket = await repo.tickets.get_ticket(1)
            binding = await repo.users.get_binding("telegram:-1001")
            lead = await repo.users.get_lead("tech_industry")
            events = await repo.tickets.events(1)
            linked = await repo.tickets.linked_ticket("telegram:-1001", "77")
            cards = await repo.tickets.card_messages(1)
            waiting = await repo.outbox.waiting_for_target("user:telegram:2001")
            extension = await repo.followup.get_extension(1)
        assert firm is not None and firm.enterprise_id == 1 and firm.phone == "13812345678"
        assert member is not None and member.is_staff
        assert pending_action(member, "telegram:-1001") == ("resolve", 1)
        assert ticket is not None and ticket.reporter_id == "telegram:1001"
        assert ticket.claimed_by == "telegram:2001" and ticket.enterprise_name == "宏远铸造厂"
        assert binding is not None and binding.team_id == "tech_industry"
        assert lead == ("telegram:2001", "王工")
        assert [(e.actor_id, e.action) for e in events] == [("telegram:2001", "claimed")]
        assert linked == (1, "card")
        assert cards == [("telegram:-1001", "77", "card")]
        assert len(waiting) == 1
        assert extension is not None and extension["requested_by"] == "telegram:2001"
    finally:
        await db.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 5
        targets = {r[0] for r in conn.execute("SELECT target FROM outbox")}
        assert targets == {"team:tech_industry", "user:telegram:2001", "chat:telegram:1001"}
        assert conn.execute("SELECT chat_id, message_id FROM seen_messages").fetchall() == [
            ("telegram:1001", "5")
        ]
        assert conn.execute("SELECT actor_id FROM audit_log").fetchall() == [("telegram:9",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # The event log is still append-only after its table was rebuilt.
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE ticket_events SET action = 'x'")
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"tickets_stats", "tickets_one_draft", "outbox_due", "message_links_ticket"} <= names
    finally:
        conn.close()
