"""Three `yimi-bot run` processes share the work on one PostgreSQL database (issue 10). The
one polling Telegram is SIGKILLed in the middle of a burst; the two others carry on, one of
them polls next within seconds: nothing a firm confirmed is lost, no ticket made twice, every
process handled stored updates, nothing left stuck."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import burst as bench

from tests.postgres import POSTGRES


async def test_three_processes_share_a_burst_and_survive_the_pollers_death(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "PG_SERVER", POSTGRES.get())
    result = await bench.burst(30, tmp_path, kill_after=10, processes=3)
    assert result["restarted"] and result["takeover_seconds"] is not None
    # The dead poller's session ended with it: another polls within seconds, not a lease.
    assert result["takeover_seconds"] <= 5, result
    assert result["tickets"] == 30 and result["firms_with_2_tickets"] == 0
    assert result["lost_receipts"] == 0 and result["lost_cards"] == 0
    assert set(result["outbox"]) == {"sent"}
    assert result["dup_receipts"] + result["dup_cards"] <= result["in_flight_at_kill"], result
    # Both survivors stopped cleanly and worked: between them they handled stored updates
    # (which one gets which chat is a race), and each handled or sent.
    shares = result["shares"]
    assert all(share is not None and sum(share) > 0 for share in shares), result
    assert sum(share[0] for share in shares if share) > 0, result


async def test_three_processes_take_webhook_updates_and_one_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By webhook: the fake posts the updates round the three processes as a load balancer
    would (posts to the dead one fail and are posted again to the next); the leader, which
    set the webhook, is killed; another sets it again and runs the schedule."""
    monkeypatch.setattr(bench, "PG_SERVER", POSTGRES.get())
    result = await bench.burst(30, tmp_path, kill_after=10, processes=3, webhook=True)
    assert result["restarted"] and result["takeover_seconds"] is not None
    assert result["takeover_seconds"] <= 5, result
    assert result["tickets"] == 30 and result["firms_with_2_tickets"] == 0
    assert result["lost_receipts"] == 0 and result["lost_cards"] == 0
    assert set(result["outbox"]) == {"sent"}
    assert result["dup_receipts"] + result["dup_cards"] <= result["in_flight_at_kill"], result
    assert result["webhook_posts"][200] >= 60  # every report and press (a retry: stored once)
    shares = result["shares"]
    assert all(share is not None and sum(share) > 0 for share in shares), result
    assert sum(share[0] for share in shares if share) > 0, result
