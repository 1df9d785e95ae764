"""Logging for a person watching `make run`: lifecycle lines at INFO, routine chatter at DEBUG."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.config import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# APScheduler (under PTB's job queue) logs two INFO lines per run of every job: the follow-up
# tick alone makes two a minute. Shown only at LOG_LEVEL=DEBUG.
CHATTY = ("apscheduler",)
# httpx logs every request URL, and the URL carries the token: never below WARNING.
SECRET = ("httpx",)


class LocalTimeFormatter(logging.Formatter):
    """Timestamps in the configured timezone (deadlines and the chat use it), not the machine's."""

    def __init__(self, fmt: str, tz: ZoneInfo) -> None:
        super().__init__(fmt)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """`2026-11-27 09:00:00,123` in `tz` (or `datefmt`)."""
        when = datetime.fromtimestamp(record.created, self.tz)
        if datefmt:
            return when.strftime(datefmt)
        return f"{when:%Y-%m-%d %H:%M:%S},{int(record.msecs):03d}"


def setup_logging(settings: Settings) -> None:
    """Standard error, LOG_LEVEL, local timestamps; third-party chatter kept out of INFO."""
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    handler = logging.StreamHandler()
    handler.setFormatter(LocalTimeFormatter(FORMAT, ZoneInfo(settings.timezone)))
    logging.basicConfig(level=level, handlers=[handler])
    for name in SECRET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in CHATTY:
        logging.getLogger(name).setLevel(
            logging.NOTSET if level <= logging.DEBUG else logging.WARNING
        )
