"""`yimi-bot doctor`'s Telegram checks: the token (getMe) and every bound group."""

from __future__ import annotations

from telegram.error import TelegramError
from telegram.request import BaseRequest

from bot.channels.telegram.connection import explain, make_bot
from bot.config import Settings
from bot.core.ids import TELEGRAM, raw_of
from bot.doctor import Check, bound_groups


async def telegram_checks(settings: Settings, request: BaseRequest | None = None) -> list[Check]:
    """getMe, then for each bound group: reachable, the bot a member that sees replies."""
    bot = make_bot(settings, request)
    try:
        await bot.initialize()
    except TelegramError as exc:
        return [Check("Telegram 令牌 token", False, explain(exc, settings)[1])]
    out = [Check("Telegram 令牌 token", True, f"@{bot.username}")]
    try:
        me = await bot.get_me()
        sees_all = bool(me.can_read_all_group_messages)
        for chat_id, team in bound_groups(settings, TELEGRAM):
            name = f"Telegram 群 {team}"
            try:
                chat = await bot.get_chat(int(raw_of(chat_id)))
                member = await bot.get_chat_member(chat.id, me.id)
            except TelegramError as exc:
                out.append(
                    Check(
                        name,
                        False,
                        f"{chat_id} 无法访问（{exc.message}）：机器人是否已被移出该群？",
                    )
                )
                continue
            title = chat.title or chat_id
            if member.status in ("left", "kicked"):
                out.append(
                    Check(name, False, f"{title}：机器人不在群内，请重新拉入并 /bind {team}")
                )
            elif getattr(member, "can_send_messages", True) is False:
                out.append(Check(name, False, f"{title}：机器人被禁言，请解除限制"))
            elif member.status in ("administrator", "creator") or sees_all:
                how = "管理员" if member.status != "member" else "隐私模式已关闭"
                out.append(Check(name, True, f"{title}（{how}）"))
            else:
                out.append(
                    Check(
                        name,
                        False,
                        f"{title}：机器人不是管理员且隐私模式开启，看不到成员的回复："
                        "请设为群管理员，或在 @BotFather 发送 /setprivacy → Disable",
                    )
                )
    finally:
        await bot.shutdown()
    return out
