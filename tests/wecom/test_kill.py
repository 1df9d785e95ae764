"""kill -9 in the middle of a WeCom burst, then start again: nothing a firm confirmed is lost.

`yimi-bot run` on WeCom alone runs as its own process against the fake WeCom server (WeCom's
limits enforced); it is SIGKILLed once a third of the receipts are out and started again on the
same database.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from wecom_burst import wecom_burst


async def test_sigkill_mid_wecom_burst_loses_nothing(tmp_path: Path) -> None:
    result = await wecom_burst(24, tmp_path, kill_after=8)
    assert result["restarted"]
    assert result["tickets"] == 24
    assert result["lost_receipts"] == 0 and result["lost_cards"] == 0, result
    assert set(result["outbox"]) == {"sent"}, result["outbox"]  # nothing pending, waiting, failed
    # Firms: exactly once. A kf message sent by WeCom but not yet recorded at the kill goes out
    # again under the same msgid (one per outbox row), and WeCom does not deliver it twice.
    assert result["firm_dups"] == 0 and result["dup_receipts"] == 0, result
    # Members (message/send has no caller-chosen id): at least once, in order per chat; a kill
    # leaves at most one send in flight in each chat, so no chat sees more than one card twice.
    assert result["max_dup_per_chat"] <= 1, result
