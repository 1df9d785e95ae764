"""Every neutral scenario runs on SQLite and on PostgreSQL, each with the recording sender and
with the real WeCom sender delivering into the fake WeCom server."""

from collections.abc import AsyncIterator

import pytest

from tests.neutral import harness


@pytest.fixture(autouse=True)
def _both_backends(backend: str) -> str:
    return backend


@pytest.fixture(autouse=True, params=["recording", "wecom"])
async def _both_senders(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if request.param == "recording":
        yield request.param
        return
    from bot.channels.simulator.fakewecom import FakeWeCom

    async with FakeWeCom(enforce_limits=False) as fake:
        harness.on_wecom = fake
        try:
            yield request.param
        finally:
            harness.on_wecom = None
