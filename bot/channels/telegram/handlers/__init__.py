"""register(app): the one ordered list of handlers, plus the error handler."""

from __future__ import annotations

from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.channels.telegram.handlers import callbacks, coordinator, enterprise, errors, team

PRIVATE = filters.ChatType.PRIVATE
GROUPS = filters.ChatType.GROUPS


def register(app: Application) -> None:  # type: ignore[type-arg]
    """All handlers in order; the first match in group 0 wins."""
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, team.on_migrate), group=-1)
    app.add_handlers(
        [
            CommandHandler("start", enterprise.on_start, filters=PRIVATE),
            CommandHandler("help", enterprise.on_help),
            CommandHandler("my", enterprise.on_my, filters=PRIVATE),
            CommandHandler("profile", enterprise.on_profile, filters=PRIVATE),
            CommandHandler("withdraw", enterprise.on_withdraw, filters=PRIVATE),
            CommandHandler("ticket", coordinator.on_ticket),
            CommandHandler("reply", coordinator.on_reply),
            CommandHandler("progress", coordinator.on_progress),
            CommandHandler("dispatch", coordinator.on_dispatch),
            CommandHandler("cohandle", coordinator.on_cohandle),
            CommandHandler("merge", coordinator.on_merge),
            CommandHandler("unmerge", coordinator.on_unmerge),
            CommandHandler("related", coordinator.on_related),
            CommandHandler("lead", coordinator.on_lead, filters=GROUPS),
            CommandHandler("extend", coordinator.on_extend),
            CommandHandler("longterm", coordinator.on_longterm),
            CommandHandler("stats", coordinator.on_stats, filters=GROUPS),
            CommandHandler("export", coordinator.on_export, filters=GROUPS),
            CommandHandler("bind", team.on_bind),
            CommandHandler("unbind", team.on_unbind),
            CommandHandler("teams", team.on_teams),
            CallbackQueryHandler(callbacks.on_callback),
            MessageHandler(filters.UpdateType.EDITED_MESSAGE & PRIVATE, enterprise.on_edited),
            MessageHandler(
                PRIVATE
                & filters.UpdateType.MESSAGE
                & (
                    (filters.TEXT & ~filters.COMMAND)
                    | filters.PHOTO
                    | filters.Document.ALL
                    | filters.VOICE
                    | filters.VIDEO
                    | filters.AUDIO
                    | filters.LOCATION
                    | filters.CONTACT
                ),
                enterprise.on_private_message,
            ),
            MessageHandler(PRIVATE & filters.COMMAND, enterprise.on_unknown_command),
            MessageHandler(PRIVATE & filters.UpdateType.MESSAGE, enterprise.on_unsupported),
            MessageHandler(
                GROUPS
                & filters.UpdateType.MESSAGE
                & (filters.TEXT | filters.CAPTION)
                & ~filters.COMMAND,
                team.on_group_message,
            ),
        ]
    )
    app.add_error_handler(errors.on_error)
