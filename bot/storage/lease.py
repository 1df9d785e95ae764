"""The lead among several bot processes on one PostgreSQL database.

One process leads: it polls Telegram (only one process may call getUpdates), serves WeCom's
callbacks, delivers the outbox and runs the scheduled work, exactly as a single process does;
so every rule that holds for one process (each chat in order, each job once per slot, each
limit) holds for the deployment. The others stand by and take over within `LEASE_SECONDS` of
the leader's death. A leader that cannot renew its lease in time exits (a supervisor restarts
it as a standby) rather than risk two leaders. On SQLite there is one process (the file's
lock, bot.storage.backup.RunLock) and no lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from bot.storage.db import Database, Repo
from bot.storage.health import STORAGE_ERRORS

logger = logging.getLogger(__name__)

LEASE = "leader"
LEADING: str | None = None  # this process's holder name once wait_to_lead returned
LEASE_SECONDS = 15.0
RENEW_SECONDS = 3.0
# The lease a process takes when it starts to lead covers its start-up (connecting, migrating,
# loading the related-reports index) until its renewals begin; a leader that dies while it
# starts is replaced that much later.
STARTING_SECONDS = 120.0


def holder_name() -> str:
    """This process among the others: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


# The database's clock, not each process's: machines whose clocks differ (a VM's jump at boot)
# cannot take a healthy leader's lease early or keep a dead one's late. UTC text, as stored.
_CLOCK = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS')"
_UNTIL = (
    "to_char((clock_timestamp() + make_interval(secs => ?)) AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS')"
)


async def take(
    repo: Repo, holder: str, seconds: float = LEASE_SECONDS, *, bound: bool = True
) -> bool:
    """Take or renew the lease for `seconds`; False while another holder's lease runs.
    `bound`: the lease is also free once this connection's session ends (not for a
    connection that closes while its process goes on to lead on another, wait_to_lead).
    (PostgreSQL only: several processes share a database there.)"""
    # Also free once the holder's session has ended (a dead holder's connection closed): the
    # lease is taken within a second of a kill instead of when it lapses. A holder cut off
    # from the server without its session ending still times out as before.
    pid = "pg_backend_pid()" if bound else "NULL"
    changed = await repo.conn.execute(
        f"INSERT INTO leases (name, holder, until, pid) VALUES (?, ?, {_UNTIL}, {pid}) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until, "
        f"pid = excluded.pid WHERE leases.until < {_CLOCK} OR leases.holder = excluded.holder "
        "OR (leases.pid IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = leases.pid))",
        (LEASE, holder, float(seconds)),
    )
    return changed.rowcount == 1


async def release(repo: Repo, holder: str) -> None:
    """Give the lease up (a clean stop): a standby takes over at once, not after it lapses."""
    await repo.conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (LEASE, holder))


async def wait_to_lead(url: str, holder: str, *, poll: float = 1.0) -> None:
    """Return once this process holds the lease (at once when no other process leads)."""
    db = await Database.connect(url)
    told = False
    try:
        while True:
            try:
                async with db.tx() as repo:
                    if await take(repo, holder, STARTING_SECONDS, bound=False):
                        global LEADING
                        LEADING = holder
                        return
            except STORAGE_ERRORS as exc:
                logger.warning("lease: database unreachable (%s); trying again", exc)
            if not told:
                told = True
                print(
                    "另一个 yimi-bot 进程正在主持（轮询、发送、定时任务），本进程待命，"
                    f"它停止后 {LEASE_SECONDS:.0f} 秒内接替 / another process leads: standing by",
                    flush=True,
                )
            await asyncio.sleep(poll)
    finally:
        await db.close()


class Leadership:
    """Renews the lease while the process leads; exits the process when it is lost."""

    def __init__(self, db: Database, holder: str) -> None:
        self.db = db
        self.holder = holder
        self.session = db.session  # the lease names this session: another one is not it
        self._task: asyncio.Task[None] | None = None

    def holds(self) -> bool:
        """Whether the lease can still be this process's: its connection is the session that
        took it (a connection made again has lost it to whoever saw the session end)."""
        return self.db.session == self.session

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._renew(), name="lease")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):  # cancelled, or it ended on an error
                await self._task
            self._task = None
            with contextlib.suppress(*STORAGE_ERRORS):  # else it lapses by itself
                async with self.db.tx() as repo:
                    await release(repo, self.holder)

    async def _renew(self) -> None:
        """Renew every RENEW_SECONDS. Exit before the lease could have lapsed: when no renewal
        has succeeded within LEASE_SECONDS - RENEW_SECONDS of the last good one, whatever the
        reason (an error of any kind, a renewal stuck behind a slow statement), so that a
        standby never leads beside this process."""
        loop = asyncio.get_running_loop()
        valid_until = loop.time() + LEASE_SECONDS - RENEW_SECONDS  # from the take at start
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            attempt = loop.time()
            error = "its lease lapsed"
            held: bool | None = None
            try:
                held = await asyncio.wait_for(self._take(), timeout=RENEW_SECONDS)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                error = "renewing took longer than its time"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            if held and self.holds():
                valid_until = attempt + LEASE_SECONDS - RENEW_SECONDS
                continue
            if not self.holds():
                held, error = None, "its database session ended (the connection was made again)"
            if held is False or not self.holds() or loop.time() >= valid_until - RENEW_SECONDS:
                logger.critical(
                    "lost the lead (%s): exiting so that only one process polls and sends; "
                    "a supervisor restarts this one as a standby",
                    "another process holds the lease" if held is False else error,
                )
                os._exit(75)

    async def _take(self) -> bool:
        async with self.db.tx(urgent=True) as repo:  # before every transaction still waiting
            return await take(repo, self.holder)
