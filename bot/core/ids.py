"""Channel-qualified identities: every user, chat and outbox target id is '<channel>:<id>'.

A ticket's firm may write on one channel and its team work on another, so ids are never bare
platform numbers outside a channel's own folder: 'telegram:42' (a user, and that user's private
chat), 'telegram:-100123' (a group), 'wecom:zhangsan', 'wxkf:wmAbC'. Message ids are the
platform's, as text, and are unique only within their (qualified) chat.
"""

from __future__ import annotations

TELEGRAM = "telegram"


def qualify(channel: str, raw: int | str) -> str:
    """The qualified id of a platform id."""
    return f"{channel}:{raw}"


def channel_of(ident: str) -> str:
    """The channel part of a qualified id."""
    return ident.partition(":")[0]


def raw_of(ident: str) -> str:
    """The platform's own id inside a qualified id."""
    return ident.partition(":")[2]
