"""Attachments between channels: a file a firm sent on one platform reaches a member on another.

A platform's file id means nothing to another platform. A Sender that can also download its own
platform's files implements `MediaSource`; the delivery loop, meeting a media row whose file id
another channel owns, fetches the bytes there and uploads them through the target's
`send_upload`. Each platform's size limits are data here: a file over the source's download
limit or the target's upload limit is not sent, and the chat gets a note saying so instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

MB = 1024 * 1024

# Telegram bots download files of at most 20 MB (getFile) and upload photos of 10 MB and
# documents of 50 MB; WeCom's media/upload takes images of 10 MB, voice of 2 MB, video of 10 MB
# and files of 20 MB (a voice from another platform is sent as a file: its format differs).
TELEGRAM_DOWNLOAD = 20 * MB
TELEGRAM_UPLOAD = {"photo": 10 * MB, "document": 50 * MB}
WECOM_UPLOAD = {"image": 10 * MB, "voice": 2 * MB, "video": 10 * MB, "file": 20 * MB}


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A downloaded attachment."""

    name: str
    content_type: str
    data: bytes


class TooLarge(Exception):
    """A file over a platform's limit: sent as a note instead, not retried."""

    def __init__(self, platform: str, limit: int, size: int | None = None) -> None:
        shown = f"{size / MB:.1f} MB" if size is not None else "超过上限"
        super().__init__(f"{platform}: {shown} > {limit // MB} MB")
        self.platform = platform
        self.limit = limit
        self.size = size


@runtime_checkable
class MediaSource(Protocol):
    """A Sender that can also download its platform's files."""

    def owns(self, file_id: str) -> bool:
        """Whether the file id is one of this platform's."""
        ...

    async def fetch(self, file_id: str) -> MediaFile:
        """The file's bytes (TooLarge when the platform will not hand it out)."""
        ...


def check_size(platform: str, limit: int, size: int) -> None:
    """Raise TooLarge when `size` bytes exceed `limit`."""
    if size > limit:
        raise TooLarge(platform, limit, size)
