"""Commands in the WeCom app chat (/bind, /teams, /stats, /export, /reply and the rest), for the
members of the county's WeCom organisation (bot.channels.wecom.channel hands them over)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bot.channels.wecom.apidata import WeComError
from bot.channels.wecom.sender import group_of
from bot.core.errors import YimiError
from bot.core.ids import WECOM
from bot.core.models import BINDABLE, TEAM_NAMES, team_name
from bot.core.ports import Actor
from bot.render import texts
from bot.render.keyboards import Reply
from bot.reporting.service import STATS_KINDS, parse_day
from bot.workflow.outbound import enqueue

if TYPE_CHECKING:
    from bot.channels.wecom.channel import WeComChannel

logger = logging.getLogger(__name__)


def _team_list() -> str:
    return "\n".join(f"{team}：{team_name(team)}" for team in BINDABLE)


class StaffCommands:
    """What a member types in the app chat."""

    def __init__(self, channel: WeComChannel) -> None:
        self.channel = channel

    async def command(self, actor: Actor, text: str, msg_id: str) -> None:
        name, _, rest = text[1:].partition(" ")
        name = name.split("@")[0].lower()
        args = rest.split()
        svc = self.channel.services
        workflow = svc.workflow
        chat = actor.chat_id
        if name in ("help", "start"):
            await self.channel.reply(chat, [Reply(texts.HELP_WECOM)])
        elif name == "teams":
            await self.channel.run_call(chat, workflow.teams())
        elif name == "bind":
            await self.bind(actor, args)
        elif name == "unbind":
            if len(args) != 1 or group_of(f"{WECOM}:{args[0]}") is None:
                await self.channel.reply(chat, [Reply(texts.WECOM_UNBIND_USAGE)])
                return
            as_group = await self.channel.member(actor.id.partition(":")[2], f"{WECOM}:{args[0]}")
            await self.channel.run_call(chat, workflow.unbind(as_group))
        elif name in ("reply", "progress", "longterm"):
            parts = rest.strip().split(maxsplit=1)
            usage = {
                "reply": texts.REPLY_USAGE,
                "progress": texts.PROGRESS_USAGE,
                "longterm": texts.LONGTERM_USAGE,
            }[name]
            if len(parts) < 2:
                await self.channel.reply(chat, [Reply(usage)])
                return
            number, body = parts
            if name == "reply":
                call = workflow.reply_command(actor, number, body, msg_id)
            elif name == "progress":
                call = workflow.progress(actor, number, body)
            else:
                call = svc.followup.request(actor, number, "long_term", None, body)
            await self.channel.run_call(chat, call)
        elif name == "extend":
            parts = rest.strip().split(maxsplit=2)
            if len(parts) < 3 or not parts[1].isdigit():
                limit = svc.settings.extension_max_workdays
                await self.channel.reply(chat, [Reply(texts.EXTEND_USAGE.format(max=limit))])
                return
            number, days, reason = parts
            await self.channel.run_call(
                chat, svc.followup.request(actor, number, "extension", int(days), reason)
            )
        elif name == "ticket":
            if not args:
                await self.channel.reply(chat, [Reply(texts.TICKET_USAGE)])
                return
            await self.channel.run_call(chat, workflow.view(actor, args[0]))
        elif name == "related":
            if len(args) != 1:
                await self.channel.reply(chat, [Reply(texts.RELATED_USAGE)])
                return
            await self.channel.run_call(chat, workflow.related(actor, args[0]))
        elif name == "dispatch":
            if len(args) != 2:
                usage = texts.DISPATCH_USAGE.format(teams=", ".join(TEAM_NAMES))
                await self.channel.reply(chat, [Reply(usage)])
                return
            await self.channel.run_call(chat, workflow.dispatch_number(actor, args[0], args[1]))
        elif name in ("merge", "合并"):
            if len(args) != 2:
                await self.channel.reply(chat, [Reply(texts.MERGE_USAGE)])
                return
            await self.channel.run_call(chat, workflow.merge(actor, args[0], args[1]))
        elif name in ("unmerge", "撤销合并"):
            if len(args) != 1:
                await self.channel.reply(chat, [Reply(texts.UNMERGE_USAGE)])
                return
            await self.channel.run_call(chat, workflow.unmerge_number(actor, args[0]))
        elif name == "stats":
            kind = STATS_KINDS.get(args[0].lower() if args else "week")
            if kind is None:
                await self.channel.reply(chat, [Reply(texts.STATS_USAGE)])
                return
            in_team = await self.channel.in_team(actor)
            if in_team is None and not actor.is_admin:
                await self.channel.reply(chat, [Reply(texts.WECOM_NOT_IN_TEAM)])
                return
            await self.channel.run_call(chat, svc.reports.stats_for(in_team or actor, kind))
        elif name == "export":
            await self.export(actor, args)
        else:
            await self.channel.reply(chat, [Reply(texts.WECOM_UNSUPPORTED_COMMAND)])

    async def bind(self, actor: Actor, args: list[str]) -> None:
        chat = actor.chat_id
        where = f"{WECOM}:{args[1]}" if len(args) == 2 else ""
        if len(args) != 2 or group_of(where) is None or args[0].partition("@")[0] not in BINDABLE:
            if not actor.is_admin:
                await self.channel.reply(chat, [Reply(texts.NOT_ADMIN)])
                return
            await self.channel.reply(
                chat, [Reply(texts.WECOM_BIND_USAGE.format(teams=_team_list()))]
            )
            return
        as_group = await self.channel.member(actor.id.partition(":")[2], where)
        replies: list[Reply] = []
        try:
            replies = await self.channel.services.workflow.bind(as_group, args[1], args[0])
            if actor.is_admin:
                members = await self.channel.sender.members(where)
                if not members:
                    replies.append(Reply(texts.WECOM_BIND_EMPTY.format(where=args[1])))
        except YimiError as exc:
            replies = [Reply(exc.reply)]
        except WeComError as exc:
            logger.warning("members of %s could not be read: %s", where, exc)
            replies.append(Reply(texts.WECOM_BIND_EMPTY.format(where=args[1])))
        await self.channel.reply(chat, replies)

    async def export(self, actor: Actor, args: list[str]) -> None:
        svc = self.channel.services
        days = [parse_day(a) for a in args[:2]]
        if len(args) > 2 or any(d is None for d in days):
            await self.channel.reply(actor.chat_id, [Reply(texts.EXPORT_USAGE)])
            return
        start = days[0] if days else None
        end = days[1] if len(days) > 1 else None
        in_team = await self.channel.in_team(actor) or actor
        now = svc.workflow.now()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"问题台账-{now:%Y%m%d-%H%M}.xlsx"
            try:
                _, rows = await svc.reports.export_for(in_team, path, start=start, end=end)
            except YimiError as exc:
                await self.channel.reply(actor.chat_id, [Reply(exc.reply)])
                return
            data = path.read_bytes()
        period = f"{start or '…'} 至 {end or '…'}" if args else texts.EXPORT_ALL
        caption = texts.EXPORT_CAPTION.format(
            period=period, rows=rows, who=actor.name, at=f"{now:%Y-%m-%d %H:%M}"
        )
        payload = {"filename": path.name, "data": data.hex(), "caption": caption, "photo": False}
        async with svc.db.tx() as repo:
            await enqueue(repo, now, f"chat:{actor.chat_id}", "upload", payload)
        svc.delivery.wake()

    # -- firms on WeChat -----------------------------------------------------------------
