"""The scheduled work on the test clock: each daily job once per slot, across restarts."""

from __future__ import annotations

from datetime import datetime

import pytest
from telegram.ext import Job

from bot.channels.telegram.app import schedule_jobs
from tests.conftest import COORD_GROUP, World
from tests.fakes import TZ, FakeClock
from tests.soak import VirtualJobs

# Once per slot on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

MORNING = "超期工单"


def lists_in(world: World) -> int:
    return sum(1 for m in world.telegram.chat(COORD_GROUP) if MORNING in m.text)


def digests_in(world: World) -> int:
    return sum(1 for m in world.telegram.chat(COORD_GROUP) if "周报" in m.text)


async def started(world: World) -> VirtualJobs:
    """The bot's own job queue, run on the test clock."""
    assert world.app is not None
    schedule_jobs(world.app, world.settings, world.services)
    return VirtualJobs(world.app, world.clock)  # type: ignore[arg-type]


async def run_until(world: World, jobs: VirtualJobs, clock: FakeClock, end: datetime) -> None:
    while clock.now() < end:
        clock.advance(minutes=5)
        await jobs.run_due()
        await world.flush()


async def test_a_restart_over_the_morning_list_sends_it_late_once(
    world: World, clock: FakeClock
) -> None:
    await world.bind_all()
    clock.current = datetime(2026, 11, 30, 7, 0, tzinfo=TZ)  # Monday before the list
    jobs = await started(world)
    await run_until(world, jobs, clock, datetime(2026, 11, 30, 8, 30, tzinfo=TZ))
    await world.restart()  # down 08:30, up 09:10: the list's time (08:40) passes meanwhile
    clock.current = datetime(2026, 11, 30, 9, 10, tzinfo=TZ)
    jobs = await started(world)
    await run_until(world, jobs, clock, datetime(2026, 11, 30, 12, 0, tzinfo=TZ))
    assert lists_in(world) == 1  # sent at 09:15, not skipped
    await world.restart()  # and a second restart the same day does not send it again
    jobs = await started(world)
    await run_until(world, jobs, clock, datetime(2026, 12, 1, 9, 0, tzinfo=TZ))
    assert lists_in(world) == 2  # Tuesday's


async def test_the_digest_fires_once_on_friday_and_not_again_after_a_restart(
    world: World, clock: FakeClock
) -> None:
    await world.bind_all()
    clock.current = datetime(2026, 12, 4, 15, 0, tzinfo=TZ)  # a Friday, before 16:00
    jobs = await started(world)
    await run_until(world, jobs, clock, datetime(2026, 12, 4, 15, 55, tzinfo=TZ))
    await world.restart()  # down 15:55, up 16:20
    clock.current = datetime(2026, 12, 4, 16, 20, tzinfo=TZ)
    jobs = await started(world)
    await run_until(world, jobs, clock, datetime(2026, 12, 4, 17, 0, tzinfo=TZ))
    assert digests_in(world) == 1
    await world.restart()
    jobs = await started(world)
    await run_until(world, jobs, clock, datetime(2026, 12, 5, 18, 0, tzinfo=TZ))
    assert digests_in(world) == 1


async def test_a_new_installation_starts_with_the_next_slot(world: World, clock: FakeClock) -> None:
    await world.bind_all()
    clock.current = datetime(2026, 12, 4, 17, 0, tzinfo=TZ)  # first start, Friday after 16:00
    jobs = await started(world)
    await run_until(world, jobs, clock, datetime(2026, 12, 7, 8, 30, tzinfo=TZ))
    assert digests_in(world) == 0 and lists_in(world) == 0  # none at once, none on the weekend
    await run_until(world, jobs, clock, datetime(2026, 12, 7, 9, 0, tzinfo=TZ))
    assert lists_in(world) == 1


def test_the_job_queue_holds_one_repeating_job(world: World) -> None:
    assert world.app is not None and world.app.job_queue is not None
    schedule_jobs(world.app, world.settings, world.services)
    jobs: list[Job] = list(world.app.job_queue.jobs())  # type: ignore[type-arg]
    assert [j.name for j in jobs] == ["scheduled work"]
