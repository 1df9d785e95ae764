"""python -m bot.channels.simulator: the local chat simulator on http://127.0.0.1:SIM_PORT (Settings.sim_port)."""

from __future__ import annotations

import asyncio
import contextlib

from bot.channels.simulator.server import run_simulator
from bot.config import Settings
from bot.logsetup import setup_logging


def main() -> None:
    """Run the simulator with the settings from the environment or `.env`."""
    settings = Settings()
    setup_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_simulator(settings, port=settings.sim_port))


if __name__ == "__main__":
    main()
