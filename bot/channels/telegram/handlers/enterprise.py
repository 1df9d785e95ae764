"""Private chats: /start, registration, reports, replies to the team, ratings' companions."""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.channels.telegram.handlers.common import actor_of, args_text, run, send_replies, services
from bot.core.ids import TELEGRAM, qualify
from bot.core.ports import Incoming, clean
from bot.render import texts
from bot.render.keyboards import Reply


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start [staff]: registration for firms, the work chat for team members."""
    actor = actor_of(update, context)
    if actor is None:
        return
    payload = args_text(context)[0] if context.args else ""
    await run(context, actor.chat_id, services(context).workflow.start(actor, payload))


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help, by chat type."""
    actor = actor_of(update, context)
    if actor is None:
        return
    if actor.private:
        text = texts.HELP_PRIVATE
    else:
        team = await services(context).workflow.binding_of(actor.chat_id)
        text = texts.HELP_COORDINATOR if team == "coordinator" else texts.HELP_GROUP
    await send_replies(context, actor.chat_id, [Reply(text)])


async def on_my(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/my: the firm's tickets."""
    actor = actor_of(update, context)
    if actor is not None:
        await run(context, actor.chat_id, services(context).workflow.my_tickets(actor))


async def on_profile(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/profile [edit]."""
    actor = actor_of(update, context)
    if actor is not None:
        edit = bool(context.args) and args_text(context)[0] in ("edit", "修改")
        await run(context, actor.chat_id, services(context).workflow.profile(actor, edit))


async def on_withdraw(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/withdraw <number>."""
    actor = actor_of(update, context)
    if actor is None:
        return
    if not context.args:
        await send_replies(context, actor.chat_id, [Reply(texts.WITHDRAW_USAGE)])
        return
    await run(
        context, actor.chat_id, services(context).workflow.withdraw(actor, args_text(context)[0])
    )


def _attachment(message: Message) -> tuple[str, str] | None:
    if message.photo:
        return "photo", message.photo[-1].file_id
    if message.document:
        return "document", message.document.file_id
    if message.voice:
        return "voice", message.voice.file_id
    if message.video:
        return "video", message.video.file_id
    if message.audio:
        return "document", message.audio.file_id
    return None


async def on_private_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Anything a user sends privately: the workflow decides what it is."""
    message = update.effective_message
    actor = actor_of(update, context)
    if message is None or actor is None:
        return
    location = message.location
    contact = message.contact
    incoming = Incoming(
        message_id=str(message.message_id),
        text=message.text or message.caption or "",
        attachment=_attachment(message),
        location=(location.latitude, location.longitude) if location else None,
        contact=(
            (contact.phone_number, qualify(TELEGRAM, contact.user_id) if contact.user_id else None)
            if contact
            else None
        ),
        reply_to=str(message.reply_to_message.message_id) if message.reply_to_message else None,
    )
    await run(context, actor.chat_id, services(context).workflow.private_message(actor, incoming))


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, polls, someone's contact card outside registration...: a clear answer."""
    actor = actor_of(update, context)
    if actor is not None:
        await send_replies(context, actor.chat_id, [Reply(texts.UNSUPPORTED_MESSAGE)])


async def on_edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edited private message: its new text joins the draft (the old one is kept too)."""
    message = update.edited_message
    actor = actor_of(update, context)
    if message is None or actor is None or not (message.text or message.caption):
        return
    workflow = services(context).workflow
    if await workflow.needs_registration(actor):
        return
    # A new id in a space of its own, so the edit is taken once and never mistaken for a message.
    stamp = int(message.edit_date.timestamp()) if message.edit_date else 0
    edit_id = f"{message.message_id}.edit{stamp}"
    await run(
        context,
        actor.chat_id,
        workflow.report(actor, edit_id, clean(message.text or message.caption or "")),
    )


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command we do not have."""
    actor = actor_of(update, context)
    if actor is not None:
        await send_replies(context, actor.chat_id, [Reply(texts.UNKNOWN_COMMAND)])
