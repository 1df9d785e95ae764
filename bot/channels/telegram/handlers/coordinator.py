"""Commands for staff in any chat: /ticket, /reply, /progress, /dispatch, /cohandle, /merge,
/related."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.channels.telegram.handlers.common import actor_of, args_text, run, send_replies, services
from bot.channels.telegram.sender import chat_of
from bot.core.errors import YimiError
from bot.core.ids import TELEGRAM, qualify
from bot.core.models import TEAM_NAMES
from bot.core.ports import Actor, clean
from bot.render import texts
from bot.render.keyboards import Reply
from bot.reporting.service import STATS_KINDS, parse_day

logger = logging.getLogger(__name__)


async def on_ticket(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ticket <number>."""
    actor = actor_of(update, context)
    if actor is None:
        return
    if not context.args:
        await send_replies(context, actor.chat_id, [Reply(texts.TICKET_USAGE)])
        return
    await run(context, actor.chat_id, services(context).workflow.view(actor, args_text(context)[0]))


async def _with_numbers(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    count: int,
    usage: str,
    call: Callable[[Actor, list[str]], Awaitable[list[Reply]]],
) -> None:
    """`/cmd <number> …` with exactly `count` arguments: the workflow's answer, or `usage`."""
    actor = actor_of(update, context)
    if actor is None:
        return
    args = args_text(context)
    if len(args) != count:
        await send_replies(context, actor.chat_id, [Reply(usage)])
        return
    await run(context, actor.chat_id, call(actor, args))


async def on_related(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/related <number>: the tickets probably about the same problem, with the reasons."""
    workflow = services(context).workflow
    await _with_numbers(
        update, context, 1, texts.RELATED_USAGE, lambda a, n: workflow.related(a, n[0])
    )


async def _number_and_text(
    update: Update, context: ContextTypes.DEFAULT_TYPE, usage: str
) -> tuple[Actor, str, str, str] | None:
    """`/cmd <number> <text…>`: the actor, the number, the free text and the message id.

    Answers with `usage` (and returns None) when either part is missing.
    """
    actor = actor_of(update, context)
    message = update.effective_message
    if actor is None or message is None:
        return None
    args = args_text(context)
    if len(args) < 2:
        await send_replies(context, actor.chat_id, [Reply(usage)])
        return None
    text = clean(message.text or "").split(maxsplit=2)[-1]
    return actor, args[0], text, str(message.message_id)


async def on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reply <number> <text>: firm to team or team to firm."""
    parsed = await _number_and_text(update, context, texts.REPLY_USAGE)
    if parsed is not None:
        actor, number, text, message_id = parsed
        workflow = services(context).workflow
        await run(context, actor.chat_id, workflow.reply_command(actor, number, text, message_id))


async def on_progress(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/progress <number> <text>."""
    parsed = await _number_and_text(update, context, texts.PROGRESS_USAGE)
    if parsed is not None:
        actor, number, text, _ = parsed
        await run(context, actor.chat_id, services(context).workflow.progress(actor, number, text))


async def on_dispatch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/dispatch <number> <team_id>."""
    actor = actor_of(update, context)
    if actor is None:
        return
    args = args_text(context)
    if len(args) != 2:
        usage = texts.DISPATCH_USAGE.format(teams=", ".join(TEAM_NAMES))
        await send_replies(context, actor.chat_id, [Reply(usage)])
        return
    await run(
        context, actor.chat_id, services(context).workflow.dispatch_number(actor, args[0], args[1])
    )


async def on_cohandle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cohandle <number> [-]<team_id>: add (or remove) a co-handling team."""
    actor = actor_of(update, context)
    if actor is None:
        return
    args = args_text(context)
    if len(args) != 2:
        usage = texts.COHANDLE_USAGE.format(teams=", ".join(TEAM_NAMES))
        await send_replies(context, actor.chat_id, [Reply(usage)])
        return
    await run(
        context, actor.chat_id, services(context).workflow.set_co_team(actor, args[0], args[1])
    )


async def on_merge(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/merge <merged> <main>: handle the first ticket under the second (合并)."""
    workflow = services(context).workflow
    await _with_numbers(
        update, context, 2, texts.MERGE_USAGE, lambda a, n: workflow.merge(a, n[0], n[1])
    )


async def on_unmerge(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/unmerge <number>: 撤销合并."""
    workflow = services(context).workflow
    await _with_numbers(
        update, context, 1, texts.UNMERGE_USAGE, lambda a, n: workflow.unmerge_number(a, n[0])
    )


async def on_lead(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/lead in a team group: the sender, or (admins) the author of the replied message."""
    actor = actor_of(update, context)
    message = update.effective_message
    if actor is None or message is None or actor.private:
        return
    target = message.reply_to_message.from_user if message.reply_to_message else None
    lead_id, lead_name = (
        (qualify(TELEGRAM, target.id), target.full_name) if target else (actor.id, actor.name)
    )
    await run(
        context, actor.chat_id, services(context).followup.set_lead(actor, lead_id, lead_name)
    )


async def on_extend(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/extend <number> <workdays> <reason>: ask the coordinators for more time."""
    actor = actor_of(update, context)
    message = update.effective_message
    if actor is None or message is None:
        return
    args = args_text(context)
    if len(args) < 3 or not args[1].isdigit():
        limit = services(context).settings.extension_max_workdays
        await send_replies(context, actor.chat_id, [Reply(texts.EXTEND_USAGE.format(max=limit))])
        return
    reason = clean(message.text or "").split(maxsplit=3)[-1]
    followup = services(context).followup
    await run(
        context, actor.chat_id, followup.request(actor, args[0], "extension", int(args[1]), reason)
    )


async def on_longterm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/longterm <number> <reason>: ask for 长期跟踪."""
    parsed = await _number_and_text(update, context, texts.LONGTERM_USAGE)
    if parsed is not None:
        actor, number, reason, _ = parsed
        followup = services(context).followup
        await run(
            context, actor.chat_id, followup.request(actor, number, "long_term", None, reason)
        )


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats [week|month|year]: this team's figures, or everyone's for coordinators/leaders."""
    actor = actor_of(update, context)
    if actor is None:
        return
    args = args_text(context)
    kind = STATS_KINDS.get(args[0].lower() if args else "week")
    if kind is None:
        await send_replies(context, actor.chat_id, [Reply(texts.STATS_USAGE)])
        return
    await run(context, actor.chat_id, services(context).reports.stats_for(actor, kind))


async def on_export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/export [from] [to] in the coordinators' group: the 问题台账 as an .xlsx file."""
    actor = actor_of(update, context)
    if actor is None:
        return
    svc = services(context)
    args = args_text(context)
    days = [parse_day(a) for a in args[:2]]
    if len(args) > 2 or any(d is None for d in days):
        await send_replies(context, actor.chat_id, [Reply(texts.EXPORT_USAGE)])
        return
    start = days[0] if days else None
    end = days[1] if len(days) > 1 else None
    with tempfile.TemporaryDirectory() as folder:
        now = svc.workflow.now()
        path = Path(folder) / f"问题台账-{now:%Y%m%d-%H%M}.xlsx"
        try:
            _, rows = await svc.reports.export_for(actor, path, start=start, end=end)
        except YimiError as exc:
            await send_replies(context, actor.chat_id, [Reply(exc.reply)])
            return
        period = f"{start or '…'} 至 {end or '…'}" if args else texts.EXPORT_ALL
        caption = texts.EXPORT_CAPTION.format(
            period=period, rows=rows, who=actor.name, at=f"{now:%Y-%m-%d %H:%M}"
        )
        try:
            await context.bot.send_document(
                chat_of(actor.chat_id), path.read_bytes(), filename=path.name, caption=caption
            )
        except TelegramError as exc:
            logger.error("ledger not sent to %s: %s", actor.chat_id, exc)
            await send_replies(context, actor.chat_id, [Reply(texts.ERROR_GENERIC)])
