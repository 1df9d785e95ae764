"""kill -9 in the middle of a burst, then start again: nothing a firm confirmed is lost.

The bot runs as its own process (`python -m bot run`) against the fake Bot API on 127.0.0.1,
with Telegram's latency and limits; it is SIGKILLed once a third of the receipts are out.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from burst import burst


async def test_sigkill_mid_burst_loses_nothing_and_leaves_nothing_stuck(tmp_path: Path) -> None:
    result = await burst(24, tmp_path, kill_after=8)
    assert result["restarted"]
    assert result["tickets"] == 24 and result["firms_with_2_tickets"] == 0
    assert result["lost_receipts"] == 0 and result["lost_cards"] == 0
    assert result["misrouted"] == 0
    assert set(result["outbox"]) == {"sent"}  # no row stuck pending, waiting or failed
    # Delivery is at least once: only a message in flight at the instant of the kill (accepted
    # by Telegram, not yet recorded by the bot) can go out twice.
    assert result["dup_receipts"] + result["dup_cards"] <= result["in_flight_at_kill"], result
