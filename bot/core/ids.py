"""Channel-qualified identities: every user, chat and outbox target id is '<channel>:<id>'.

A ticket's firm may write on one channel and its team work on another, so ids are never bare
platform numbers outside a channel's own folder: 'telegram:42' (a user, and that user's private
chat), 'telegram:-100123' (a group), 'wecom:zhangsan' (a WeCom member and their app chat),
'wecom:dept:3' / 'wecom:tag:7' (a team as a WeCom department or tag: its members get what is
sent to the group in their app chats), 'wxkf:wmAbC' (a firm on WeChat, through 微信客服).
Message ids are the platform's, as text, and are unique only within their (qualified) chat.
"""

from __future__ import annotations

TELEGRAM = "telegram"
WECOM = "wecom"  # members of the county's WeCom organisation, in the app chat
WXKF = "wxkf"  # firms on personal WeChat, through the 微信客服 account


def qualify(channel: str, raw: int | str) -> str:
    """The qualified id of a platform id."""
    return f"{channel}:{raw}"


def channel_of(ident: str) -> str:
    """The channel part of a qualified id."""
    return ident.partition(":")[0]


def raw_of(ident: str) -> str:
    """The platform's own id inside a qualified id."""
    return ident.partition(":")[2]
