"""A week on the test clock (the soak's short form): 50 firms, ~300 reports, two restarts.

The driver is tests/soak.py (bench/soak.py runs the month with it). Asserts every job fired
once per slot, every reminder once and as the rules say, nothing lost, no phone number or
contact name in a group, every digest figure equal to the ledger's, and the database's size.
"""

from __future__ import annotations

from pathlib import Path

from tests.soak import WEEK, Soak


async def test_a_week_on_the_test_clock(tmp_path: Path) -> None:
    soak = Soak(WEEK, tmp_path)
    figures = await soak.run()
    assert await soak.check() == []
    # Every report was answered; every confirmed one is a ticket with a receipt.
    assert figures.reports_sent == WEEK.reports
    assert figures.tickets == figures.receipts >= 0.9 * WEEK.reports
    assert figures.restarts == 2
    # The week's slots: 5 working days, 1 Friday, a backup each day after the first.
    assert sum(figures.morning_lists.values()) == 5
    assert sum(figures.digests.values()) == 1 == len(figures.digest_checks)
    assert figures.digest_checks[0].compared > 60 and not figures.digest_checks[0].differences
    assert len(figures.backups) == 6
    assert figures.db_mb < 50 * WEEK.reports / 2000  # the month's bound, pro rata
