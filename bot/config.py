"""Settings read once from the environment or `.env`; the only reader of the environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.core import counties
from bot.core.counties import Counties

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

# Which towns/parks border which, for related reports (issue 13): an approximate map of Weishi
# County drawn for this project, not an official one. Confirm it with the county and override it
# with RELATED_NEIGHBOURS (town=neighbour|neighbour;town=…); either direction is enough.
DEFAULT_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "城关镇": ("尉氏县产业集聚区", "张市镇", "永兴镇", "大营镇", "十八里镇", "庄头镇"),
    "尉氏县产业集聚区": ("张市镇", "十八里镇"),
    "十八里镇": ("张市镇", "庄头镇"),
    "大营镇": ("永兴镇", "门楼任乡"),
    "永兴镇": ("庄头镇", "门楼任乡"),
    "庄头镇": ("南曹乡", "邢庄乡"),
    "门楼任乡": ("大桥乡",),
    "大桥乡": ("南曹乡",),
    "南曹乡": ("邢庄乡",),
    "邢庄乡": ("道陵岗乡", "顿岗乡"),
    "道陵岗乡": ("顿岗乡",),
}


_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")


@dataclass(frozen=True)
class WeComSettings:
    """The WeCom channel's settings, complete (see Settings.wecom)."""

    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    kf_id: str | None
    admin_ids: tuple[str, ...]
    api_base: str


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything configurable; see .env.example for each key."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")
    _counties: Counties | None = PrivateAttr(default=None)

    bot_token: SecretStr | None = None
    telegram_base_url: str | None = None
    telegram_base_file_url: str | None = None
    # Updates by webhook instead of long polling: the public HTTPS address Telegram posts to
    # (it reaches WEB_HOST:WEB_PORT/telegram/webhook of any process behind the load balancer),
    # and the secret Telegram sends with every request (1-256 of A-Z a-z 0-9 _ -).
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    database_path: Path = Path("./data/yimi.db")
    # postgresql://user:password@host:5432/name selects PostgreSQL (several processes, many
    # counties); unset, the SQLite file at DATABASE_PATH.
    database_url: SecretStr | None = None
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    towns: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_TOWNS))
    # Several counties (or districts) in one deployment: a TOML file with one [[county]] table
    # each (bot.core.counties). Unset: one county, with TOWNS and ADMIN_IDS.
    counties_file: Path | None = None
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
    # Daily backup into BACKUP_DIR (off when unset), kept BACKUP_KEEP days, at BACKUP_TIME.
    backup_dir: Path | None = None
    backup_keep: int = Field(default=14, ge=1)
    backup_time: time = time(3, 0)

    # Local simulator (no BOT_TOKEN): the web page's port on 127.0.0.1, and its own database
    # (never DATABASE_PATH: the real bot refuses a database the simulator has marked as its own).
    sim_port: int = 8080
    simulator_database_path: Path = Path("./data/simulator.db")

    # WeCom (企业微信) self-built app and 微信客服; see .env.example. All optional.
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_kf_id: str | None = None
    wecom_admin_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    # The callback server (WeCom posts to http://WEB_HOST:WEB_PORT/wecom/callback).
    web_host: str = "127.0.0.1"
    web_port: int = 8088
    # A Telegram-only bot (polling) serves /healthz and /metrics on WEB_HOST:WEB_PORT only when
    # asked; WeCom's callback server and the simulator's page serve them anyway.
    health_server: bool = False
    # Off only for benchmarks against a fake Bot API without limits (bench/burst.py): the bot's
    # own pacing under Telegram's limits (30 messages a second, 20 a minute per group).
    telegram_rate_limit: bool = True

    # Delivery.
    outbox_poll_seconds: float = 0.5
    # The per-user flood limit: this many updates at once, then so many a second.
    flood_burst: int = 8
    flood_per_second: float = 0.5
    low_confidence: float = 0.35

    # Related reports (issue 13): open tickets of the last RELATED_WINDOW_WORKDAYS working days
    # are searched on every submission (a card lists three, /related all of them); the
    # coordinators are alerted once when RELATED_BURST_COUNT firms of one town report related
    # problems within RELATED_BURST_MINUTES. RELATED_NEIGHBOURS: town=neighbour|neighbour;…
    related_window_workdays: int = Field(default=5, ge=1, le=60)
    related_burst_count: int = Field(default=3, ge=2)
    related_burst_minutes: int = Field(default=60, ge=1)
    related_neighbours: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_NEIGHBOURS.items()}
    )

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admins(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("extra_holidays", "extra_workdays", mode="before")
    @classmethod
    def _dates(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if urlsplit(value.get_secret_value()).scheme not in {"postgresql", "postgres"}:
            raise ValueError("DATABASE_URL 应以 postgresql:// 开头 / must be a postgresql:// URL")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET 只能由 1-256 个字母、数字、_ 和 - 组成"
                " / 1-256 characters of A-Z a-z 0-9 _ -"
            )
        return value

    def webhook(self) -> tuple[str, str] | None:
        """(URL, secret) when updates come by webhook; None for long polling. A URL without
        a secret is refused: every request must prove it comes from Telegram."""
        url = (self.telegram_webhook_url or "").strip()
        if not url:
            return None
        if self.telegram_webhook_secret is None:
            raise ValueError(
                "设置了 TELEGRAM_WEBHOOK_URL 就必须设置 TELEGRAM_WEBHOOK_SECRET"
                " / TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET"
            )
        return url, self.telegram_webhook_secret.get_secret_value()

    @property
    def database_dsn(self) -> str | None:
        """DATABASE_URL in clear (for the storage layer only), or None for SQLite."""
        return self.database_url.get_secret_value() if self.database_url else None

    @field_validator("towns", mode="before")
    @classmethod
    def _towns(cls, value: object) -> object:
        value = _split_csv(value)
        return value or list(DEFAULT_TOWNS)

    @field_validator("related_neighbours", mode="before")
    @classmethod
    def _neighbours(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return {k: list(v) for k, v in DEFAULT_NEIGHBOURS.items()}
        pairs: dict[str, list[str]] = {}
        for part in value.replace("；", ";").split(";"):
            if not part.strip():
                continue
            town, sep, others = part.partition("=")
            names = [o.strip() for o in others.replace("｜", "|").split("|") if o.strip()]
            if not sep or not town.strip() or not names:
                raise ValueError(
                    "RELATED_NEIGHBOURS is town=neighbour|neighbour;town=… "
                    f"(could not read {part.strip()!r})"
                )
            pairs.setdefault(town.strip(), []).extend(names)
        return pairs

    @field_validator("wecom_admin_ids", mode="before")
    @classmethod
    def _wecom_admins(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator(
        "wecom_corp_id",
        "wecom_kf_id",
        "wecom_agent_id",
        "backup_dir",
        "counties_file",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("wecom_secret", "wecom_token", "wecom_aes_key", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("wecom_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _AES_KEY.fullmatch(value.get_secret_value().strip()):
            raise ValueError(
                "WECOM_AES_KEY must be the 43-character EncodingAESKey (a-z, A-Z, 0-9) "
                "shown with the app's callback settings"
            )
        return value

    @field_validator("wecom_api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("WECOM_API_BASE must be a URL like https://qyapi.weixin.qq.com")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError(
                "WECOM_API_BASE is a scheme and host only (the bot appends /cgi-bin/...)"
            )
        return f"{parts.scheme}://{parts.netloc}"

    def wecom(self) -> WeComSettings | None:
        """The WeCom settings when configured, None when no WECOM_* key is set; ValueError (one
        line naming what is missing) when only some are."""
        corp, agent, kf = self.wecom_corp_id, self.wecom_agent_id, self.wecom_kf_id
        secret, token, aes_key = self.wecom_secret, self.wecom_token, self.wecom_aes_key
        values = {
            "WECOM_CORP_ID": corp,
            "WECOM_AGENT_ID": agent,
            "WECOM_SECRET": secret,
            "WECOM_TOKEN": token,
            "WECOM_AES_KEY": aes_key,
        }
        if all(value is None for value in (*values.values(), kf)):
            return None
        if corp is None or agent is None or secret is None or token is None or aes_key is None:
            missing = ", ".join(name for name, value in values.items() if value is None)
            raise ValueError(
                f"WeCom is partly configured: {missing} missing "
                "(set every one of WECOM_CORP_ID, WECOM_AGENT_ID, WECOM_SECRET, WECOM_TOKEN, "
                "WECOM_AES_KEY, or none; see .env.example)"
            )
        return WeComSettings(
            corp_id=corp.strip(),
            agent_id=agent,
            secret=secret.get_secret_value().strip(),
            token=token.get_secret_value().strip(),
            aes_key=aes_key.get_secret_value().strip(),
            kf_id=kf.strip() if kf else None,
            admin_ids=tuple(self.wecom_admin_ids),
            api_base=self.wecom_api_base,
        )

    def counties(self) -> Counties:
        """The deployment's counties (read once); ValueError (one line) for a bad
        COUNTIES_FILE."""
        if self._counties is None:
            self._counties = (
                counties.load(self.counties_file)
                if self.counties_file is not None
                else counties.single(self.towns)
            )
        return self._counties

    def token(self) -> str:
        """The bot token; raises when it is not configured."""
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ValueError("BOT_TOKEN is not set")
        return self.bot_token.get_secret_value().strip()
