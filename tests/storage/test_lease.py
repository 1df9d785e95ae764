"""The lead among processes: a leader that cannot renew — for any reason — exits before its
lease could have lapsed, and a leader whose lease another process took exits at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.storage import lease
from bot.storage.db import Database
from tests.postgres import POSTGRES


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Exited(code)

    monkeypatch.setattr(lease.os, "_exit", fake_exit)
    monkeypatch.setattr(lease, "RENEW_SECONDS", 0.05)
    monkeypatch.setattr(lease, "LEASE_SECONDS", 0.4)
    return codes


async def run_until_exit(leader: lease.Leadership, seconds: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    leader.start()
    assert leader._task is not None
    with pytest.raises(Exited):
        await asyncio.wait_for(leader._task, seconds)
    return loop.time() - started


async def test_an_unexpected_error_while_renewing_ends_the_lead(
    exits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await Database.connect(await POSTGRES.fresh_database())
    try:
        async with db.tx() as repo:
            assert await lease.take(repo, "a:1")
        renewals = 0

        async def failing(repo: Any, holder: str, seconds: float = 0) -> bool:
            nonlocal renewals
            renewals += 1
            if renewals > 2:
                raise ValueError("lock_timeout")  # not a storage error
            return True

        monkeypatch.setattr(lease, "take", failing)
        took = await run_until_exit(lease.Leadership(db, "a:1"))
        assert exits == [75] and renewals > 2
        assert took < 0.05 * 2 + 0.4  # before the lease taken at the last good renewal lapsed
    finally:
        await db.close()


async def test_a_renewal_stuck_behind_a_slow_statement_ends_the_lead(
    exits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await Database.connect(await POSTGRES.fresh_database())
    try:

        async def stuck(repo: Any, holder: str, seconds: float = 0) -> bool:
            await asyncio.sleep(10)
            return True

        monkeypatch.setattr(lease, "take", stuck)
        await run_until_exit(lease.Leadership(db, "a:1"))
        assert exits == [75]
    finally:
        await db.close()


async def test_a_lease_taken_over_by_another_process_ends_the_lead(exits: list[int]) -> None:
    db = await Database.connect(await POSTGRES.fresh_database())
    try:
        async with db.tx() as repo:
            assert await lease.take(repo, "a:1", 0.4)
            assert not await lease.take(repo, "b:2", 0.4)  # a leads: b waits
        await asyncio.sleep(0.45)  # a's lease lapses (its process paused)
        async with db.tx() as repo:
            assert await lease.take(repo, "b:2", 0.4)
        await run_until_exit(lease.Leadership(db, "a:1"))
        assert exits == [75]
    finally:
        await db.close()


async def test_the_lease_of_a_holder_whose_session_ended_is_free_at_once() -> None:
    """A dead holder's connection closes with it: the lease (15 s) is taken at once, while a
    live holder's is not; one taken for a connection that closes by design (wait_to_lead's,
    bound=False) waits for its time."""
    url = await POSTGRES.fresh_database()
    holder, other = await Database.connect(url), await Database.connect(url)
    try:
        async with holder.tx() as repo:
            assert await lease.take(repo, "a:1")
        async with other.tx() as repo:
            assert not await lease.take(repo, "b:2")  # alive: its lease holds
        await holder.close()  # it dies
        for _ in range(50):  # the server notices the closed connection within moments
            async with other.tx() as repo:
                if await lease.take(repo, "b:2"):
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the dead holder's lease was not free")
        unbound = await Database.connect(url)
        async with unbound.tx() as repo:
            await repo.conn.execute("DELETE FROM leases")
            assert await lease.take(repo, "c:3", bound=False)
        await unbound.close()
        await asyncio.sleep(0.3)
        async with other.tx() as repo:
            assert not await lease.take(repo, "b:2")  # not bound to a session: its time runs
    finally:
        await other.close()


async def test_a_leader_whose_connection_was_made_again_exits(exits: list[int]) -> None:
    """The server ended its session (and with it its claims): the lease may be another's."""
    db = await Database.connect(await POSTGRES.fresh_database())
    try:
        async with db.tx() as repo:
            assert await lease.take(repo, "a:1")
        leader = lease.Leadership(db, "a:1")
        raw: Any = db._conn
        raw.raw.terminate()  # as a dropped connection: the next use connects again
        await run_until_exit(leader)
        assert exits == [75]
    finally:
        await db.close()
