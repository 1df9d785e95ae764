"""The ticket workflow: drafts, submit, claim, talk, resolve, rate, return, dispatch (no telegram).

Every state change, its event-log line and the messages it causes are written in one transaction.
Methods return the replies for the acting chat; everything else goes through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any

from bot import registration, texts
from bot.classifier import GENERAL, Classification, Classifier
from bot.config import Settings
from bot.db import Database, Repo
from bot.deadlines import DeadlinePolicy
from bot.errors import BadInput, NotAllowed, NotFound, WrongState
from bot.keyboards import (
    Button,
    Reply,
    draft_keyboard,
    rating_keyboard,
    team_choice_keyboard,
)
from bot.models import (
    BINDABLE,
    COORDINATOR,
    TEAM_NAMES,
    CloseType,
    Satisfaction,
    Ticket,
    TicketState,
    Urgency,
    User,
    team_name,
)
from bot.workflow import Actor, Clock, Membership, enqueue, message
from bot.worktime import WorkCalendar

logger = logging.getLogger(__name__)

MAX_REPORT_CHARS = 4000
OPEN = (
    TicketState.PENDING_DISPATCH,
    TicketState.PENDING_CLAIM,
    TicketState.IN_PROGRESS,
    TicketState.LONG_TERM,
    TicketState.PENDING_CONFIRM,
)


class Workflow:
    """The whole ticket loop, driven by any chat platform's handlers."""

    def __init__(
        self,
        db: Database,
        classifier: Classifier,
        settings: Settings,
        clock: Clock,
        membership: Membership,
    ) -> None:
        self.db = db
        self.classifier = classifier
        self.settings = settings
        self.clock = clock
        self.membership = membership
        self.calendar = WorkCalendar(settings)
        self.policy = DeadlinePolicy(settings, self.calendar)
        self.on_change: Callable[[], None] = lambda: None
        self.bot_username = "yimi_bot"

    # -- helpers -----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The workflow's clock."""
        return self.clock.now()

    async def _user(self, repo: Repo, actor: Actor) -> User:
        user = await repo.get_user(actor.id)
        if user is None:
            user = await repo.upsert_user(actor.id, actor.name, actor.username, self.now())
        return user

    async def _ticket(self, repo: Repo, ticket_id: int) -> Ticket:
        ticket = await repo.get_ticket(ticket_id)
        if ticket is None:
            raise NotFound(str(ticket_id))
        return ticket

    async def _by_number(self, repo: Repo, number: str) -> Ticket:
        ticket = await repo.get_ticket_by_number(number.strip())
        if ticket is None:
            raise NotFound(escape(number.strip()[:40]))
        return ticket

    async def _event(
        self,
        repo: Repo,
        ticket: Ticket,
        actor_id: int | None,
        action: str,
        to_state: TicketState | None = None,
        **payload: Any,
    ) -> None:
        await repo.insert_event(
            ticket.id,
            actor_id,
            action,
            ticket.state.value,
            (to_state or ticket.state).value,
            payload,
            self.now(),
        )

    async def _card_changed(self, repo: Repo, ticket_id: int) -> None:
        await enqueue(repo, self.now(), f"ticket:{ticket_id}", "card_edit", {}, ticket_id)

    async def is_coordinator(self, actor: Actor) -> bool:
        """Admins and members of the coordinators' group."""
        if actor.is_admin:
            return True
        async with self.db.read() as repo:
            chat = await repo.get_team_chat(COORDINATOR)
        return chat is not None and await self.membership.is_member(chat, actor.id)

    async def is_team_member(self, actor: Actor, team_id: str | None) -> bool:
        """Admins and members of the team's bound group."""
        if actor.is_admin:
            return True
        if team_id is None:
            return False
        async with self.db.read() as repo:
            chat = await repo.get_team_chat(team_id)
        return chat is not None and await self.membership.is_member(chat, actor.id)

    async def _require_member(self, actor: Actor) -> None:
        """The presser is in the group they press in (asked before any transaction)."""
        if actor.is_admin or actor.private:
            return
        if not await self.membership.is_member(actor.chat_id, actor.id):
            raise NotAllowed("您不是本群成员")

    async def _require_team_chat(self, repo: Repo, actor: Actor, ticket: Ticket) -> None:
        """A button or command in a group acts on the tickets of the team bound there."""
        binding = await repo.get_binding(actor.chat_id)
        if binding is None:
            raise NotAllowed("本群未绑定团队")
        if binding.team_id == COORDINATOR:
            return
        if binding.team_id != ticket.team_id:
            raise NotAllowed(f"该工单不属于{team_name(binding.team_id)}")

    # -- registration ------------------------------------------------------------------------

    async def start(self, actor: Actor, payload: str = "") -> list[Reply]:
        """/start in private: staff link, registration, or help."""
        now = self.now()
        replies: list[Reply] = []
        async with self.db.tx() as repo:
            user = await repo.upsert_user(actor.id, actor.name, actor.username, now)
            fields: dict[str, Any] = {"private_started": 1}
            if payload == "staff":
                fields["is_staff"] = 1
            await repo.update_user(actor.id, now, **fields)
            released = await repo.release_waiting(f"user:{actor.id}", actor.id, now)
            if payload == "staff" or (user.is_staff and not registration.is_registered(user)):
                replies.append(Reply(texts.STAFF_WELCOME.format(name=escape(actor.name))))
                if released:
                    replies.append(Reply(f"有 {released} 条待收的工单信息，马上发给您。"))
            elif registration.is_registered(user):
                replies.append(Reply(texts.HELP_PRIVATE))
            elif user.reg_step is None:
                draft = await repo.get_draft(actor.id)
                fields, reply = registration.begin(user, has_draft=draft is not None)
                await repo.update_user(actor.id, now, **fields)
                replies.append(reply)
            else:  # in the middle of registration: continue where they were
                replies.append(
                    registration.prompt(user.reg_step, self.settings.towns, "请继续登记：")
                )
            if actor.is_admin:
                waiting = await self._waiting_for_coordinators(repo)
                if waiting:
                    replies.append(Reply(texts.ADMIN_WAITING.format(count=waiting)))
        self.on_change()
        return replies

    async def _waiting_for_coordinators(self, repo: Repo) -> int:
        return len(await repo.waiting_for_target(COORDINATOR))

    async def registration_input(
        self,
        actor: Actor,
        *,
        text: str | None = None,
        contact_phone: str | None = None,
        contact_user_id: int | None = None,
        town_index: int | None = None,
        skip: bool = False,
    ) -> list[Reply]:
        """One registration answer; after the last, the kept draft is shown for confirmation."""
        now = self.now()
        async with self.db.tx() as repo:
            user = await self._user(repo, actor)
            replies, done = await registration.step(
                repo,
                user,
                actor,
                now,
                self.settings.towns,
                text=text,
                contact_phone=contact_phone,
                contact_user_id=contact_user_id,
                town_index=town_index,
                skip=skip,
            )
            if done:
                draft = await repo.get_draft(actor.id)
                if draft is not None and draft.text.strip():
                    user = await self._user(repo, actor)
                    await repo.update_ticket(
                        draft.id, enterprise_id=user.enterprise_id, updated_at=now
                    )
                    replies.append(Reply(texts.REG_DONE_DRAFT.strip()))
                    replies.append(await self._proposal(repo, draft.id))
                else:
                    replies[-1] = Reply(replies[-1].text + texts.REG_DONE_NEXT)
        return replies

    async def needs_registration(self, actor: Actor) -> bool:
        """True while a firm user is in the middle of registration."""
        async with self.db.read() as repo:
            user = await repo.get_user(actor.id)
        return user is not None and user.reg_step is not None

    async def profile(self, actor: Actor, edit: bool) -> list[Reply]:
        """/profile and /profile edit."""
        now = self.now()
        async with self.db.tx() as repo:
            user = await self._user(repo, actor)
            if edit or not registration.is_registered(user):
                await repo.update_user(actor.id, now, reg_step="name", reg_data={})
                return [Reply(texts.REG_START)]
            return [await registration.profile(repo, user)]

    # -- drafts ------------------------------------------------------------------------------

    async def report(
        self,
        actor: Actor,
        message_id: int,
        text: str,
        *,
        attachment: tuple[str, str] | None = None,
        location: tuple[float, float] | None = None,
    ) -> list[Reply]:
        """A private message from a firm: joins (or opens) the draft; never lost."""
        now = self.now()
        text = text.strip()
        replies: list[Reply] = []
        if len(text) > MAX_REPORT_CHARS:
            text = text[:MAX_REPORT_CHARS]
            replies.append(Reply(texts.TOO_LONG.format(limit=MAX_REPORT_CHARS)))
        async with self.db.tx() as repo:
            if not await repo.mark_seen(actor.chat_id, message_id, None):
                return []
            user = await self._user(repo, actor)
            draft = await repo.get_draft(actor.id)
            if draft is None:
                draft_id = await repo.insert_ticket(
                    state=TicketState.DRAFT.value,
                    reporter_id=actor.id,
                    enterprise_id=user.enterprise_id,
                    text=text,
                    created_at=now,
                    updated_at=now,
                )
                draft = await repo.get_ticket(draft_id)
                assert draft is not None
                await self._event(repo, draft, actor.id, "created")
            elif text:
                joined = f"{draft.text}\n{text}" if draft.text else text
                if len(joined) > MAX_REPORT_CHARS and not replies:
                    replies.append(Reply(texts.TOO_LONG.format(limit=MAX_REPORT_CHARS)))
                await repo.update_ticket(draft.id, text=joined[:MAX_REPORT_CHARS], updated_at=now)
            if attachment is not None:
                await repo.insert_attachment(draft.id, attachment[0], attachment[1], text, now)
            if location is not None:
                await repo.update_ticket(draft.id, location=f"{location[0]:.6f},{location[1]:.6f}")
            if not registration.is_registered(user):
                if user.reg_step is None:
                    fields, reply = registration.begin(user, has_draft=True)
                    await repo.update_user(actor.id, now, private_started=1, **fields)
                    replies.append(reply)
                else:
                    replies.append(
                        registration.prompt(
                            user.reg_step, self.settings.towns, "问题已暂存。请先完成企业登记："
                        )
                    )
                return replies
            replies.append(await self._proposal(repo, draft.id))
        return replies

    async def _proposal(self, repo: Repo, ticket_id: int) -> Reply:
        ticket = await repo.get_ticket(ticket_id)
        assert ticket is not None
        attachments = await repo.attachments(ticket_id)
        if not ticket.text.strip() and not attachments and not ticket.location:
            return Reply(texts.DRAFT_EMPTY)
        result = self.classifier.classify(ticket.text)
        urgency = ticket.urgency
        if result.urgent and urgency == Urgency.NORMAL and ticket.classified_by == "auto":
            urgency = Urgency.URGENT
        team = ticket.team_id if ticket.classified_by == "reporter" else _team_of(result)
        co = [label for label in result.labels[1:] if label in TEAM_NAMES]
        await repo.update_ticket(
            ticket_id,
            team_id=team,
            predicted_team=result.primary,
            co_teams=co if team == result.primary else [],
            domain_words=list(result.words),
            confidence=result.confidence,
            urgency=urgency.value,
            summary=texts.summary_of(ticket.text) or "（附件/位置）",
            updated_at=self.now(),
        )
        extra = f"\n附件：{len(attachments)} 个" if attachments else ""
        if ticket.location:
            extra += "\n位置：已附"
        co_text = (
            f"（协办：{'、'.join(team_name(t) for t in co)}）"
            if co and team == result.primary
            else ""
        )
        return Reply(
            texts.DRAFT_PROPOSAL.format(
                summary=escape(texts.clip(ticket.text, 300)) or "（附件/位置）",
                team=team_name(team) if team else texts.DRAFT_GENERAL,
                co=co_text,
                words=texts.words_text(result.words),
                urgency=urgency.label,
                attachments=extra,
            ),
            buttons=draft_keyboard(ticket_id, urgency == Urgency.URGENT),
        )

    async def _own_draft(self, repo: Repo, actor: Actor, ticket_id: int) -> Ticket:
        ticket = await repo.get_ticket(ticket_id)
        if ticket is None or ticket.reporter_id != actor.id:
            raise NotAllowed("这不是您的草稿")
        if ticket.state != TicketState.DRAFT:
            raise BadInput(texts.DRAFT_GONE)
        return ticket

    async def choose_team(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """换个团队: the team buttons."""
        async with self.db.read() as repo:
            await self._own_draft(repo, actor, ticket_id)
        return [Reply(texts.DRAFT_CHOOSE, buttons=team_choice_keyboard(ticket_id, "pick"))]

    async def pick_team(self, actor: Actor, ticket_id: int, team: str) -> list[Reply]:
        """The reporter's own choice of team (stored as a correction when it differs)."""
        if team not in TEAM_NAMES and team != GENERAL:
            raise BadInput(texts.STALE_BUTTON)
        async with self.db.tx() as repo:
            await self._own_draft(repo, actor, ticket_id)
            await repo.update_ticket(
                ticket_id,
                team_id=None if team == GENERAL else team,
                classified_by="reporter",
                updated_at=self.now(),
            )
            return [await self._proposal(repo, ticket_id)]

    async def toggle_urgent(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """The reporter marks the draft urgent (production stopped, safety) or not."""
        async with self.db.tx() as repo:
            ticket = await self._own_draft(repo, actor, ticket_id)
            urgency = Urgency.NORMAL if ticket.urgency == Urgency.URGENT else Urgency.URGENT
            await repo.update_ticket(
                ticket_id,
                urgency=urgency.value,
                classified_by=(
                    "reporter" if ticket.classified_by == "reporter" else "auto_urgency_set"
                ),
            )
            return [await self._proposal(repo, ticket_id)]

    async def cancel_draft(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """取消: the draft is cancelled, kept in the log."""
        async with self.db.tx() as repo:
            ticket = await self._own_draft(repo, actor, ticket_id)
            await repo.update_ticket(
                ticket_id, state=TicketState.CANCELLED.value, updated_at=self.now()
            )
            await self._event(repo, ticket, actor.id, "withdrawn", TicketState.CANCELLED)
        return [Reply(texts.DRAFT_CANCELLED)]

    async def confirm(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """确认提交: number, deadline, receipt and card, in one transaction."""
        now = self.now()
        async with self.db.tx() as repo:
            user = await self._user(repo, actor)
            if not registration.is_registered(user):
                raise BadInput("请先完成企业登记。")
            ticket = await self._own_draft(repo, actor, ticket_id)
            attachments = await repo.attachments(ticket_id)
            if not ticket.text.strip() and not attachments and not ticket.location:
                raise BadInput(texts.DRAFT_EMPTY)
            number = await self._new_number(repo, now)
            due = self.policy.due_at(now, ticket.urgency)
            routed = ticket.team_id is not None
            state = TicketState.PENDING_CLAIM if routed else TicketState.PENDING_DISPATCH
            await repo.update_ticket(
                ticket_id,
                number=number,
                state=state.value,
                enterprise_id=user.enterprise_id,
                submitted_at=now,
                dispatched_at=now if routed else None,
                due_at=due,
                updated_at=now,
            )
            await self._event(repo, ticket, actor.id, "submitted", state, team=ticket.team_id)
            if ticket.classified_by == "reporter" and ticket.team_id != ticket.predicted_team:
                await repo.insert_correction(
                    ticket_id,
                    ticket.text,
                    ticket.predicted_team or GENERAL,
                    ticket.team_id or GENERAL,
                    "reporter",
                    now,
                )
            await self._send_card(repo, ticket_id, ticket.team_id)
            receipt = texts.RECEIPT.format(
                number=number,
                team=team_name(ticket.team_id) if routed else "专班（调度）分拨中",
                due=texts.fmt_dt(due),
            )
            # The receipt is stored with the ticket: a crash after commit cannot lose it.
            await enqueue(repo, now, f"user:{actor.id}", "message", message(receipt), ticket_id)
        logger.info("ticket %s submitted, team %s, chat %s", number, ticket.team_id, actor.chat_id)
        self.on_change()
        return []

    async def _new_number(self, repo: Repo, now: datetime) -> str:
        day = now.strftime("%Y%m%d")
        return f"YM-{day}-{await repo.next_number(day):04d}"

    async def _send_card(self, repo: Repo, ticket_id: int, team: str | None) -> None:
        if team is None:
            await enqueue(repo, self.now(), COORDINATOR, "card", {"coordinator": True}, ticket_id)
        else:
            await enqueue(repo, self.now(), f"team:{team}", "card", {}, ticket_id)

    # -- team actions ------------------------------------------------------------------------

    async def claim(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """签收 from the card: exactly one claimer; details go privately to them."""
        await self._require_member(actor)
        now = self.now()
        async with self.db.tx() as repo:
            ticket = await self._ticket(repo, ticket_id)
            await self._require_team_chat(repo, actor, ticket)
            if ticket.state != TicketState.PENDING_CLAIM:
                if ticket.claimed_by_name and ticket.state in OPEN:
                    raise BadInput(texts.CLAIM_TAKEN.format(name=escape(ticket.claimed_by_name)))
                raise WrongState(ticket.number, ticket.state.label, "claim")
            await repo.upsert_user(actor.id, actor.name, actor.username, now)
            await repo.update_user(actor.id, now, is_staff=1)
            await repo.update_ticket(
                ticket_id,
                state=TicketState.IN_PROGRESS.value,
                claimed_by=actor.id,
                claimed_by_name=actor.name,
                claimed_at=now,
                updated_at=now,
            )
            await self._event(repo, ticket, actor.id, "claimed", TicketState.IN_PROGRESS)
            await self._event(repo, ticket, actor.id, "details_viewed")
            await self._card_changed(repo, ticket_id)
            await enqueue(repo, now, f"user:{actor.id}", "details", {}, ticket_id)
            for attachment in await repo.attachments(ticket_id):
                await enqueue(
                    repo,
                    now,
                    f"user:{actor.id}",
                    "media",
                    {
                        "media": attachment.kind,
                        "file_id": attachment.file_id,
                        "caption": f"{ticket.number} 附件",
                    },
                    ticket_id,
                )
            await enqueue(
                repo,
                now,
                f"user:{ticket.reporter_id}",
                "message",
                message(
                    texts.CLAIM_FIRM.format(
                        number=ticket.number,
                        team=team_name(ticket.team_id),
                        name=escape(actor.name),
                    )
                ),
                ticket_id,
            )
            claimer = await repo.get_user(actor.id)
            started = claimer is not None and claimer.private_started
        logger.info("ticket %s claimed by %s, chat %s", ticket.number, actor.id, actor.chat_id)
        self.on_change()
        if started:
            return [Reply(texts.CLAIM_DONE.format(number=ticket.number))]
        link = f"https://t.me/{self.bot_username}?start=staff"
        return [
            Reply(
                texts.CLAIM_NEED_START.format(mention=escape(actor.mention)),
                buttons=[[Button("私聊机器人", url=link)]],
            )
        ]

    async def ask_return(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """退回: ask for the reason (the next message of this member in this chat)."""
        await self._require_member(actor)
        async with self.db.tx() as repo:
            ticket = await self._ticket(repo, ticket_id)
            await self._require_team_chat(repo, actor, ticket)
            self._check_return(ticket, await repo.events(ticket_id))
            await repo.upsert_user(actor.id, actor.name, actor.username, self.now())
            await repo.update_user(
                actor.id, self.now(), awaiting=f"return:{ticket_id}:{actor.chat_id}"
            )
        return [Reply(texts.RETURN_ASK.format(number=ticket.number), force_reply=True)]

    def _check_return(self, ticket: Ticket, events: list[Any]) -> None:
        if ticket.state not in (TicketState.PENDING_CLAIM, TicketState.IN_PROGRESS):
            raise WrongState(ticket.number, ticket.state.label, "return")
        if any(e.action == "returned" and e.payload.get("team") == ticket.team_id for e in events):
            raise BadInput(texts.RETURN_TWICE)
        since = ticket.dispatched_at or ticket.submitted_at
        if since is not None and self.calendar.work_days_between(since, self.now()) > (
            self.settings.return_window_workdays
        ):
            raise BadInput(texts.RETURN_LATE)

    async def return_ticket(self, actor: Actor, ticket_id: int, reason: str) -> list[Reply]:
        """The reason arrived: back to the coordinators."""
        now = self.now()
        reason = reason.strip()[:500]
        if not reason:
            raise BadInput(texts.RETURN_ASK.format(number=""))
        async with self.db.tx() as repo:
            ticket = await self._ticket(repo, ticket_id)
            await self._require_team_chat(repo, actor, ticket)
            self._check_return(ticket, await repo.events(ticket_id))
            await repo.update_ticket(
                ticket_id,
                state=TicketState.PENDING_DISPATCH.value,
                return_count=ticket.return_count + 1,
                claimed_by=None,
                claimed_by_name=None,
                claimed_at=None,
                updated_at=now,
            )
            await self._event(
                repo,
                ticket,
                actor.id,
                "returned",
                TicketState.PENDING_DISPATCH,
                team=ticket.team_id,
                reason=reason,
            )
            await repo.update_user(actor.id, now, awaiting=None)
            await self._card_changed(repo, ticket_id)
            await enqueue(
                repo,
                now,
                COORDINATOR,
                "message",
                message(
                    texts.COORD_RETURNED.format(
                        team=team_name(ticket.team_id), reason=escape(reason)
                    )
                ),
                ticket_id,
            )
            await enqueue(repo, now, COORDINATOR, "card", {"coordinator": True}, ticket_id)
        logger.info("ticket %s returned by %s", ticket.number, ticket.team_id)
        self.on_change()
        return [Reply(texts.RETURN_DONE.format(number=ticket.number))]

    async def _may_resolve(self, repo: Repo, actor: Actor, ticket: Ticket) -> None:
        if ticket.claimed_by == actor.id or actor.is_admin:
            return
        coord = await repo.get_team_chat(COORDINATOR)
        if coord is not None and await self.membership.is_member(coord, actor.id):
            return
        raise NotAllowed("只有责任人、专班或管理员可以办结")

    async def ask_resolve(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """办结: ask for the result text."""
        async with self.db.tx() as repo:
            ticket = await self._ticket(repo, ticket_id)
            if ticket.state not in (TicketState.IN_PROGRESS, TicketState.LONG_TERM):
                raise WrongState(ticket.number, ticket.state.label, "resolve")
            await self._may_resolve(repo, actor, ticket)
            await repo.upsert_user(actor.id, actor.name, actor.username, self.now())
            await repo.update_user(
                actor.id, self.now(), awaiting=f"resolve:{ticket_id}:{actor.chat_id}"
            )
        return [Reply(texts.RESOLVE_ASK.format(number=ticket.number), force_reply=True)]

    async def resolve(self, actor: Actor, ticket_id: int, result: str) -> list[Reply]:
        """The result arrived: the firm is asked to confirm and rate."""
        now = self.now()
        result = result.strip()[:2000]
        async with self.db.tx() as repo:
            ticket = await self._ticket(repo, ticket_id)
            if ticket.state not in (TicketState.IN_PROGRESS, TicketState.LONG_TERM):
                raise WrongState(ticket.number, ticket.state.label, "resolve")
            await self._may_resolve(repo, actor, ticket)
            if not result:
                raise BadInput(texts.RESOLVE_ASK.format(number=ticket.number))
            await repo.update_ticket(
                ticket_id,
                state=TicketState.PENDING_CONFIRM.value,
                result_text=result,
                resolved_at=now,
                updated_at=now,
            )
            await self._event(
                repo, ticket, actor.id, "resolved", TicketState.PENDING_CONFIRM, result=result
            )
            await repo.update_user(actor.id, now, awaiting=None)
            await self._card_changed(repo, ticket_id)
            await enqueue(
                repo,
                now,
                f"user:{ticket.reporter_id}",
                "message",
                message(
                    texts.RESOLVE_FIRM.format(
                        number=ticket.number, team=team_name(ticket.team_id), result=escape(result)
                    ),
                    rating_keyboard(ticket_id),
                    link="result",
                ),
                ticket_id,
            )
        logger.info("ticket %s resolved by %s", ticket.number, actor.id)
        self.on_change()
        return [Reply(texts.RESOLVE_DONE.format(number=ticket.number))]

    async def rate(self, actor: Actor, ticket_id: int, value: str) -> list[Reply]:
        """The firm's answer: closes the ticket, or reopens it (重办)."""
        now = self.now()
        try:
            rating = Satisfaction(value)
        except ValueError as exc:
            raise BadInput(texts.STALE_BUTTON) from exc
        async with self.db.tx() as repo:
            ticket = await self._ticket(repo, ticket_id)
            await self._require_reporter(repo, actor, ticket)
            if ticket.state != TicketState.PENDING_CONFIRM:
                raise WrongState(ticket.number, ticket.state.label, "rate")
            if rating == Satisfaction.UNSOLVED:
                count = ticket.reopen_count + 1
                await repo.update_ticket(
                    ticket_id,
                    state=TicketState.IN_PROGRESS.value,
                    reopen_count=count,
                    satisfaction=rating.value,
                    rated_at=now,
                    updated_at=now,
                )
                await self._event(
                    repo, ticket, actor.id, "reopened", TicketState.IN_PROGRESS, rating=rating.value
                )
                note = texts.REOPEN_GROUP.format(number=ticket.number, count=count)
                await enqueue(
                    repo,
                    now,
                    f"team:{ticket.team_id}",
                    "message",
                    message(note, reply_to="card"),
                    ticket_id,
                )
                await enqueue(
                    repo,
                    now,
                    COORDINATOR,
                    "message",
                    message(
                        texts.COORD_REOPENED.format(
                            number=ticket.number, team=team_name(ticket.team_id)
                        )
                    ),
                    ticket_id,
                )
                reply = texts.RATE_REOPEN_FIRM.format(number=ticket.number)
            else:
                await repo.update_ticket(
                    ticket_id,
                    state=TicketState.CLOSED.value,
                    satisfaction=rating.value,
                    rated_at=now,
                    closed_at=now,
                    closed_by=actor.id,
                    close_type=CloseType.SOLVED.value,
                    updated_at=now,
                )
                await self._event(
                    repo, ticket, actor.id, "rated", TicketState.CLOSED, rating=rating.value
                )
                await enqueue(
                    repo,
                    now,
                    f"team:{ticket.team_id}",
                    "message",
                    message(
                        texts.CLOSED_GROUP.format(number=ticket.number, rating=rating.label),
                        reply_to="card",
                    ),
                    ticket_id,
                )
                reply = texts.RATE_THANKS.format(number=ticket.number)
            await self._card_changed(repo, ticket_id)
        logger.info("ticket %s rated %s", ticket.number, rating.value)
        self.on_change()
        return [Reply(reply)]

    async def _require_reporter(self, repo: Repo, actor: Actor, ticket: Ticket) -> None:
        user = await repo.get_user(actor.id)
        same_firm = (
            user is not None
            and user.enterprise_id is not None
            and user.enterprise_id == ticket.enterprise_id
        )
        if ticket.reporter_id != actor.id and not same_firm:
            raise NotFound(ticket.number or "")

    async def first_contact(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """已首次联系企业 on the private details message."""
        now = self.now()
        async with self.db.tx() as repo:
            ticket = await self._ticket(repo, ticket_id)
            if ticket.claimed_by != actor.id:
                raise NotAllowed("只有责任人可以记录")
            if ticket.first_contact_at is None:
                await repo.update_ticket(ticket_id, first_contact_at=now, updated_at=now)
                await self._event(repo, ticket, actor.id, "first_contact")
        return [Reply(texts.FIRST_CONTACT_DONE)]

    async def progress(self, actor: Actor, number: str, note: str) -> list[Reply]:
        """/progress: a note in the log that the firm also sees."""
        now = self.now()
        note = note.strip()[:1000]
        if not note:
            raise BadInput(texts.PROGRESS_USAGE)
        async with self.db.tx() as repo:
            ticket = await self._by_number(repo, number)
            await self._require_handler(repo, actor, ticket, "progress")
            await repo.update_ticket(ticket.id, latest_progress=note, updated_at=now)
            await self._event(repo, ticket, actor.id, "progress", text=note)
            await enqueue(
                repo,
                now,
                f"user:{ticket.reporter_id}",
                "message",
                message(
                    texts.PROGRESS_FIRM.format(
                        team=team_name(ticket.team_id), number=ticket.number, text=escape(note)
                    ),
                    link="relay",
                ),
                ticket.id,
            )
            await self._card_changed(repo, ticket.id)
        self.on_change()
        return [Reply(texts.PROGRESS_DONE.format(number=ticket.number))]

    async def _require_handler(self, repo: Repo, actor: Actor, ticket: Ticket, action: str) -> None:
        """The claimer (or a coordinator/admin) on an open, claimed ticket."""
        if ticket.state not in (
            TicketState.IN_PROGRESS,
            TicketState.LONG_TERM,
            TicketState.PENDING_CONFIRM,
        ):
            if ticket.state == TicketState.PENDING_CLAIM:
                raise BadInput(texts.RELAY_NEED_CLAIM)
            raise WrongState(ticket.number, ticket.state.label, action)
        if ticket.claimed_by == actor.id or actor.is_admin:
            return
        coord = await repo.get_team_chat(COORDINATOR)
        if coord is not None and await self.membership.is_member(coord, actor.id):
            return
        raise NotAllowed(
            texts.RELAY_NOT_CLAIMER.format(name=escape(ticket.claimed_by_name or "责任人"))
        )

    # -- talking -----------------------------------------------------------------------------

    async def relay_to_firm(
        self, actor: Actor, ticket_id: int, text: str, message_id: int
    ) -> list[Reply]:
        """A team member's reply to the card (or /reply): relayed to the firm, marked with the team."""
        now = self.now()
        text = text.strip()[:3000]
        if not text:
            raise BadInput(texts.REPLY_USAGE)
        async with self.db.tx() as repo:
            if not await repo.mark_seen(actor.chat_id, message_id, ticket_id):
                return []
            ticket = await self._ticket(repo, ticket_id)
            await self._require_handler(repo, actor, ticket, "reply")
            await self._event(repo, ticket, actor.id, "relay_to_firm", text=text)
            await enqueue(
                repo,
                now,
                f"user:{ticket.reporter_id}",
                "message",
                message(
                    texts.RELAY_TO_FIRM.format(
                        team=team_name(ticket.team_id), number=ticket.number, text=escape(text)
                    ),
                    link="relay",
                ),
                ticket_id,
            )
        self.on_change()
        return [Reply(texts.RELAY_SENT)]

    async def relay_to_team(
        self,
        actor: Actor,
        ticket_id: int,
        text: str,
        message_id: int,
        attachment: tuple[str, str] | None = None,
    ) -> list[Reply]:
        """The firm's answer: shown in the team group as a reply to the card."""
        now = self.now()
        text = text.strip()[:3000]
        async with self.db.tx() as repo:
            if not await repo.mark_seen(actor.chat_id, message_id, ticket_id):
                return []
            ticket = await self._ticket(repo, ticket_id)
            await self._require_reporter(repo, actor, ticket)
            if not ticket.state.is_open:
                raise WrongState(ticket.number, ticket.state.label, "reply")
            if not text and attachment is None:
                raise BadInput(texts.REPLY_USAGE)
            target = f"team:{ticket.team_id}" if ticket.team_id else COORDINATOR
            await self._event(repo, ticket, actor.id, "relay_to_team", text=text)
            await enqueue(
                repo,
                now,
                target,
                "message",
                message(
                    texts.RELAY_TO_GROUP.format(
                        number=ticket.number, text=escape(text or "（附件）")
                    ),
                    reply_to="card",
                ),
                ticket_id,
            )
            if attachment is not None:
                await repo.insert_attachment(ticket_id, attachment[0], attachment[1], text, now)
                if ticket.claimed_by:
                    await enqueue(
                        repo,
                        now,
                        f"user:{ticket.claimed_by}",
                        "media",
                        {
                            "media": attachment[0],
                            "file_id": attachment[1],
                            "caption": f"{ticket.number} 企业补充附件",
                        },
                        ticket_id,
                    )
        self.on_change()
        return [Reply(texts.RELAY_SENT)]

    async def reply_command(
        self, actor: Actor, number: str, text: str, message_id: int
    ) -> list[Reply]:
        """/reply <number> <text> in private: from a firm to its team, or from staff to the firm."""
        async with self.db.read() as repo:
            ticket = await self._by_number(repo, number)
            user = await repo.get_user(actor.id)
        own = ticket.reporter_id == actor.id or (
            user is not None
            and user.enterprise_id is not None
            and user.enterprise_id == ticket.enterprise_id
        )
        if own:
            return await self.relay_to_team(actor, ticket.id, text, message_id)
        if not (
            await self.is_coordinator(actor) or await self.is_team_member(actor, ticket.team_id)
        ):
            raise NotFound(escape(number.strip()[:40]))
        return await self.relay_to_firm(actor, ticket.id, text, message_id)

    async def withdraw(self, actor: Actor, number: str) -> list[Reply]:
        """/withdraw: the firm cancels its own open ticket."""
        now = self.now()
        async with self.db.tx() as repo:
            ticket = await self._by_number(repo, number)
            await self._require_reporter(repo, actor, ticket)
            if not ticket.state.is_open:
                raise WrongState(ticket.number, ticket.state.label, "withdraw")
            await repo.update_ticket(
                ticket.id,
                state=TicketState.CANCELLED.value,
                closed_at=now,
                closed_by=actor.id,
                updated_at=now,
            )
            await self._event(repo, ticket, actor.id, "withdrawn", TicketState.CANCELLED)
            target = f"team:{ticket.team_id}" if ticket.team_id else COORDINATOR
            await enqueue(
                repo,
                now,
                target,
                "message",
                message(texts.WITHDRAW_GROUP.format(number=ticket.number), reply_to="card"),
                ticket.id,
            )
            await self._card_changed(repo, ticket.id)
        self.on_change()
        return [Reply(texts.WITHDRAW_DONE.format(number=ticket.number))]

    # -- coordinators ------------------------------------------------------------------------

    async def dispatch(self, actor: Actor, ticket_id: int, team: str) -> list[Reply]:
        """Route (or re-route) an open ticket to a team: coordinators and admins only."""
        if team not in TEAM_NAMES:
            raise BadInput(texts.DISPATCH_USAGE.format(teams=", ".join(TEAM_NAMES)))
        if not await self.is_coordinator(actor):
            raise NotAllowed("只有专班或管理员可以分拨")
        now = self.now()
        async with self.db.tx() as repo:
            ticket = await self._ticket(repo, ticket_id)
            if not ticket.state.is_open or ticket.state == TicketState.PENDING_CONFIRM:
                raise WrongState(ticket.number, ticket.state.label, "dispatch")
            if ticket.team_id == team and ticket.state != TicketState.PENDING_DISPATCH:
                return [
                    Reply(texts.DISPATCH_SAME.format(number=ticket.number, team=team_name(team)))
                ]
            await repo.update_ticket(
                ticket_id,
                state=TicketState.PENDING_CLAIM.value,
                team_id=team,
                co_teams=[],
                classified_by="coordinator",
                dispatched_at=now,
                claimed_by=None,
                claimed_by_name=None,
                claimed_at=None,
                updated_at=now,
            )
            await self._event(
                repo,
                ticket,
                actor.id,
                "dispatched",
                TicketState.PENDING_CLAIM,
                team=team,
                previous=ticket.team_id,
            )
            if (ticket.predicted_team or GENERAL) != team:
                await repo.insert_correction(
                    ticket_id,
                    ticket.text,
                    ticket.predicted_team or GENERAL,
                    team,
                    "coordinator",
                    now,
                )
            await self._card_changed(repo, ticket_id)
            await self._send_card(repo, ticket_id, team)
            await enqueue(
                repo,
                now,
                f"user:{ticket.reporter_id}",
                "message",
                message(texts.DISPATCH_FIRM.format(number=ticket.number, team=team_name(team))),
                ticket_id,
            )
        logger.info("ticket %s dispatched to %s by %s", ticket.number, team, actor.id)
        self.on_change()
        return [Reply(texts.DISPATCH_DONE.format(number=ticket.number, team=team_name(team)))]

    async def dispatch_number(self, actor: Actor, number: str, team: str) -> list[Reply]:
        """/dispatch <number> <team_id>."""
        async with self.db.read() as repo:
            ticket = await self._by_number(repo, number)
        return await self.dispatch(actor, ticket.id, team)

    # -- awaited input -----------------------------------------------------------------------

    async def awaited(self, actor: Actor) -> tuple[str, int] | None:
        """The action this user's next message in this chat completes, if any."""
        async with self.db.read() as repo:
            user = await repo.get_user(actor.id)
        if user is None or not user.awaiting:
            return None
        action, ticket_id, chat_id = user.awaiting.split(":")
        if int(chat_id) != actor.chat_id:
            return None
        return action, int(ticket_id)

    async def complete_awaited(self, actor: Actor, text: str) -> list[Reply]:
        """Finish a 退回 or 办结 with the text the member just wrote."""
        pending = await self.awaited(actor)
        if pending is None:
            return []
        action, ticket_id = pending
        try:
            if action == "return":
                return await self.return_ticket(actor, ticket_id, text)
            return await self.resolve(actor, ticket_id, text)
        except (WrongState, NotAllowed, NotFound):
            async with self.db.tx() as repo:
                await repo.update_user(actor.id, self.now(), awaiting=None)
            raise

    # -- looking things up -------------------------------------------------------------------

    async def my_tickets(self, actor: Actor) -> list[Reply]:
        """/my: the firm's tickets."""
        async with self.db.read() as repo:
            user = await repo.get_user(actor.id)
            if user is None or user.enterprise_id is None:
                return [Reply(texts.MY_NONE)]
            tickets = await repo.tickets_of_enterprise(user.enterprise_id)
        return [Reply(texts.render_my(tickets))]

    async def view(self, actor: Actor, number: str) -> list[Reply]:
        """/ticket <number>: state and history, for those allowed to see it."""
        async with self.db.read() as repo:
            ticket = await self._by_number(repo, number)
            user = await repo.get_user(actor.id)
            events = await repo.events(ticket.id)
        own = ticket.reporter_id == actor.id or (
            user is not None
            and user.enterprise_id is not None
            and user.enterprise_id == ticket.enterprise_id
        )
        staff = False
        if not own:
            staff = await self.is_coordinator(actor) or await self.is_team_member(
                actor, ticket.team_id
            )
        if not own and not staff:
            raise NotFound(escape(number))
        if ticket.state == TicketState.DRAFT:
            raise NotFound(escape(number))
        return [Reply(texts.render_ticket_view(ticket, events, full=staff))]

    # -- groups ------------------------------------------------------------------------------

    async def bind(self, actor: Actor, title: str | None, team: str) -> list[Reply]:
        """/bind <team_id> in a group (admins only); waiting messages for it are released."""
        if not actor.is_admin:
            raise NotAllowed(texts.NOT_ADMIN)
        if team not in BINDABLE:
            raise BadInput(texts.BIND_USAGE.format(teams=_team_list()))
        now = self.now()
        async with self.db.tx() as repo:
            await repo.bind(actor.chat_id, team, title, actor.id, now)
            target = team if team in (COORDINATOR, "leaders") else f"team:{team}"
            await repo.release_waiting(target, actor.chat_id, now)
        logger.info("chat %s bound to %s by %s", actor.chat_id, team, actor.id)
        self.on_change()
        return [Reply(texts.BIND_DONE.format(team=team_name(team)))]

    async def unbind(self, actor: Actor) -> list[Reply]:
        """/unbind (admins only)."""
        if not actor.is_admin:
            raise NotAllowed(texts.NOT_ADMIN)
        async with self.db.tx() as repo:
            binding = await repo.unbind(actor.chat_id)
        if binding is None:
            return [Reply(texts.UNBIND_NONE)]
        return [Reply(texts.UNBIND_DONE.format(team=team_name(binding.team_id)))]

    async def teams(self) -> list[Reply]:
        """/teams: which group is bound to which team."""
        async with self.db.read() as repo:
            bindings = {b.team_id: b for b in await repo.list_bindings()}
        lines = [texts.TEAMS_HEADER]
        for team in BINDABLE:
            binding = bindings.get(team)
            where = (
                escape(binding.title or str(binding.chat_id)) if binding else texts.TEAMS_UNBOUND
            )
            lines.append(f"{team_name(team)}（{team}）：{where}")
        return [Reply("\n".join(lines))]

    async def migrate_chat(self, old: int, new: int) -> None:
        """A group became a supergroup: its binding follows."""
        async with self.db.tx() as repo:
            await repo.migrate_chat(old, new)
        logger.info("chat %s migrated to %s", old, new)

    async def binding_of(self, chat_id: int) -> str | None:
        """The team bound to a chat, if any."""
        async with self.db.read() as repo:
            binding = await repo.get_binding(chat_id)
        return binding.team_id if binding else None

    async def linked(self, chat_id: int, message_id: int) -> tuple[int, str] | None:
        """The ticket (and purpose) a delivered message belongs to."""
        async with self.db.read() as repo:
            return await repo.linked_ticket(chat_id, message_id)


def _team_of(result: Classification) -> str | None:
    """The team a classification routes to, or None for the coordinators."""
    if result.primary not in TEAM_NAMES or not result.routable:
        return None
    return result.primary


def _team_list() -> str:
    return "\n".join(f"{team} {team_name(team)}" for team in BINDABLE)
