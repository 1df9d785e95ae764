"""The exception tree of the workflow; handlers turn each into a Chinese reply.

YimiError                 base; `.reply` is the Chinese text shown to the user
 ├── NotAllowed           the actor may not do this (role, group, ownership)
 ├── NotFound             no such ticket, or not visible to the actor
 ├── WrongState           the ticket's state does not allow the action (stale button)
 └── BadInput             the user typed something we cannot use (usage, format)
"""

from __future__ import annotations

from bot.render import texts


class YimiError(Exception):
    """Base of workflow errors; carries the reply for the user."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class NotAllowed(YimiError):
    """The actor lacks the right for this action."""

    def __init__(self, why: str) -> None:
        super().__init__(texts.NOT_ALLOWED.format(why=why))


class NotFound(YimiError):
    """No such ticket (or not one the actor may see)."""

    def __init__(self, number: str) -> None:
        super().__init__(texts.TICKET_NOT_FOUND.format(number=number))


class WrongState(YimiError):
    """The ticket moved on; the action no longer applies."""

    def __init__(self, number: str | None, state_label: str, action: str) -> None:
        super().__init__(
            texts.STATE_CHANGED.format(
                number=number or "",
                state=state_label,
                action=texts.STATE_ACTION.get(action, action),
            )
        )


class BadInput(YimiError):
    """Unusable input; the reply says what to send instead."""
