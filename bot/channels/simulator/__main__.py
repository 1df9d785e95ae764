"""python -m bot.channels.simulator: the local chat simulator on http://127.0.0.1:SIM_PORT (Settings.sim_port)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.channels.simulator.server import run_simulator
from bot.config import Settings


def main() -> None:
    """Run the simulator with the settings from the environment or `.env`."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_simulator(settings, port=settings.sim_port))


if __name__ == "__main__":
    main()
