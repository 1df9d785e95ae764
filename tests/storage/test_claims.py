"""Chats claimed by one process at a time on a shared PostgreSQL (bot.storage.claims): a claim
another connection holds is skipped, given up by a release or by the holder's session ending;
two delivery loops on one database send every row once, each chat in order."""

from __future__ import annotations

import asyncio

from bot.core.ports import SystemClock
from bot.delivery.outbox import Delivery
from bot.storage import claims
from bot.storage.db import Database
from tests.neutral.harness import RecordingSender
from tests.postgres import POSTGRES


async def test_a_claim_is_one_sessions_until_released_or_its_session_ends() -> None:
    url = await POSTGRES.fresh_database()
    first, second = await Database.connect(url), await Database.connect(url)
    try:
        async with first.read() as repo:
            assert await claims.claim(repo.conn, claims.OUTBOX, ["telegram:1", "telegram:2"]) == [
                "telegram:1",
                "telegram:2",
            ]
        async with second.read() as repo:
            got = await claims.claim(repo.conn, claims.OUTBOX, ["telegram:2", "telegram:3"])
            assert got == ["telegram:3"]
            # Another space (the inbox) is claimed apart from the outbox.
            assert await claims.claim(repo.conn, claims.INBOX, ["telegram:1"]) == ["telegram:1"]
        async with first.read() as repo:
            await claims.release(repo.conn, claims.OUTBOX, ["telegram:2"])
        async with second.read() as repo:
            assert await claims.claim(repo.conn, claims.OUTBOX, ["telegram:2"]) == ["telegram:2"]
            assert await claims.claim(repo.conn, claims.OUTBOX, ["telegram:1"]) == []
            # At most `most`, the first free ones in order; the others stay unlocked.
            assert await claims.claim(
                repo.conn, claims.OUTBOX, ["telegram:1", "telegram:4", "telegram:5"], 1
            ) == ["telegram:4"]
        async with first.read() as repo:
            assert await claims.claim(repo.conn, claims.OUTBOX, ["telegram:5"]) == ["telegram:5"]
        await first.close()  # its holder dies: the claim ends with its session
        async with second.read() as repo:
            assert await claims.claim(repo.conn, claims.OUTBOX, ["telegram:1"]) == ["telegram:1"]
    finally:
        await second.close()


class SlowSender(RecordingSender):
    """Takes a moment per message, so that two loops interleave; all share one log."""

    def __init__(self, log: list[tuple[str, str, str]], name: str) -> None:
        super().__init__(set())
        self.log, self.name = log, name

    async def send_text(
        self,
        chat_id: str,
        text: str,
        buttons: list[list[dict[str, str]]] | None,
        *,
        reply_to: str | None = None,
        force_reply: bool = False,
    ) -> str:
        await asyncio.sleep(0.003)
        self.log.append((self.name, chat_id, text))
        return await super().send_text(chat_id, text, buttons)


async def test_two_delivery_loops_send_each_row_once_and_each_chat_in_order() -> None:
    url = await POSTGRES.fresh_database()
    clock = SystemClock("Asia/Shanghai")
    dbs = [await Database.connect(url), await Database.connect(url)]
    log: list[tuple[str, str, str]] = []
    chats = [f"telegram:{n}" for n in range(1, 9)]
    try:
        now = clock.now()
        async with dbs[0].tx() as repo:
            for i in range(12):
                for chat in chats:
                    await repo.outbox.insert_outbox(
                        "message", {"text": f"{chat} #{i:02d}"}, now, chat_id=chat
                    )
        loops = [
            Delivery(db, {"telegram": SlowSender(log, f"p{k}")}, clock, poll=0.05)
            for k, db in enumerate(dbs)
        ]
        for loop in loops:
            loop.shared_chats = 3  # each claims a few chats at a time; the other the rest
        deadline = asyncio.get_running_loop().time() + 60
        while len(log) < 12 * len(chats) and asyncio.get_running_loop().time() < deadline:
            await asyncio.gather(*(loop.run_once() for loop in loops))
        async with dbs[1].read() as repo:
            counts = await repo.outbox.outbox_counts()
    finally:
        for db in dbs:
            await db.close()
    texts = [text for _, _, text in log]
    assert len(texts) == len(set(texts)) == 12 * len(chats)  # every row once
    for chat in chats:
        in_chat = [text for _, c, text in log if c == chat]
        assert in_chat == sorted(in_chat), in_chat  # each chat in order
    assert {name for name, _, _ in log} == {"p0", "p1"}  # both loops sent
    assert counts == {"sent": 12 * len(chats)}
