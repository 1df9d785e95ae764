"""The scheduled work on the clock: the follow-up tick, and each daily job once per slot.

A daily job (the morning overdue list, the Friday digest, the backup) has one slot a day (or a
week) at its time. Each tick runs the jobs whose slot of today has come and is not yet done,
and stores the slot as done in the audit log: so a job fires once a slot across restarts, and a
restart over a job's time (down at 08:40, up at 09:10) sends it late instead of never. A slot is
caught up on its own day only (yesterday's morning list is stale), and not when a database
first sees the job: a new installation starts at the next slot, not with a digest at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import time

from bot.config import Settings
from bot.services import Services, run_daily_backup

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DailyJob:
    """One daily (or weekly) job: its name in the audit log, its time and its work."""

    name: str
    at: time
    work: Callable[[], Awaitable[object]]
    weekday: int | None = None  # Monday = 0; None: every day


def daily_jobs(services: Services, settings: Settings) -> list[DailyJob]:
    """The configured daily jobs (the backup only with BACKUP_DIR)."""
    jobs = [
        DailyJob("morning", settings.morning_overdue_time, services.followup.send_overdue_report),
        DailyJob(
            "digest",
            settings.digest_time,
            services.reports.send_weekly_digest,
            settings.digest_weekday,
        ),
    ]
    if settings.backup_dir is not None:
        jobs.append(DailyJob("backup", settings.backup_time, lambda: run_daily_backup(services)))
    return jobs


class Schedule:
    """Runs what is due at the clock's time; `tick` is called about once a minute."""

    def __init__(self, services: Services, settings: Settings | None = None) -> None:
        self.services = services
        self.jobs = daily_jobs(services, settings or services.settings)
        self._started = False

    async def _first_tick(self) -> None:
        """A job this database has never run starts at its next slot: today's is marked done
        if its time has passed (a new installation sends no digest the minute it starts)."""
        self._started = True
        now = self.services.workflow.now()
        for job in self.jobs:
            async with self.services.db.tx() as repo:
                if await repo.followup.job_slots(job.name):
                    continue
                past = now.time() >= job.at and job.weekday in (None, now.weekday())
                slot = now.date().isoformat() if past else "start"
                await repo.followup.insert_audit(
                    None, "job", {"job": job.name, "slot": slot, "ran": 0}, now
                )

    async def tick(self) -> list[str]:
        """The follow-up tick, then every daily job due now; the names of the jobs run."""
        services = self.services
        if await services.followup.tick():
            services.delivery.wake()
        if not self._started:
            await self._first_tick()
        ran = []
        for job in self.jobs:
            if await self._run_if_due(job):
                ran.append(job.name)
        return ran

    async def _run_if_due(self, job: DailyJob) -> bool:
        now = self.services.workflow.now()
        if now.time() < job.at or (job.weekday is not None and now.weekday() != job.weekday):
            return False
        slot = now.date().isoformat()
        async with self.services.db.read() as repo:
            done = await repo.followup.job_slots(job.name)
        if slot in done:
            return False
        # Run, then record: a run that raised is tried again at the next tick.
        await job.work()
        async with self.services.db.tx() as repo:
            await repo.followup.insert_audit(
                None, "job", {"job": job.name, "slot": slot, "ran": 1}, now
            )
        self.services.delivery.wake()
        logger.info("scheduled %s ran for %s", job.name, slot)
        return True


async def run_jobs(services: Services) -> None:
    """The scheduled work without PTB's job queue (a deployment with no Telegram): a tick each
    minute. Runs until cancelled."""
    schedule = Schedule(services)
    while True:
        try:
            await schedule.tick()
        except Exception:  # one failed tick (storage, a remote error) must not end the jobs
            logger.exception("scheduled work failed; next tick in a minute")
        await asyncio.sleep(60)
