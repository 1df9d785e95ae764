"""The scheduled work runs in one process of several on a shared database: the one that holds
the lease (and polls). Two real applications on one PostgreSQL against the fake Bot API: only
the leader has the job queue's scheduled work; when it stops, the other takes the lease and the
schedule within seconds (its slots in the database say what has run, so nothing repeats)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import burst as bench

from bot.channels.telegram.app import build_application
from bot.channels.telegram.shared import serve
from tests.postgres import POSTGRES


def scheduled(app: object) -> bool:
    queue = getattr(app, "job_queue", None)
    return queue is not None and bool(queue.get_jobs_by_name("scheduled work"))


async def test_only_the_leader_runs_the_schedule_and_another_takes_it_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await POSTGRES.fresh_database()
    api = bench.world(0.0, False, [])
    await api.start()
    base = bench.settings_for(api, tmp_path / "unused.db")
    settings = base.model_copy(update={"database_url": SecretStr(url)})
    apps = [build_application(settings, shared=True) for _ in range(2)]
    stops = [asyncio.Event(), asyncio.Event()]
    runs = [
        # Two processes in one: each its own holder name (host:pid would be the same).
        asyncio.create_task(serve(app, settings, stop=stop, try_every=0.2, holder=f"test:{n}"))
        for n, (app, stop) in enumerate(zip(apps, stops, strict=True))
    ]
    try:
        for _ in range(200):
            if any(scheduled(app) for app in apps):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the other has tried for the lease meanwhile
        leading = [scheduled(app) for app in apps]
        assert leading.count(True) == 1, leading
        leader = leading.index(True)
        stops[leader].set()  # a clean stop gives the lease up
        await runs[leader]
        other = apps[1 - leader]
        for _ in range(100):
            if scheduled(other):
                break
            await asyncio.sleep(0.05)
        assert scheduled(other)
    finally:
        for stop in stops:
            stop.set()
        for run in runs:
            with contextlib.suppress(Exception):
                await run
        await api.stop()
