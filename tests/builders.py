"""Hand-built tickets for the pure clock, stats and ledger tests (no database, no bot)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.core.models import Ticket, TicketState, Urgency
from bot.worktime.calendar import WorkCalendar
from bot.worktime.deadlines import DeadlinePolicy

TZ = ZoneInfo("Asia/Shanghai")


def make_policy() -> DeadlinePolicy:
    """The default deadline policy on the official calendar."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return DeadlinePolicy(settings, WorkCalendar(settings))


def make_ticket(policy: DeadlinePolicy, tid: int, submitted: datetime, **kw: Any) -> Ticket:
    """A finance ticket in progress, submitted (and dispatched) at `submitted`; `kw` overrides."""
    urgency = kw.pop("urgency", Urgency.NORMAL)
    fields: dict[str, Any] = {
        "id": tid,
        "number": f"YM-{submitted:%Y%m%d}-{tid:04d}",
        "state": TicketState.IN_PROGRESS,
        "reporter_id": f"telegram:{100 + tid}",
        "enterprise_id": tid,
        "enterprise_name": f"尉氏县企业{tid}有限公司",
        "credit_code": "91410223MA9G5XYZ1K",
        "town": "城关镇",
        "industry": "装备制造",
        "contact_name": "张建国",
        "contact_phone": "13812345678",
        "summary": f"问题{tid}",
        "team_id": "finance",
        "created_at": submitted,
        "submitted_at": submitted,
        "dispatched_at": submitted,
        "urgency": urgency,
        "due_at": policy.due_at(submitted, urgency),
    }
    fields.update(kw)
    return Ticket(**fields)
