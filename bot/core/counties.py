"""Counties as tenants: one deployment may serve several counties (or districts) of a city or a
province. Each has its own team groups and coordinators' group, admins, town/park list, ticket
numbers, deadline settings, stats, digest and ledger; a firm belongs to one county, and its
tickets with it.

Without COUNTIES_FILE the deployment is one county with the empty code '' and everything is as
before: the towns are TOWNS, the admins ADMIN_IDS, numbers YM-YYYYMMDD-NNNN.

COUNTIES_FILE is TOML, one table per county::

    [[county]]
    code = "weishi"            # a-z, 0-9, '-' or '_': in deep links (/start county-weishi)
    name = "尉氏县"
    prefix = "WS"              # ticket numbers YM-WS-20261127-0001 (A-Z, 0-9; unique)
    towns = ["城关镇", "大营镇"]
    admins = ["telegram:123456", "wecom:zhangsan"]   # county admins: bind its groups
    [county.deadlines]         # optional: this county's own deadline settings
    due_days_normal = 5
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The deadline settings a county may set for itself (the names of bot.config.Settings fields).
DEADLINE_KEYS = frozenset(
    {
        "claim_limit_hours",
        "claim_reminder_hours",
        "claim_escalate_days",
        "first_contact_days",
        "due_days_normal",
        "due_hours_urgent",
        "due_workdays_complex",
        "due_days_major",
        "yellow_ratio",
        "extension_max_workdays",
        "return_window_workdays",
        "no_evaluation_workdays",
        "long_term_feedback_days",
    }
)
_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_PREFIX = re.compile(r"[A-Z0-9]{1,8}")
SEP = "@"  # team:tech_industry@weishi, coordinator@weishi: a target in a county


@dataclass(frozen=True)
class County:
    """One county's own settings."""

    code: str
    name: str
    prefix: str = ""
    towns: tuple[str, ...] = ()
    admins: frozenset[str] = frozenset()
    deadlines: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How texts name it ('' for the single county of a one-county deployment)."""
        return self.name


class Counties:
    """The counties of a deployment; one unnamed county when none are configured."""

    def __init__(self, counties: list[County]) -> None:
        self.all = counties
        self.by_code = {c.code: c for c in counties}

    @property
    def single(self) -> bool:
        """A one-county deployment: no county step, no county in targets or numbers."""
        return len(self.all) == 1 and self.all[0].code == ""

    def __iter__(self) -> Iterator[County]:
        return iter(self.all)

    def get(self, code: str | None) -> County | None:
        return self.by_code.get(code or "")

    def of(self, code: str | None) -> County:
        """The county with this code; the first one for a code that is not (or no longer) set."""
        return self.by_code.get(code or "") or self.all[0]

    def admin_of(self, user_id: str) -> list[County]:
        """The counties whose admins list the user (a channel-qualified id)."""
        return [c for c in self.all if user_id in c.admins]


def single(towns: list[str]) -> Counties:
    """The one county of a deployment without COUNTIES_FILE."""
    return Counties([County(code="", name="", towns=tuple(towns))])


def load(path: Path) -> Counties:
    """COUNTIES_FILE read and checked; ValueError with one line saying what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"COUNTIES_FILE {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"COUNTIES_FILE {path} cannot be read: {exc}") from None
    entries = data.get("county")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"COUNTIES_FILE {path} lists no [[county]] table")
    counties: list[County] = []
    for n, entry in enumerate(entries, 1):
        counties.append(_county(entry, f"COUNTIES_FILE {path}, county {n}"))
    codes = [c.code for c in counties]
    prefixes = [c.prefix for c in counties]
    for what, values in (("code", codes), ("prefix", prefixes)):
        doubled = sorted({v for v in values if values.count(v) > 1})
        if doubled:
            raise ValueError(f"COUNTIES_FILE {path}: {what} {doubled[0]!r} is used twice")
    return Counties(counties)


def _county(entry: object, where: str) -> County:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: not a table")
    unknown = set(entry) - {"code", "name", "prefix", "towns", "admins", "deadlines"}
    if unknown:
        raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    code = entry.get("code")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(f"{where}: code must be 1-32 of a-z, 0-9, '-', '_' (got {code!r})")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where} ({code}): name is missing")
    prefix = entry.get("prefix", "")
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ValueError(f"{where} ({code}): prefix must be 1-8 of A-Z, 0-9 (got {prefix!r})")
    towns = entry.get("towns")
    if (
        not isinstance(towns, list)
        or not towns
        or not all(isinstance(t, str) and t.strip() for t in towns)
    ):
        raise ValueError(f"{where} ({code}): towns must be a list of names")
    admins = entry.get("admins", [])
    if not isinstance(admins, list) or not all(isinstance(a, str) and ":" in a for a in admins):
        raise ValueError(
            f"{where} ({code}): admins must be channel-qualified ids like 'telegram:123' "
            "or 'wecom:zhangsan'"
        )
    deadlines = entry.get("deadlines", {})
    if not isinstance(deadlines, dict):
        raise ValueError(f"{where} ({code}): deadlines must be a table")
    bad = set(deadlines) - DEADLINE_KEYS
    if bad:
        raise ValueError(f"{where} ({code}): deadlines has no setting {sorted(bad)[0]!r}")
    for key, value in deadlines.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{where} ({code}): deadlines.{key} must be a positive number")
    return County(
        code=code,
        name=name.strip(),
        prefix=prefix,
        towns=tuple(t.strip() for t in towns),
        admins=frozenset(admins),
        deadlines=dict(deadlines),
    )


def scoped(name: str, county: str) -> str:
    """A team, coordinator or leaders target in a county ('team:tech_industry@weishi');
    unchanged for the county '' of a one-county deployment."""
    return f"{name}{SEP}{county}" if county else name


def unscoped(target: str) -> tuple[str, str]:
    """(target without the county, county) of a target made by `scoped`."""
    name, _, county = target.partition(SEP)
    return name, county
