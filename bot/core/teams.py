"""The teams and group roles by id, with the names users see: plain data, cheap to import.

The classifier needs these and nothing else of the domain models; `bot.core.models` (pydantic)
re-exports them, so a one-line `yimi-bot classify` does not pay for importing pydantic.
"""

from __future__ import annotations

TEAM_NAMES: dict[str, str] = {
    "tech_industry": "科技工信服务一米团",
    "finance": "金融服务一米团",
    "environment": "环保服务一米团",
    "hr_social": "人社服务一米团",
    "land": "土地服务一米团",
    "agriculture": "农业发展一米团",
    "rural": "乡村振兴一米团",
    "publicity": "新闻宣传一米团",
}
COORDINATOR = "coordinator"
LEADERS = "leaders"
GENERAL = "general"
COORDINATOR_NAME = "专班（调度）"
LEADERS_NAME = "领导群"
BINDABLE = (*TEAM_NAMES, COORDINATOR, LEADERS)


def team_name(team_id: str | None) -> str:
    """The Chinese name users see for a team id (专班 for coordinator, 待分拨 for none)."""
    if team_id is None or team_id == GENERAL:
        return "待分拨"
    if team_id == COORDINATOR:
        return COORDINATOR_NAME
    if team_id == LEADERS:
        return LEADERS_NAME
    return TEAM_NAMES.get(team_id, team_id)
