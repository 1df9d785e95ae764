"""The delivery loop: sends what the workflow stored in the outbox, in order per chat.

Platform-neutral: one `Sender` per channel (Telegram's is bot/channels/telegram/sender.py) does
the sending and raises the delivery errors below; chat ids are channel-qualified
(bot.core.ids), so each row goes to its channel's sender. This module decides retries, waits,
each channel's group pace (its limits are data: `ChannelLimits`) and what to tell whom.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from bot.core.ids import channel_of
from bot.core.models import COORDINATOR, Ticket, TicketState, team_name
from bot.core.ports import Clock
from bot.delivery.media import MB, MediaSource, TooLarge
from bot.render import texts
from bot.render.keyboards import (
    MAX_BUTTONS,
    Keyboard,
    batch_keyboard,
    card_keyboard,
    details_keyboard,
    discard_row,
    team_choice_keyboard,
)
from bot.storage import claims
from bot.storage.budget import Bucket, SharedBudget
from bot.storage.db import Database, Repo, ts
from bot.storage.health import STORAGE_ERRORS
from bot.storage.related import RelatedRepo
from bot.workflow.outbound import enqueue, keyboard_payload, message, to_coordinators

logger = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
# Room per listed ticket for what later edits add (state, claimer) to a batch card.
BATCH_EDIT_ROOM = 24


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


class NotNow(DeliveryError):
    """The recipient takes no more messages until they write again (微信客服: five messages in
    the 48 hours after the firm's last one): the row waits for them."""


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """A channel's sending limits, as data: how many messages a group takes per `period`
    (a few at once, then spread out), and whether queued cards for a group collapse into one
    batch card."""

    group_limit: int = 20
    group_period: float = 60.0
    group_burst: int = 6
    batch_cards: bool = True


@dataclass(slots=True)
class RowSends:
    """The outbox row a Sender is sending now. A platform that deduplicates by an id the caller
    chooses (微信客服's msgid) takes ids from it: the same row gives the same ids in the same
    order each time it is sent, so a row sent again after a crash is not delivered twice."""

    key: str
    kind: str = ""  # the row's kind: "card" and "details" are edited later
    parts: int = field(default=0)

    def next_id(self) -> str:
        """The id of the next message this row's sending makes (at most 32 characters)."""
        self.parts += 1
        return f"{self.key}p{self.parts}"


# Set by the delivery loop around each row's send; None outside it (edits, admins' notes).
current_row: ContextVar[RowSends | None] = ContextVar("current_row", default=None)


def row_sends(row: Mapping[str, Any]) -> RowSends:
    """The row's identity: its id and a digest of when it was made (a database restored or
    made anew reuses ids, not with the same creation time)."""
    made = hashlib.sha1(str(row.get("created_at", "")).encode()).hexdigest()[:8]
    return RowSends(f"ym{row['id']}t{made}", str(row.get("kind", "")))


class Sender(Protocol):
    """Sends to one chat platform; returns the platform message id (as text).

    Texts are neutral markup (bot.render.markup): the sender renders them for its platform.
    """

    limits: ChannelLimits

    def is_group(self, chat_id: str) -> bool:
        """Whether a (qualified) chat id is a group chat on this platform."""
        ...

    async def send_text(
        self,
        chat_id: str,
        text: str,
        buttons: list[list[dict[str, str]]] | None,
        *,
        reply_to: str | None = None,
        force_reply: bool = False,
    ) -> str: ...

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: list[list[dict[str, str]]] | None
    ) -> None: ...

    async def send_media(
        self, chat_id: str, media: str, file_id: str, caption: str | None
    ) -> str: ...

    async def send_upload(
        self, chat_id: str, filename: str, data: bytes, caption: str | None, *, photo: bool
    ) -> str: ...


def card_view(
    ticket: Ticket,
    purpose: str,
    chat_team: str | None,
    related: Sequence[tuple[str, str]] = (),
) -> tuple[str, Keyboard | None]:
    """What a card shows in a chat now: buttons only where the ticket can still be acted on;
    `related` (number, reason) the tickets found probably the same problem."""
    if purpose == "co_card":  # read-only: the lead team acts, the co-handling team follows
        return texts.render_card(ticket, co_team=chat_team, related=related), None
    if purpose == "coord_card":
        text = texts.render_card(ticket, coordinator=True, related=related)
        if ticket.state == TicketState.PENDING_DISPATCH:
            return text, [*team_choice_keyboard(ticket.id, "dispatch"), discard_row(ticket.id)]
        return text, None
    text = texts.render_card(ticket, related=related)
    if ticket.state == TicketState.MERGED:  # "已合并到 YM-…", nothing left to press
        return text, None
    if ticket.state == TicketState.PENDING_DISPATCH:
        return text + "\n\n（本工单已退回专班，等待重新分拨）", None
    if chat_team is not None and chat_team != ticket.team_id:
        return text + f"\n\n（本工单已改派至 {team_name(ticket.team_id)}）", None
    return text, card_keyboard(ticket.id, ticket.state.value)


async def related_of(repo: Repo, ticket: Ticket | None) -> list[tuple[str, str]]:
    """(number, reason) of the tickets found related at the ticket's submission, best first."""
    if ticket is None:
        return []
    links = await RelatedRepo(repo).links(ticket.id, both=False)
    return [
        (link.number, texts.related_reason(link.place, ticket.town, link.words, link.same_firm))
        for link in links
    ]


def batch_view(
    tickets: Sequence[Ticket],
    chat_team: str | None,
    related: Mapping[int, Sequence[str]] | None = None,
) -> tuple[str, Keyboard | None]:
    """A batch card now: every listed ticket with its state (and related numbers), 签收 for
    those still waiting."""
    text = texts.render_batch_card(tickets, chat_team, related)
    claimable = [
        (index, ticket.id)
        for index, ticket in enumerate(tickets, 1)
        if ticket.state == TicketState.PENDING_CLAIM
        and (chat_team is None or chat_team == ticket.team_id)
    ]
    return text, batch_keyboard(claimable)


def collapsible(row: dict[str, Any], sender: Sender) -> bool:
    """A team card for a group chat of a channel that batches cards (coordinator cards keep
    their dispatch buttons)."""
    return (
        row["kind"] == "card"
        and row["chat_id"] is not None
        and sender.limits.batch_cards
        and sender.is_group(row["chat_id"])
        and not row["payload"].get("coordinator")
        and not row["payload"].get("co")
    )


class GroupPace:
    """A group takes `limit` messages a `period` (Telegram: 20 a minute): a few at once, then
    spread out.

    The first `burst` cards in a minute go at once; later ones at least `period / (limit -
    burst)` apart, so a group never exceeds `limit` in any `period` and cards queued meanwhile
    leave together as one batch card instead of waiting a minute after a 429.
    """

    def __init__(self, limit: int = 20, period: float = 60.0, burst: int = 6) -> None:
        self.limit = limit
        self.period = period
        self.burst = burst
        self.spacing = period / max(1, limit - burst)
        self._sent: dict[str, deque[float]] = defaultdict(deque)

    def delay(self, chat_id: str, now: float) -> float:
        """Seconds to wait before the next card to this group."""
        sent = self._sent[chat_id]
        while sent and sent[0] <= now - self.period:
            sent.popleft()
        if len(sent) >= self.limit:
            return sent[len(sent) - self.limit] + self.period - now
        if len(sent) < self.burst:
            return 0.0
        return max(0.0, sent[-1] + self.spacing - now)

    def record(self, chat_id: str, now: float) -> None:
        """A message went to this group."""
        self._sent[chat_id].append(now)


class Delivery:
    """Sends due outbox rows; one task per chat keeps each chat's order."""

    def __init__(
        self,
        db: Database,
        senders: dict[str, Sender],
        clock: Clock,
        poll: float = 0.5,
        admin_ids: Sequence[str] = (),
    ) -> None:
        self.admin_ids = list(admin_ids)
        self.senders = senders
        self.paces = {
            channel: GroupPace(s.limits.group_limit, s.limits.group_period, s.limits.group_burst)
            for channel, s in senders.items()
        }
        self._chat_tasks: set[asyncio.Task[None]] = set()
        self.db = db
        self.clock = clock
        self.poll = poll
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy: set[str] = set()
        self._claims: dict[str, int] = {}  # shared database: chat -> session that claimed it
        self.budget: SharedBudget | None = None  # several processes: the group pace shared
        self.shared_chats = 64  # chats one process claims at most at a time (shared database)
        self.sent = 0
        # For /metrics and /healthz: failures by kind since start, and when the loop last
        # went round (time.monotonic()).
        self.failures: Counter[str] = Counter()
        self.last_round: float | None = None

    def add_sender(self, channel: str, sender: Sender) -> None:
        """A channel started after the services were opened (its sender needs the database)."""
        self.senders[channel] = sender
        limits = sender.limits
        self.paces[channel] = GroupPace(limits.group_limit, limits.group_period, limits.group_burst)

    def sender(self, chat_id: str) -> Sender:
        """The sender of a qualified chat id's channel."""
        return self.senders[channel_of(chat_id)]

    @property
    def running(self) -> bool:
        """Whether the background loop is running (not stopped, not crashed)."""
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """New rows are waiting: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Run the loop in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-delivery")

    async def stop(self) -> None:
        """Stop the loop (rows not yet sent stay pending for the next start)."""
        tasks = [t for t in (self._task, *self._chat_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._chat_tasks.clear()

    async def _run(self) -> None:
        # Each chat's rows go in a task of its own, not awaited here: a group waiting for its
        # rate limit must not hold back the receipts of everyone else.
        # While the database refuses writes the loop goes on, only less often.
        while True:
            self.last_round = time.monotonic()
            try:
                for chat, chat_rows in (await self._due_by_chat()).items():
                    task = asyncio.create_task(self._send_chat(chat, chat_rows))
                    self._chat_tasks.add(task)
                    task.add_done_callback(self._chat_done)
            except STORAGE_ERRORS as exc:
                self.db.health.failed(exc)
            except Exception:
                logger.exception("outbox delivery round failed")
            wait = 5 * self.poll if self.db.health.failing else self.poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()

    def _chat_done(self, task: asyncio.Task[None]) -> None:
        self._chat_tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, STORAGE_ERRORS):
            self.db.health.failed(error)  # reported once; the rows stay due
        elif error is not None:
            logger.error("outbox chat task failed", exc_info=error)
        self.wake()  # rows that came for this chat meanwhile

    async def run_once(self) -> int:
        """Send everything due now; returns how many rows were handled."""
        by_chat = await self._due_by_chat()
        if not by_chat:
            return 0
        await asyncio.gather(
            *(self._send_chat(chat, chat_rows) for chat, chat_rows in by_chat.items())
        )
        return sum(len(chat_rows) for chat_rows in by_chat.values())

    async def _due_by_chat(self) -> dict[str, list[dict[str, Any]]]:
        """Due rows of the chats no task is sending to, marked busy before any await.

        On a shared database (PostgreSQL) only the chats this process could claim
        (bot.storage.claims), their rows read again once claimed: another process may have
        sent them meanwhile."""
        now = self.clock.now()
        async with self.db.read() as repo:
            rows = await repo.outbox.due_outbox_except(now, self._busy, limit=500)
        by_chat = self._by_chat(rows)
        self._busy.update(by_chat)
        if not self.db.shared or not by_chat:
            return by_chat
        # At most `shared_chats` at once (the other processes take the rest), the first of
        # the due chats that no other process holds.
        wanted = list(by_chat)
        room = max(0, self.shared_chats - len(self._claims))
        mine: list[str] = []
        try:
            async with self.db.read() as repo:
                session = self.db.session
                mine = await claims.claim(repo.conn, claims.OUTBOX, wanted, room) if room else []
                for key in mine:
                    self._claims[key] = session
                rows = await repo.outbox.due_outbox_for(now, mine) if mine else []
        except BaseException:
            await self._release(mine)
            raise
        finally:
            self._busy.difference_update(k for k in by_chat if k not in self._claims)
        self._busy.difference_update(mine)  # busy again below, those with rows
        by_chat = self._by_chat(rows)
        self._busy.update(by_chat)
        empty = [key for key in mine if key not in by_chat]  # sent by another meanwhile
        if empty:
            await self._release(empty)
        return by_chat

    def _by_chat(self, rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        by_chat: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            chat = row["chat_id"]
            if chat is None:
                chat = f"ticket:{row['ticket_id']}"  # ticket-wide card edits
            if chat not in self._busy:
                by_chat[chat].append(row)
        return by_chat

    async def _release(self, keys: Sequence[str]) -> None:
        """Give up this process's claims on chats (those of an earlier session are gone)."""
        session = self.db.session
        mine = [k for k in keys if self._claims.pop(k, None) == session]
        self._busy.difference_update(keys)
        if mine:
            with contextlib.suppress(*STORAGE_ERRORS):  # a lost session has lost them anyway
                async with self.db.read() as repo:
                    await claims.release(repo.conn, claims.OUTBOX, mine)

    async def _send_chat(self, chat: str, rows: Sequence[dict[str, Any]]) -> None:
        done: set[int] = set()
        session = self._claims.get(chat)
        try:
            for row in rows:
                if row["id"] in done:
                    continue
                if session is not None and self.db.session != session:
                    break  # the connection was made again: the claim is gone, so is the chat
                if row["chat_id"] is not None and collapsible(row, self.sender(row["chat_id"])):
                    ok, sent_ids = await self._deliver_card(row)
                    done.update(sent_ids)
                else:
                    ok = await self._deliver(row)
                if not ok:
                    break  # keep order: later rows of this chat wait for this one
        finally:
            if session is None:
                self._busy.discard(chat)
            else:
                await self._release([chat])

    async def _deliver_card(self, row: dict[str, Any]) -> tuple[bool, set[int]]:
        """A team card: alone, or with the cards queued behind it for the group as one batch.

        Cards of a group leave in order: while the oldest waits for a retry, the others wait
        with it and go out together with it.
        """
        chat_id = str(row["chat_id"])
        sender = self.sender(chat_id)
        pace = self.paces[channel_of(chat_id)]
        done: set[int] = set()
        while True:
            wait = await self._pace(chat_id, sender.limits)
            if wait > 0:
                await asyncio.sleep(wait)
            now = ts(self.clock.now())
            async with self.db.tx() as repo:
                pending = [
                    r
                    for r in await repo.outbox.pending_outbox_for(chat_id, "card")
                    if collapsible(r, sender)
                ]
                if not any(r["id"] == row["id"] for r in pending):
                    return True, done  # sent meanwhile (listed in an earlier batch)
                first_at = pending[0]["next_at"]
                if first_at > now:
                    # An older card waits for a retry: the others wait with it, in order.
                    for r in pending:
                        if r["next_at"] < first_at:
                            await repo.outbox.update_outbox(r["id"], next_at=first_at)
                    return False, done
                binding = await repo.users.get_binding(chat_id)
                tickets = await repo.tickets.get_tickets([int(r["ticket_id"]) for r in pending])
                related = await RelatedRepo(repo).numbers_for([t.id for t in tickets])
            chat_team = binding.team_id if binding else None
            batch, listed = fit_batch(pending, tickets, chat_team, related)
            if len(batch) < 2:
                first = pending[0]
                if self.budget is None:
                    pace.record(chat_id, time.monotonic())
                ok, ids = await self._deliver(first), {int(first["id"])}
            else:
                ok, ids = await self._deliver_batch(chat_id, batch, listed, chat_team, related)
            done |= ids
            if not ok or row["id"] in done:
                return ok, done

    async def _pace(self, chat_id: str, limits: ChannelLimits) -> float:
        """Seconds before the next card to a group: this process's GroupPace, or with a shared
        budget (several processes) a reservation in the database's bucket for the group
        (`burst` at once, then `limit - burst` a `period`: never more than `limit` in any)."""
        if self.budget is None:
            return self.paces[channel_of(chat_id)].delay(chat_id, time.monotonic())
        rate = max(1, limits.group_limit - limits.group_burst) / limits.group_period
        return await self.budget.reserve([Bucket(f"cards:{chat_id}", rate, limits.group_burst)])

    async def _deliver_batch(
        self,
        chat_id: str,
        batch: Sequence[dict[str, Any]],
        listed: Sequence[Ticket],
        chat_team: str | None,
        related: Mapping[int, Sequence[str]] | None = None,
    ) -> tuple[bool, set[int]]:
        ids = {int(r["id"]) for r in batch}
        text, buttons = batch_view(listed, chat_team, related)
        if self.budget is None:
            self.paces[channel_of(chat_id)].record(chat_id, time.monotonic())
        try:
            message_id = await self.sender(chat_id).send_text(
                chat_id, text, keyboard_payload(buttons)
            )
        except (RetryLater, Transient) as exc:
            if isinstance(exc, RetryLater):
                delay, count = exc.seconds, False
            else:
                delay, count = min(MAX_BACKOFF, 2.0 ** min(int(batch[0]["attempts"]), 8)), True
            for r in batch:
                await self._reschedule(r, delay, str(exc), count=count)
            return False, ids
        except (Unreachable, Rejected) as exc:
            # Each card alone meets the same refusal and is reported as usual.
            logger.warning("batch card to %s refused (%s); sending one by one", chat_id, exc)
            return await self._deliver(batch[0]), {int(batch[0]["id"])}

        async def record_batch() -> None:
            async with self.db.tx(urgent=True) as repo:
                await repo.outbox.mark_batch_sent(
                    sorted(ids), chat_id, message_id, self.clock.now()
                )

        # Sent: recorded whatever it takes (a storage error must not send it again).
        await self.db.health.retry(record_batch)
        self.sent += len(batch)
        logger.info(
            "batch card %s in %s lists %d tickets: %s",
            message_id,
            chat_id,
            len(listed),
            ", ".join(t.number or str(t.id) for t in listed),
        )
        return True, ids

    async def _deliver(self, row: dict[str, Any]) -> bool:
        now = self.clock.now()
        sending = current_row.set(row_sends(row))
        try:
            message_id, link = await self._send(row)
        except NotModified:
            message_id, link = None, None
        except RetryLater as exc:
            self.failures["retry_later"] += 1
            await self._reschedule(row, exc.seconds, str(exc), count=False)
            return False
        except Transient as exc:
            self.failures["transient"] += 1
            delay = min(MAX_BACKOFF, 2.0 ** min(int(row["attempts"]), 8))
            await self._reschedule(row, delay, str(exc), count=True)
            return False
        except Unreachable as exc:
            self.failures["unreachable"] += 1
            await self._unreachable(row, str(exc))
            return True
        except NotNow as exc:
            self.failures["not_now"] += 1
            await self._not_now(row, str(exc))
            return True
        except Rejected as exc:
            self.failures["rejected"] += 1
            logger.error("outbox %s rejected: %s", row["id"], exc)
            async with self.db.tx() as repo:
                await repo.outbox.update_outbox(row["id"], status="failed", error=str(exc)[:500])
            return True
        finally:
            current_row.reset(sending)

        async def record_sent() -> None:
            async with self.db.tx(urgent=True) as repo:
                await repo.outbox.update_outbox(
                    row["id"],
                    status="sent",
                    sent_at=now,
                    message_id=message_id,
                    attempts=int(row["attempts"]) + 1,
                )
                if message_id is not None and link and row["ticket_id"] is not None:
                    await repo.tickets.link_message(
                        row["chat_id"], message_id, row["ticket_id"], link
                    )

        # Sent: recorded whatever it takes (a storage error must not send it again).
        await self.db.health.retry(record_sent)
        self.sent += 1
        return True

    async def _reschedule(
        self, row: dict[str, Any], delay: float, error: str, *, count: bool
    ) -> None:
        # A network error is logged when a message starts failing, its later retries at
        # DEBUG (the channel logs the link going down and coming back, once each).
        level = logging.DEBUG if count and int(row["attempts"]) > 0 else logging.WARNING
        logger.log(
            level, "outbox %s to %s: %s; retry in %.1fs", row["id"], row["chat_id"], error, delay
        )
        async with self.db.tx() as repo:
            await repo.outbox.update_outbox(
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
            user = await repo.users.get_user(target[5:]) if target.startswith("user:") else None
            ticket = await repo.tickets.get_ticket(row["ticket_id"]) if row["ticket_id"] else None
            staff = user is not None and (
                user.is_staff or (ticket is not None and ticket.reporter_id != user.id)
            )
            if staff and user is not None:
                await repo.outbox.update_outbox(
                    row["id"], status="waiting", chat_id=None, error=error[:500]
                )
                await repo.users.update_user(user.id, now, private_started=0)
                return
            await repo.outbox.update_outbox(row["id"], status="failed", error=error[:500])
            if ticket is None:
                return
            await repo.tickets.update_ticket(ticket.id, undelivered=1, updated_at=now)
            await repo.tickets.insert_event(
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
            coord_chat = await repo.users.get_team_chat(COORDINATOR, ticket.county)
            if coord_chat is not None and coord_chat != row["chat_id"]:
                await to_coordinators(repo, now, note, ticket)
            else:
                await enqueue(repo, now, "admins", "message", message(note), ticket.id)
            await enqueue(repo, now, f"ticket:{ticket.id}", "card_edit", {}, ticket.id)
        logger.error("outbox %s unreachable (%s): %s", row["id"], target, error)

    async def _not_now(self, row: dict[str, Any], error: str) -> None:
        """Out of the recipient's window: the row waits until they write again (the workflow
        releases `user:` rows then); the ticket shows it, and its claimer is told once."""
        target = str(row["target"] or "")
        now = self.clock.now()
        async with self.db.tx() as repo:
            already = await repo.outbox.waiting_for_target(target)
            await repo.outbox.update_outbox(
                row["id"], status="waiting", chat_id=None, error=error[:500]
            )
            if target.startswith("user:"):
                await repo.users.update_user(target[5:], now, private_started=0)
            ticket = await repo.tickets.get_ticket(row["ticket_id"]) if row["ticket_id"] else None
            if already or ticket is None:
                return
            await repo.tickets.update_ticket(ticket.id, undelivered=1, updated_at=now)
            await repo.tickets.insert_event(
                ticket.id,
                None,
                "out_of_reach",
                ticket.state.value,
                ticket.state.value,
                {"target": target, "error": error},
                now,
            )
            if ticket.claimed_by and target == f"user:{ticket.reporter_id}":
                note = texts.FIRM_OUT_OF_REACH.format(number=ticket.number or "")
                await enqueue(
                    repo, now, f"user:{ticket.claimed_by}", "message", message(note), ticket.id
                )
            await enqueue(repo, now, f"ticket:{ticket.id}", "card_edit", {}, ticket.id)
        logger.warning("outbox %s waits for %s to write again: %s", row["id"], target, error)

    async def _send(self, row: dict[str, Any]) -> tuple[str | None, str | None]:
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
                ticket = await repo.tickets.get_ticket(row["ticket_id"])
                attachments = await repo.tickets.attachments(row["ticket_id"])
                binding = await repo.users.get_binding(chat_id)
                related = await related_of(repo, ticket) if kind == "card" else []
            assert ticket is not None
            if kind == "details":
                text = texts.render_details(ticket, attachments)
                details = details_keyboard(ticket.id, ticket.first_contact_at is not None)
                return await self.sender(chat_id).send_text(
                    chat_id, text, keyboard_payload(details)
                ), "details"
            purpose = (
                "coord_card"
                if payload.get("coordinator")
                else "co_card"
                if payload.get("co")
                else "card"
            )
            text, buttons = card_view(
                ticket, purpose, binding.team_id if binding else None, related
            )
            return await self.sender(chat_id).send_text(
                chat_id, text, keyboard_payload(buttons)
            ), purpose
        if kind == "upload":
            return (
                await self.sender(chat_id).send_upload(
                    chat_id,
                    payload["filename"],
                    bytes.fromhex(payload["data"]),
                    payload.get("caption"),
                    photo=bool(payload.get("photo")),
                ),
                None,
            )
        if kind == "media":
            return await self._send_media(row), payload.get("link")
        reply_to = None
        if payload.get("reply_to") and row["ticket_id"] is not None:
            reply_to = await self._linked_message(row["ticket_id"], chat_id, payload["reply_to"])
        message_id = await self.sender(chat_id).send_text(
            chat_id,
            payload["text"],
            payload.get("buttons"),
            reply_to=reply_to,
            force_reply=bool(payload.get("force_reply")),
        )
        return message_id, payload.get("link")

    def _media_source(self, chat_id: str, file_id: str) -> MediaSource | None:
        """The other channel whose file this is, if the target's platform cannot send it by id."""
        target = self.sender(chat_id)
        for sender in self.senders.values():
            if sender is not target and isinstance(sender, MediaSource) and sender.owns(file_id):
                return sender
        return None

    async def _send_media(self, row: dict[str, Any]) -> str:
        """An attachment: by file id on its own platform; from another, downloaded there and
        uploaded here; over a platform's limit, a note. Each goes into the ticket's log."""
        chat_id, payload = str(row["chat_id"]), row["payload"]
        media, file_id, caption = payload["media"], payload["file_id"], payload.get("caption")
        sender = self.sender(chat_id)
        source = self._media_source(chat_id, file_id)
        if source is None:
            message_id = await sender.send_media(chat_id, media, file_id, caption)
            await self._log_attachment(row, "sent")
            return message_id
        try:
            found = await source.fetch(file_id)
            message_id = await sender.send_upload(
                chat_id, found.name, found.data, caption, photo=media == "photo"
            )
        except TooLarge as exc:
            note = texts.ATTACHMENT_TOO_LARGE.format(
                caption=caption or "附件",
                size=f"{exc.size / MB:.1f} MB" if exc.size is not None else "文件过大",
                platform=exc.platform,
                limit=exc.limit // MB,
            )
            message_id = await sender.send_text(chat_id, note, None)
            await self._log_attachment(row, "too_large", str(exc))
            return message_id
        await self._log_attachment(row, "forwarded", f"{len(found.data)} bytes")
        return message_id

    async def _log_attachment(self, row: dict[str, Any], how: str, detail: str = "") -> None:
        if row["ticket_id"] is None:
            return
        payload = row["payload"]
        async with self.db.tx() as repo:
            ticket = await repo.tickets.get_ticket(row["ticket_id"])
            if ticket is None:
                return
            data = {"media": payload["media"], "to": row["chat_id"], "how": how}
            if detail:
                data["detail"] = detail
            await repo.tickets.insert_event(
                ticket.id,
                None,
                "attachment",
                ticket.state.value,
                ticket.state.value,
                data,
                self.clock.now(),
            )

    async def _to_admins(self, text: str) -> None:
        for admin in self.admin_ids:
            try:
                await self.sender(admin).send_text(admin, text, None)
            except (Unreachable, Rejected) as exc:
                logger.error("admin %s not reachable: %s", admin, exc)

    async def _linked_message(self, ticket_id: int, chat_id: str, purpose: str) -> str | None:
        async with self.db.read() as repo:
            cards = await repo.tickets.card_messages(ticket_id)
            batches = await repo.outbox.batch_messages(ticket_id) if purpose == "card" else []
        matches = [
            m for c, m, p in cards if c == chat_id and p in (purpose, "coord_card", "co_card")
        ]
        matches += [m for c, m in batches if c == chat_id]
        return matches[-1] if matches else None

    async def _edit_cards(self, ticket_id: int) -> None:
        async with self.db.read() as repo:
            ticket = await repo.tickets.get_ticket(ticket_id)
            cards = await repo.tickets.card_messages(ticket_id)
            batches = await repo.outbox.batch_messages(ticket_id)
            bindings = {b.chat_id: b.team_id for b in await repo.users.list_bindings()}
            related = await related_of(repo, ticket)
        assert ticket is not None
        for chat_id, message_id, purpose in cards:
            if purpose not in ("card", "coord_card", "co_card"):
                continue
            text, buttons = card_view(ticket, purpose, bindings.get(chat_id), related)
            await self._edit(chat_id, message_id, text, buttons)
        for chat_id, message_id in batches:
            async with self.db.read() as repo:
                listed = await repo.tickets.get_tickets(
                    await repo.outbox.batch_tickets(chat_id, message_id)
                )
                found = await RelatedRepo(repo).numbers_for([t.id for t in listed])
            text, buttons = batch_view(listed, bindings.get(chat_id), found)
            await self._edit(chat_id, message_id, text, buttons)

    async def _edit(
        self, chat_id: str, message_id: str, text: str, buttons: Keyboard | None
    ) -> None:
        try:
            await self.sender(chat_id).edit_text(
                chat_id, message_id, text, keyboard_payload(buttons)
            )
        except NotModified:
            return
        except (Unreachable, Rejected) as exc:
            logger.warning("card %s in %s not edited: %s", message_id, chat_id, exc)


def fit_batch(
    rows: Sequence[dict[str, Any]],
    tickets: Sequence[Ticket],
    chat_team: str | None,
    related: Mapping[int, Sequence[str]] | None = None,
) -> tuple[list[dict[str, Any]], list[Ticket]]:
    """The first rows whose tickets fit one batch card (buttons, text with room for edits)."""
    by_id = {t.id: t for t in tickets}
    batch: list[dict[str, Any]] = []
    listed: list[Ticket] = []
    for row in rows[:MAX_BUTTONS]:
        ticket = by_id.get(int(row["ticket_id"]))
        if ticket is None:
            continue
        trial = [*listed, ticket]
        size = len(texts.render_batch_card(trial, chat_team, related))
        size += BATCH_EDIT_ROOM * len(trial)
        if listed and size > texts.BATCH_SEND_LIMIT:
            break
        batch.append(row)
        listed = trial
    return batch, listed


def escape_target(target: str) -> str:
    """A target as people read it."""
    if target.startswith("team:"):
        return team_name(target[5:])
    return target
