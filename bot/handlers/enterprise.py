"""Private chats: /start, registration, reports, replies to the team, ratings' companions."""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot import texts
from bot.handlers.common import actor_of, args_text, run, send_replies, services
from bot.keyboards import Reply


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


# Characters that show nothing: a text made only of them (and spaces) is not a report.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u202a\u202b\u202c\u202d\u202e")
)


def visible(text: str) -> bool:
    """Whether the text shows anything at all."""
    return bool(text.translate(_INVISIBLE).strip())


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
    """Anything a user sends privately: registration answer, awaited result, reply, or report."""
    message = update.effective_message
    actor = actor_of(update, context)
    if message is None or actor is None:
        return
    workflow = services(context).workflow
    text = message.text or message.caption or ""
    if message.contact is not None:
        if await workflow.needs_registration(actor):
            await run(
                context,
                actor.chat_id,
                workflow.registration_input(
                    actor,
                    contact_phone=message.contact.phone_number,
                    contact_user_id=message.contact.user_id,
                ),
            )
        else:
            await send_replies(context, actor.chat_id, [Reply(texts.UNSUPPORTED_MESSAGE)])
        return
    attachment = _attachment(message)
    location = (message.location.latitude, message.location.longitude) if message.location else None
    if not visible(text) and attachment is None and location is None:
        await send_replies(context, actor.chat_id, [Reply(texts.UNSUPPORTED_MESSAGE)])
        return
    if (
        await workflow.needs_registration(actor)
        and text
        and attachment is None
        and location is None
    ):
        await run(context, actor.chat_id, workflow.registration_input(actor, text=text))
        return
    if await workflow.awaited(actor) is not None and text:
        await run(context, actor.chat_id, workflow.complete_awaited(actor, text))
        return
    if message.reply_to_message is not None:
        linked = await workflow.linked(actor.chat_id, message.reply_to_message.message_id)
        if linked is not None and linked[1] in ("relay", "result", "details"):
            call = (
                workflow.relay_to_firm(actor, linked[0], text, message.message_id)
                if linked[1] == "details"
                else workflow.relay_to_team(actor, linked[0], text, message.message_id, attachment)
            )
            await run(context, actor.chat_id, call)
            return
    await run(
        context,
        actor.chat_id,
        workflow.report(actor, message.message_id, text, attachment=attachment, location=location),
    )


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
    edit_id = -(
        message.message_id * 100_000 + int(message.edit_date.timestamp()) % 100_000
        if message.edit_date
        else message.message_id
    )
    await run(
        context,
        actor.chat_id,
        workflow.report(actor, edit_id, message.text or message.caption or ""),
    )


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command we do not have."""
    actor = actor_of(update, context)
    if actor is not None:
        await send_replies(context, actor.chat_id, [Reply(texts.UNKNOWN_COMMAND)])
