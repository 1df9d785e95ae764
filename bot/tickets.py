"""The ticket workflow as one object for the chat handlers (no telegram).

Its parts: bot.intake (registration, drafts, submit), bot.handling (claim, return, resolve, rate,
dispatch), bot.talking (relays between team and firm), on the shared bot.workflow_base.
"""

from __future__ import annotations

from bot.handling import Handling
from bot.intake import Intake
from bot.talking import Talking
from bot.workflow_base import MAX_REPORT_CHARS, OPEN, WorkflowBase

__all__ = ["MAX_REPORT_CHARS", "OPEN", "Workflow", "WorkflowBase"]


class Workflow(Intake, Handling, Talking):
    """The whole ticket loop, driven by any chat platform's handlers."""
