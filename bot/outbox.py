"""The delivery loop: sends what the workflow stored in the outbox, in order per chat.

Platform-neutral: a `Sender` (Telegram's lives in bot/telegram_sender.py) does the sending and
raises the delivery errors below; this module decides retries, waits and what to tell whom.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol

from bot import texts
from bot.db import Database, Repo
from bot.keyboards import Keyboard, card_keyboard, details_keyboard, team_choice_keyboard
from bot.models import COORDINATOR, Ticket, TicketState, team_name
from bot.workflow import Clock, enqueue, message

logger = logging.getLogger(__name__)

MAX_BACKOFF = 300.0


class DeliveryError(Exception):
    """Base of what a Sender raises."""


class RetryLater(DeliveryError):
    """Flood control (429): try again after `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds


class Transient(DeliveryError):
    """Network error, timeout or 5xx: retry with backoff."""


class Unreachable(DeliveryError):
    """Forbidden / chat not found: the recipient cannot be reached now."""


class NotModified(DeliveryError):
    """An edit that changes nothing: success."""


class Rejected(DeliveryError):
    """A request the platform refuses (bad request): not retried."""


class Sender(Protocol):
    """Sends to one chat platform; returns the platform message id."""

    async def send_text(
        self,
        chat_id: int,
        text: str,
        buttons: list[list[dict[str, str]]] | None,
        *,
        reply_to: int | None = None,
        force_reply: bool = False,
    ) -> int: ...

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, buttons: list[list[dict[str, str]]] | None
    ) -> None: ...

    async def send_media(
        self, chat_id: int, media: str, file_id: str, caption: str | None
    ) -> int: ...

    async def send_upload(
        self, chat_id: int, filename: str, data: bytes, caption: str | None, *, photo: bool
    ) -> int: ...


def stored(buttons: Keyboard | None) -> list[list[dict[str, str]]] | None:
    """Keyboard as the sender takes it."""
    from bot.workflow import keyboard_payload

    return keyboard_payload(buttons)


def card_view(ticket: Ticket, purpose: str, chat_team: str | None) -> tuple[str, Keyboard | None]:
    """What a card shows in a chat now: buttons only where the ticket can still be acted on."""
    if purpose == "coord_card":
        text = texts.render_card(ticket, coordinator=True)
        if ticket.state == TicketState.PENDING_DISPATCH:
            return text, team_choice_keyboard(ticket.id, "dispatch")
        return text, None
    text = texts.render_card(ticket)
    if ticket.state == TicketState.PENDING_DISPATCH:
        return text + "\n\n（本工单已退回专班，等待重新分拨）", None
    if chat_team is not None and chat_team != ticket.team_id:
        return text + f"\n\n（本工单已改派至 {team_name(ticket.team_id)}）", None
    return text, card_keyboard(ticket.id, ticket.state.value)


class Delivery:
    """Sends due outbox rows; one task per chat keeps each chat's order."""

    def __init__(
        self,
        db: Database,
        sender: Sender,
        clock: Clock,
        poll: float = 0.5,
        admin_ids: Sequence[int] = (),
    ) -> None:
        self.admin_ids = list(admin_ids)
        self.db = db
        self.sender = sender
        self.clock = clock
        self.poll = poll
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy: set[int] = set()
        self.sent = 0

    def wake(self) -> None:
        """New rows are waiting: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Run the loop in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-delivery")

    async def stop(self) -> None:
        """Stop the loop (rows not yet sent stay pending for the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("outbox delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll)
            self._wake.clear()

    async def run_once(self) -> int:
        """Send everything due now; returns how many rows were handled."""
        async with self.db.read() as repo:
            rows = await repo.due_outbox(self.clock.now(), limit=500)
        by_chat: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            chat = row["chat_id"]
            if chat is None:
                chat = -(10**15) - int(row["ticket_id"] or 0)  # ticket-wide card edits
            if chat not in self._busy:
                by_chat[chat].append(row)
        if not by_chat:
            return 0
        await asyncio.gather(
            *(self._send_chat(chat, chat_rows) for chat, chat_rows in by_chat.items())
        )
        return len(rows)

    async def _send_chat(self, chat: int, rows: Sequence[dict[str, Any]]) -> None:
        self._busy.add(chat)
        try:
            for row in rows:
                if not await self._deliver(row):
                    break  # keep order: later rows of this chat wait for this one
        finally:
            self._busy.discard(chat)

    async def _deliver(self, row: dict[str, Any]) -> bool:
        now = self.clock.now()
        try:
            message_id, link = await self._send(row)
        except NotModified:
            message_id, link = None, None
        except RetryLater as exc:
            await self._reschedule(row, exc.seconds, str(exc), count=False)
            return False
        except Transient as exc:
            delay = min(MAX_BACKOFF, 2.0 ** min(int(row["attempts"]), 8))
            await self._reschedule(row, delay, str(exc), count=True)
            return False
        except Unreachable as exc:
            await self._unreachable(row, str(exc))
            return True
        except Rejected as exc:
            logger.error("outbox %s rejected: %s", row["id"], exc)
            async with self.db.tx() as repo:
                await repo.update_outbox(row["id"], status="failed", error=str(exc)[:500])
            return True
        async with self.db.tx() as repo:
            await repo.update_outbox(
                row["id"],
                status="sent",
                sent_at=now,
                message_id=message_id,
                attempts=int(row["attempts"]) + 1,
            )
            if message_id is not None and link and row["ticket_id"] is not None:
                await repo.link_message(row["chat_id"], message_id, row["ticket_id"], link)
        self.sent += 1
        return True

    async def _reschedule(
        self, row: dict[str, Any], delay: float, error: str, *, count: bool
    ) -> None:
        logger.warning(
            "outbox %s to %s: %s; retry in %.1fs", row["id"], row["chat_id"], error, delay
        )
        async with self.db.tx() as repo:
            await repo.update_outbox(
                row["id"],
                next_at=self.clock.now() + timedelta(seconds=delay),
                attempts=int(row["attempts"]) + (1 if count else 0),
                error=error[:500],
            )

    async def _unreachable(self, row: dict[str, Any], error: str) -> None:
        """A user who never started the bot waits for /start; anything else is reported."""
        target = str(row["target"] or "")
        now = self.clock.now()
        async with self.db.tx() as repo:
            user = await repo.get_user(int(target[5:])) if target.startswith("user:") else None
            ticket = await repo.get_ticket(row["ticket_id"]) if row["ticket_id"] else None
            staff = user is not None and (
                user.is_staff or (ticket is not None and ticket.reporter_id != user.id)
            )
            if staff and user is not None:
                await repo.update_outbox(
                    row["id"], status="waiting", chat_id=None, error=error[:500]
                )
                await repo.update_user(user.id, now, private_started=0)
                return
            await repo.update_outbox(row["id"], status="failed", error=error[:500])
            if ticket is None:
                return
            await repo.update_ticket(ticket.id, undelivered=1, updated_at=now)
            await repo.insert_event(
                ticket.id,
                None,
                "undelivered",
                ticket.state.value,
                ticket.state.value,
                {"target": target, "error": error},
                now,
            )
            note = texts.UNDELIVERED.format(
                target="企业" if target.startswith("user:") else escape_target(target),
                reason=error[:80],
                number=ticket.number or "",
            )
            coord_chat = await repo.get_team_chat(COORDINATOR)
            if coord_chat is not None and coord_chat != row["chat_id"]:
                await enqueue(repo, now, COORDINATOR, "message", message(note), ticket.id)
            else:
                await enqueue(repo, now, "admins", "message", message(note), ticket.id)
            await enqueue(repo, now, f"ticket:{ticket.id}", "card_edit", {}, ticket.id)
        logger.error("outbox %s unreachable (%s): %s", row["id"], target, error)

    async def _send(self, row: dict[str, Any]) -> tuple[int | None, str | None]:
        kind = row["kind"]
        payload = row["payload"]
        chat_id = row["chat_id"]
        if kind == "card_edit":
            await self._edit_cards(row["ticket_id"])
            return None, None
        if row["target"] == "admins":
            await self._to_admins(payload["text"])
            return None, None
        if kind in ("card", "details"):
            async with self.db.read() as repo:
                ticket = await repo.get_ticket(row["ticket_id"])
                attachments = await repo.attachments(row["ticket_id"])
                binding = await repo.get_binding(chat_id)
            assert ticket is not None
            if kind == "details":
                text = texts.render_details(ticket, attachments)
                details = details_keyboard(ticket.id, ticket.first_contact_at is not None)
                return await self.sender.send_text(chat_id, text, stored(details)), "details"
            purpose = "coord_card" if payload.get("coordinator") else "card"
            text, buttons = card_view(ticket, purpose, binding.team_id if binding else None)
            return await self.sender.send_text(chat_id, text, stored(buttons)), purpose
        if kind == "upload":
            return (
                await self.sender.send_upload(
                    chat_id,
                    payload["filename"],
                    bytes.fromhex(payload["data"]),
                    payload.get("caption"),
                    photo=bool(payload.get("photo")),
                ),
                None,
            )
        if kind == "media":
            return (
                await self.sender.send_media(
                    chat_id, payload["media"], payload["file_id"], payload.get("caption")
                ),
                payload.get("link"),
            )
        reply_to = None
        if payload.get("reply_to") and row["ticket_id"] is not None:
            reply_to = await self._linked_message(row["ticket_id"], chat_id, payload["reply_to"])
        message_id = await self.sender.send_text(
            chat_id,
            payload["text"],
            payload.get("buttons"),
            reply_to=reply_to,
            force_reply=bool(payload.get("force_reply")),
        )
        return message_id, payload.get("link")

    async def _to_admins(self, text: str) -> None:
        for admin in self.admin_ids:
            try:
                await self.sender.send_text(admin, text, None)
            except (Unreachable, Rejected) as exc:
                logger.error("admin %s not reachable: %s", admin, exc)

    async def _linked_message(self, ticket_id: int, chat_id: int, purpose: str) -> int | None:
        async with self.db.read() as repo:
            cards = await repo.card_messages(ticket_id)
        matches = [m for c, m, p in cards if c == chat_id and p in (purpose, "coord_card")]
        return matches[-1] if matches else None

    async def _edit_cards(self, ticket_id: int) -> None:
        async with self.db.read() as repo:
            ticket = await repo.get_ticket(ticket_id)
            cards = await repo.card_messages(ticket_id)
            bindings = {b.chat_id: b.team_id for b in await repo.list_bindings()}
        assert ticket is not None
        for chat_id, message_id, purpose in cards:
            if purpose not in ("card", "coord_card"):
                continue
            text, buttons = card_view(ticket, purpose, bindings.get(chat_id))
            try:
                await self.sender.edit_text(chat_id, message_id, text, stored(buttons))
            except NotModified:
                continue
            except (Unreachable, Rejected) as exc:
                logger.warning("card %s in %s not edited: %s", message_id, chat_id, exc)


def escape_target(target: str) -> str:
    """A target as people read it."""
    if target.startswith("team:"):
        return team_name(target[5:])
    return target


async def pending_counts(repo: Repo) -> dict[str, int]:
    """Outbox rows by status (for health and tests)."""
    return await repo.outbox_counts()
