"""Domain models shared by the workflow, the database and the renderers (no telegram imports)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.core.teams import BINDABLE as BINDABLE
from bot.core.teams import COORDINATOR as COORDINATOR
from bot.core.teams import COORDINATOR_NAME as COORDINATOR_NAME
from bot.core.teams import GENERAL as GENERAL
from bot.core.teams import LEADERS as LEADERS
from bot.core.teams import LEADERS_NAME as LEADERS_NAME
from bot.core.teams import TEAM_NAMES as TEAM_NAMES
from bot.core.teams import team_name as team_name


class TicketState(StrEnum):
    """The states of WORKFLOW.md."""

    DRAFT = "draft"
    PENDING_DISPATCH = "pending_dispatch"
    PENDING_CLAIM = "pending_claim"
    IN_PROGRESS = "in_progress"
    LONG_TERM = "long_term"
    PENDING_CONFIRM = "pending_confirm"
    MERGED = "merged"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """Chinese name of the state."""
        return STATE_LABELS[self]

    @property
    def is_open(self) -> bool:
        """Submitted and not yet closed or cancelled."""
        return self not in (TicketState.DRAFT, TicketState.CLOSED, TicketState.CANCELLED)


STATE_LABELS: dict[TicketState, str] = {
    TicketState.DRAFT: "待补充",
    TicketState.PENDING_DISPATCH: "待分拨",
    TicketState.PENDING_CLAIM: "待签收",
    TicketState.IN_PROGRESS: "办理中",
    TicketState.LONG_TERM: "长期跟踪",
    TicketState.PENDING_CONFIRM: "待评价",
    TicketState.MERGED: "已合并",
    TicketState.CLOSED: "已销号",
    TicketState.CANCELLED: "已撤销",
}


_S = TicketState
# Every state change the workflow may make (WORKFLOW.md): from-state -> the states it may go
# to. The storage layer refuses any other (bot.storage.db Repo.update_ticket), so a change
# written in the wrong state fails instead of corrupting the ticket.
TRANSITIONS: dict[TicketState, frozenset[TicketState]] = {
    _S.DRAFT: frozenset({_S.PENDING_CLAIM, _S.PENDING_DISPATCH, _S.CANCELLED}),
    _S.PENDING_DISPATCH: frozenset({_S.PENDING_CLAIM, _S.CANCELLED, _S.MERGED}),
    # 签收; 退回 to the coordinators; re-routed to another team (dispatch); withdrawn; 合并.
    _S.PENDING_CLAIM: frozenset(
        {_S.IN_PROGRESS, _S.PENDING_DISPATCH, _S.PENDING_CLAIM, _S.CANCELLED, _S.MERGED}
    ),
    _S.IN_PROGRESS: frozenset(
        {
            _S.PENDING_CONFIRM,
            _S.LONG_TERM,
            _S.PENDING_DISPATCH,
            _S.PENDING_CLAIM,
            _S.CANCELLED,
            _S.MERGED,
        }
    ),
    _S.LONG_TERM: frozenset({_S.PENDING_CONFIRM, _S.PENDING_CLAIM, _S.CANCELLED, _S.MERGED}),
    # Merged into a main ticket (bot.workflow.merging): the main's result arrives (待评价);
    # 撤销合并, or the main withdrawn/cancelled: back on its own (待签收 / 待分拨); withdrawn.
    _S.MERGED: frozenset({_S.PENDING_CONFIRM, _S.PENDING_CLAIM, _S.PENDING_DISPATCH, _S.CANCELLED}),
    # 满意/基本满意 or no rating in time: closed; 不满意: 重办; withdrawn.
    _S.PENDING_CONFIRM: frozenset({_S.CLOSED, _S.IN_PROGRESS, _S.CANCELLED}),
    _S.CLOSED: frozenset(),
    _S.CANCELLED: frozenset(),
}


def sources_of(target: TicketState) -> tuple[TicketState, ...]:
    """The states a ticket may reach `target` from."""
    return tuple(s for s, targets in TRANSITIONS.items() if target in targets)


class IllegalTransition(RuntimeError):
    """A state change the transition table does not allow (a bug, not a user's mistake)."""


class Urgency(StrEnum):
    """一般 / 紧急 / 重大, plus 复杂 for 15-working-day items."""

    NORMAL = "normal"
    URGENT = "urgent"
    COMPLEX = "complex"
    MAJOR = "major"

    @property
    def label(self) -> str:
        """Chinese name."""
        return {"normal": "一般", "urgent": "紧急", "complex": "复杂", "major": "重大"}[self.value]


class CloseType(StrEnum):
    """How a ticket was closed (销号)."""

    SOLVED = "solved"
    EXPLAINED = "explained_not_solved"
    NO_EVALUATION = "no_evaluation"
    DIRECT_ANSWER = "direct_answer"
    # Cancelled by the coordinators (state cancelled), with a reason the firm sees.
    INVALID = "invalid"
    DUPLICATE = "duplicate"

    @property
    def label(self) -> str:
        """Chinese name."""
        return CLOSE_LABELS[self]


CLOSE_LABELS = {
    CloseType.SOLVED: "已解决",
    CloseType.EXPLAINED: "未解决·已解释",
    CloseType.NO_EVALUATION: "未评价",
    CloseType.DIRECT_ANSWER: "直接答复",
    CloseType.INVALID: "无效",
    CloseType.DUPLICATE: "重复",
}


class Satisfaction(StrEnum):
    """The firm's rating."""

    SATISFIED = "satisfied"
    BASIC = "basic"
    UNSOLVED = "unsolved"

    @property
    def label(self) -> str:
        """Chinese name."""
        return {"satisfied": "满意", "basic": "基本满意", "unsolved": "不满意"}[self.value]


class WarnLevel(StrEnum):
    """Traffic-light warning level of an open ticket."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"

    @property
    def label(self) -> str:
        """Chinese name."""
        return {"green": "正常", "yellow": "黄牌预警", "red": "红牌超期"}[self.value]


class Enterprise(BaseModel):
    """A firm; several users may belong to one."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    credit_code: str | None = None
    town: str | None = None
    industry: str | None = None
    county: str = ""


class User(BaseModel):
    """A chat user: a firm's contact, a team member, or both unknown yet."""

    model_config = ConfigDict(frozen=True)

    id: str  # channel-qualified: 'telegram:42', 'wecom:zhangsan' (bot.core.ids)
    display_name: str = ""
    username: str | None = None
    enterprise_id: int | None = None
    contact_name: str | None = None
    phone: str | None = None
    is_staff: bool = False
    private_started: bool = False
    reg_step: str | None = None
    reg_data: dict[str, Any] = Field(default_factory=dict)
    awaiting: str | None = None


class Attachment(BaseModel):
    """A file sent with a report: Telegram file ids, never the bytes."""

    model_config = ConfigDict(frozen=True)

    id: int
    ticket_id: int
    kind: str
    file_id: str
    caption: str | None = None


class Ticket(BaseModel):
    """One enterprise problem, from draft to 销号."""

    model_config = ConfigDict(frozen=True)

    id: int
    number: str | None
    state: TicketState
    channel: str = "telegram"
    reporter_id: str
    enterprise_id: int | None
    county: str = ""  # the firm's county (bot.core.counties), fixed at submission
    enterprise_name: str | None = None
    credit_code: str | None = None
    town: str | None = None
    industry: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    text: str = ""
    summary: str = ""
    request_type: str = "求助"
    team_id: str | None = None
    co_teams: list[str] = Field(default_factory=list)
    predicted_team: str | None = None
    domain_words: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    classified_by: str = "auto"
    urgency: Urgency = Urgency.NORMAL
    confidential: bool = False
    location: str | None = None
    created_at: datetime
    submitted_at: datetime | None = None
    dispatched_at: datetime | None = None
    due_at: datetime | None = None
    claimed_by: str | None = None
    claimed_by_name: str | None = None
    claimed_at: datetime | None = None
    first_contact_at: datetime | None = None
    result_text: str | None = None
    resolved_status: str | None = None
    satisfaction: Satisfaction | None = None
    rated_at: datetime | None = None
    resolved_at: datetime | None = None
    reopen_count: int = 0
    return_count: int = 0
    extension_count: int = 0
    urge_count: int = 0
    supervise_count: int = 0
    leader_note: str | None = None
    latest_progress: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    close_type: CloseType | None = None
    warn_level: WarnLevel = WarnLevel.GREEN
    undelivered: bool = False
    updated_at: datetime | None = None
    claim_due_at: datetime | None = None
    first_contact_due_at: datetime | None = None
    resolve_workdays: float | None = None
    # 合并: the id of the main ticket this one was merged into (kept after the main's result
    # reaches it, so the ledger lists it under the main and stats count the problem once);
    # the main's number is joined in by the database.
    merged_into: int | None = None
    merged_into_number: str | None = None
    merged_count: int = 0  # tickets merged into this one (read with single tickets only)


class TicketEvent(BaseModel):
    """One line of the append-only event log."""

    model_config = ConfigDict(frozen=True)

    id: int
    ticket_id: int
    actor_id: str | None
    action: str
    from_state: str | None
    to_state: str | None
    payload: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class Binding(BaseModel):
    """A group chat bound to a team (or to the coordinators / leaders)."""

    model_config = ConfigDict(frozen=True)

    chat_id: str
    team_id: str
    county: str = ""  # bot.core.counties: '' in a one-county deployment and for a city's leaders
    title: str | None = None
