"""Two `yimi-bot run` processes on one PostgreSQL database: one leads (polls), the other shares
the rest of the work and waits for the lead. The leader is SIGKILLed in the middle of a burst;
the other takes the lead within the lease and finishes it: nothing a firm confirmed is lost, no
ticket made twice, nothing left stuck (three processes: test_shared.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import burst as bench

from bot.storage.lease import LEASE_SECONDS
from tests.postgres import POSTGRES


async def test_the_standby_takes_over_when_the_leader_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "PG_SERVER", POSTGRES.get())
    result = await bench.burst(24, tmp_path, kill_after=8, standby=True)
    assert result["restarted"] and result["takeover_seconds"] is not None
    # The lease lapses at most LEASE_SECONDS after the dead leader's last renewal.
    assert result["takeover_seconds"] <= LEASE_SECONDS + 5, result
    assert result["tickets"] == 24 and result["firms_with_2_tickets"] == 0
    assert result["lost_receipts"] == 0 and result["lost_cards"] == 0
    assert set(result["outbox"]) == {"sent"}
    assert result["dup_receipts"] + result["dup_cards"] <= result["in_flight_at_kill"], result
