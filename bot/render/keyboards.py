"""Platform-neutral buttons and the versioned callback-data codec ("v1:claim:123", ≤ 64 bytes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.models import TEAM_NAMES

VERSION = "v1"
MAX_CALLBACK_BYTES = 64

ACTIONS = frozenset(
    {
        "confirm",  # draft: submit
        "choose",  # draft: show team list
        "pick",  # draft: choose team (arg: team)
        "cancel",  # draft: cancel
        "urgent",  # draft: toggle urgency
        "claim",  # card: 签收
        "return",  # card: 退回 (asks for a reason)
        "resolve",  # card / details: 办结 (asks for the result)
        "contact",  # details: first contact made
        "rate",  # firm: rating (arg: satisfied | basic | unsolved)
        "dispatch",  # coordinator card: route (arg: team)
        "discard",  # coordinator card: close as 无效 / 重复 (arg: invalid | duplicate)
        "ext_ok",  # coordinator: approve extension / long-term (arg: request id)
        "ext_no",  # coordinator: refuse (arg: request id)
        "town",  # registration: town (arg: index)
        "county",  # registration: county (arg: index)
        "skip",  # registration: skip optional credit code
        "unmerge",  # merge reply: 撤销合并 (the merged ticket's id)
    }
)


class CallbackError(ValueError):
    """Callback data that is not ours, is stale in format, or is forged."""


@dataclass(frozen=True, slots=True)
class Callback:
    """Decoded callback data: an action on a ticket (or 0) with an optional argument."""

    action: str
    ticket_id: int
    arg: str = ""

    def encode(self) -> str:
        """The wire form, checked against Telegram's 64-byte limit."""
        data = f"{VERSION}:{self.action}:{self.ticket_id}" + (f":{self.arg}" if self.arg else "")
        if len(data.encode()) > MAX_CALLBACK_BYTES:
            raise CallbackError(f"callback data too long: {data!r}")
        return data


def decode(data: str | None) -> Callback:
    """Parse callback data; raises CallbackError for anything we did not produce."""
    if not data:
        raise CallbackError("empty")
    parts = data.split(":")
    if len(parts) not in (3, 4) or parts[0] != VERSION or parts[1] not in ACTIONS:
        raise CallbackError(f"unknown callback data {data!r}")
    if not parts[2].isdigit() or len(parts[2]) > 12:
        raise CallbackError(f"bad ticket id in {data!r}")
    arg = parts[3] if len(parts) == 4 else ""
    if len(arg) > 32 or not all(c.isalnum() or c == "_" for c in arg):
        raise CallbackError(f"bad argument in {data!r}")
    return Callback(parts[1], int(parts[2]), arg)


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: callback data or a URL."""

    text: str
    data: str | None = None
    url: str | None = None


Keyboard = list[list[Button]]


@dataclass(frozen=True, slots=True)
class Reply:
    """A message to show in the current chat, independent of the platform."""

    text: str
    buttons: Keyboard | None = None
    # A reply keyboard under the input field: rows of labels; "__contact__" asks for the phone.
    reply_keyboard: list[list[str]] | None = None
    remove_keyboard: bool = False
    force_reply: bool = False
    extra: dict[str, str] = field(default_factory=dict)


CONTACT_BUTTON = "__contact__"


def cb(action: str, ticket_id: int = 0, arg: str = "") -> str:
    """Shorthand for encoded callback data."""
    return Callback(action, ticket_id, arg).encode()


def draft_keyboard(ticket_id: int, urgent: bool) -> Keyboard:
    """确认提交 / 换个团队 / 取消 under a draft proposal."""
    return [
        [Button("✅ 确认提交", cb("confirm", ticket_id))],
        [
            Button("🔁 换个团队", cb("choose", ticket_id)),
            Button("取消紧急" if urgent else "⚠️ 标为紧急", cb("urgent", ticket_id)),
        ],
        [Button("✖️ 取消", cb("cancel", ticket_id))],
    ]


def team_choice_keyboard(ticket_id: int, action: str) -> Keyboard:
    """One button per team, two per row (used by firms and by coordinators)."""
    buttons = [
        Button(name.replace("服务一米团", "").replace("一米团", ""), cb(action, ticket_id, team))
        for team, name in TEAM_NAMES.items()
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    if action == "pick":
        rows.append([Button("交专班分拨（不确定）", cb(action, ticket_id, "general"))])
    return rows


def card_keyboard(ticket_id: int, state: str) -> Keyboard | None:
    """Buttons on a team card by state."""
    if state == "pending_claim":
        return [[Button("签收", cb("claim", ticket_id)), Button("退回", cb("return", ticket_id))]]
    if state == "in_progress":
        return [[Button("办结", cb("resolve", ticket_id))]]
    return None


def discard_row(ticket_id: int) -> list[Button]:
    """The coordinators' 无效 / 重复 buttons (each asks for the reason the firm will see)."""
    return [
        Button("🚫 无效", cb("discard", ticket_id, "invalid")),
        Button("♻️ 重复", cb("discard", ticket_id, "duplicate")),
    ]


def rating_keyboard(ticket_id: int) -> Keyboard:
    """The firm's three answers to a result."""
    return [
        [Button("已解决·满意", cb("rate", ticket_id, "satisfied"))],
        [Button("已解决·基本满意", cb("rate", ticket_id, "basic"))],
        [Button("未解决", cb("rate", ticket_id, "unsolved"))],
    ]


def details_keyboard(ticket_id: int, contacted: bool) -> Keyboard:
    """Buttons on the private details message to the claimer."""
    row = [Button("办结", cb("resolve", ticket_id))]
    if not contacted:
        row.insert(0, Button("已首次联系企业", cb("contact", ticket_id)))
    return [row]


def counties_keyboard(names: list[str]) -> Keyboard:
    """Inline buttons for the counties of a deployment, two per row."""
    buttons = [Button(name, cb("county", 0, str(i))) for i, name in enumerate(names)]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def towns_keyboard(towns: list[str]) -> Keyboard:
    """Inline buttons for the town/park list, two per row."""
    buttons = [Button(town, cb("town", 0, str(i))) for i, town in enumerate(towns)]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


MAX_BUTTONS = 100  # Telegram's limit of inline buttons in one message


def batch_keyboard(claimable: list[tuple[int, int]], per_row: int = 4) -> Keyboard | None:
    """签收 buttons of a batch card: (list index, ticket id) of the tickets still waiting."""
    buttons = [Button(f"签收 {index}", cb("claim", ticket_id)) for index, ticket_id in claimable]
    if not buttons:
        return None
    buttons = buttons[:MAX_BUTTONS]
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
