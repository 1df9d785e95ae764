"""Settings read once from the environment or `.env`; the only reader of the environment."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_TOWNS = (
    "道陵岗乡",
    "城关镇",
    "顿岗乡",
    "邢庄乡",
    "大营镇",
    "大桥乡",
    "南曹乡",
    "张市镇",
    "永兴镇",
    "庄头镇",
    "门楼任乡",
    "十八里镇",
    "尉氏县产业集聚区",
)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything configurable; see .env.example for each key."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    telegram_base_url: str | None = None
    telegram_base_file_url: str | None = None
    database_path: Path = Path("./data/yimi.db")
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    towns: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_TOWNS))
    timezone: str = "Asia/Shanghai"
    # Official days off and make-up working days (调休) not yet in the chinesecalendar package,
    # e.g. next year's schedule once the State Council publishes it: YYYY-MM-DD, comma-separated.
    extra_holidays: Annotated[list[date], NoDecode] = Field(default_factory=list)
    extra_workdays: Annotated[list[date], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"

    # Working hours (Chinese office hours) and time limits, after WORKFLOW.md.
    work_morning_start: time = time(8, 30)
    work_morning_end: time = time(12, 0)
    work_afternoon_start: time = time(14, 30)
    work_afternoon_end: time = time(17, 30)
    claim_limit_hours: float = 2.0
    claim_reminder_hours: float = 1.0
    claim_escalate_days: float = 1.0
    first_contact_days: float = 1.0
    due_days_normal: int = 7
    due_hours_urgent: int = 24
    due_workdays_complex: int = 15
    due_days_major: int = 30
    yellow_ratio: float = 0.8
    extension_max_workdays: int = 10
    return_window_workdays: float = 1.0
    no_evaluation_workdays: int = 5
    long_term_feedback_days: int = 30
    digest_weekday: int = 4
    digest_time: time = time(16, 0)
    morning_overdue_time: time = time(8, 40)

    # Local simulator (no BOT_TOKEN): the web page's port on 127.0.0.1, and its own database
    # (never DATABASE_PATH: the real bot refuses a database the simulator has marked as its own).
    sim_port: int = 8080
    simulator_database_path: Path = Path("./data/simulator.db")

    # Delivery.
    outbox_poll_seconds: float = 0.5
    low_confidence: float = 0.35

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admins(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("extra_holidays", "extra_workdays", mode="before")
    @classmethod
    def _dates(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("towns", mode="before")
    @classmethod
    def _towns(cls, value: object) -> object:
        value = _split_csv(value)
        return value or list(DEFAULT_TOWNS)

    def token(self) -> str:
        """The bot token; raises when it is not configured."""
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ValueError("BOT_TOKEN is not set")
        return self.bot_token.get_secret_value().strip()
