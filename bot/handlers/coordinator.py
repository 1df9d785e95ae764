"""Commands for staff in any chat: /ticket, /reply, /progress, /dispatch."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import texts
from bot.handlers.common import actor_of, args_text, run, send_replies, services
from bot.keyboards import Reply
from bot.models import TEAM_NAMES


async def on_ticket(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ticket <number>."""
    actor = actor_of(update, context)
    if actor is None:
        return
    if not context.args:
        await send_replies(context, actor.chat_id, [Reply(texts.TICKET_USAGE)])
        return
    await run(context, actor.chat_id, services(context).workflow.view(actor, args_text(context)[0]))


async def on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reply <number> <text>: firm to team or team to firm."""
    actor = actor_of(update, context)
    message = update.effective_message
    if actor is None or message is None:
        return
    args = args_text(context)
    if len(args) < 2:
        await send_replies(context, actor.chat_id, [Reply(texts.REPLY_USAGE)])
        return
    text = (message.text or "").split(maxsplit=2)[-1]
    await run(
        context,
        actor.chat_id,
        services(context).workflow.reply_command(actor, args[0], text, message.message_id),
    )


async def on_progress(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/progress <number> <text>."""
    actor = actor_of(update, context)
    message = update.effective_message
    if actor is None or message is None:
        return
    args = args_text(context)
    if len(args) < 2:
        await send_replies(context, actor.chat_id, [Reply(texts.PROGRESS_USAGE)])
        return
    text = (message.text or "").split(maxsplit=2)[-1]
    await run(context, actor.chat_id, services(context).workflow.progress(actor, args[0], text))


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


async def on_lead(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/lead in a team group: the sender, or (admins) the author of the replied message."""
    actor = actor_of(update, context)
    message = update.effective_message
    if actor is None or message is None or actor.private:
        return
    target = message.reply_to_message.from_user if message.reply_to_message else None
    lead_id, lead_name = (target.id, target.full_name) if target else (actor.id, actor.name)
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
    limit = services(context).settings.extension_max_workdays
    if len(args) < 3 or not args[1].isdigit() or not 1 <= int(args[1]) <= limit:
        await send_replies(context, actor.chat_id, [Reply(texts.EXTEND_USAGE.format(max=limit))])
        return
    reason = (message.text or "").split(maxsplit=3)[-1]
    followup = services(context).followup
    await run(
        context, actor.chat_id, followup.request(actor, args[0], "extension", int(args[1]), reason)
    )


async def on_longterm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/longterm <number> <reason>: ask for 长期跟踪."""
    actor = actor_of(update, context)
    message = update.effective_message
    if actor is None or message is None:
        return
    args = args_text(context)
    if len(args) < 2:
        await send_replies(context, actor.chat_id, [Reply(texts.LONGTERM_USAGE)])
        return
    reason = (message.text or "").split(maxsplit=2)[-1]
    await run(
        context,
        actor.chat_id,
        services(context).followup.request(actor, args[0], "long_term", None, reason),
    )
