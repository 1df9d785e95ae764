"""The sending limits' budget in the database (bot.storage.budget): two processes reserving
from one bucket together get the waits of one limit, not one each."""

from __future__ import annotations

from itertools import pairwise

from bot.storage.budget import Bucket, SharedBudget
from tests.postgres import POSTGRES


async def test_two_processes_share_one_bucket() -> None:
    url = await POSTGRES.fresh_database()
    first, second = await SharedBudget.open(url), await SharedBudget.open(url)
    bucket = Bucket("telegram", rate=10.0, capacity=2.0)
    try:
        waits = []
        for n in range(20):  # taken in turns, as fast as they can
            waits.append(await (first if n % 2 else second).reserve([bucket]))
        other = await first.reserve([Bucket("telegram:-100", rate=1.0, capacity=1.0)])
    finally:
        await first.close()
        await second.close()
    # Two at once, then one every 0.1 s for both together: the 20th waits about 1.8 s.
    assert waits[:2] == [0.0, 0.0]
    assert all(later > earlier for earlier, later in pairwise(waits[2:]))
    assert 1.6 < waits[-1] <= 1.8, waits
    assert other == 0.0  # another key is another bucket
