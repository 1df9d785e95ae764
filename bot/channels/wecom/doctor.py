"""`yimi-bot doctor`'s WeCom checks: the credentials (gettoken) and every bound department or tag."""

from __future__ import annotations

from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.apidata import WeComError
from bot.config import Settings
from bot.core.ids import WECOM, raw_of
from bot.doctor import Check, bound_groups


async def wecom_checks(settings: Settings, base_url: str | None = None) -> list[Check]:
    """gettoken, then every bound department or tag exists and has members."""
    wecom = settings.wecom()
    assert wecom is not None
    client = WeComClient(
        wecom.corp_id, wecom.secret, agent_id=wecom.agent_id, base_url=base_url or wecom.api_base
    )
    out: list[Check] = []
    async with client:
        try:
            await client.access_token()
        except WeComError as exc:
            return [
                Check(
                    "企业微信凭据 credentials",
                    False,
                    f"gettoken 失败：{exc}（请核对 WECOM_CORP_ID、WECOM_SECRET）",
                )
            ]
        out.append(Check("企业微信凭据 credentials", True, "gettoken 成功"))
        for chat_id, team in bound_groups(settings, WECOM):
            name = f"企业微信 {team}"
            kind, _, ident = raw_of(chat_id).partition(":")
            try:
                if kind == "dept":
                    people = len(await client.department_members(int(ident), fetch_child=True))
                else:
                    tagged = await client.tag_members(int(ident))
                    people = len(tagged.userids) + len(tagged.party_ids)
            except (WeComError, ValueError) as exc:
                out.append(
                    Check(
                        name,
                        False,
                        f"{chat_id} 无法读取（{exc}）：部门/标签是否存在、应用可见范围是否包含它？",
                    )
                )
                continue
            if people:
                out.append(Check(name, True, f"{chat_id}：{people} 人"))
            else:
                out.append(
                    Check(name, False, f"{chat_id} 没有成员：请在通讯录中添加，或重新 /bind")
                )
    return out
