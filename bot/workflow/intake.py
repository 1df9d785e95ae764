"""Intake: a firm's registration, its draft report, the proposal and 确认提交 (no telegram)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.classify.classifier import GENERAL
from bot.core.errors import BadInput, NotAllowed
from bot.core.ids import channel_of
from bot.core.models import (
    COORDINATOR,
    TEAM_NAMES,
    Ticket,
    TicketState,
    Urgency,
    User,
    team_name,
)
from bot.core.ports import Actor
from bot.render import texts
from bot.render.keyboards import (
    Reply,
    draft_keyboard,
    team_choice_keyboard,
)
from bot.storage.db import Repo
from bot.workflow import content, registration
from bot.workflow.base import MAX_REPORT_CHARS, Ground, team_of
from bot.workflow.outbound import enqueue, message
from bot.workflow.relating import Relating

logger = logging.getLogger(__name__)


class Intake:
    """From a firm's first message to a submitted ticket."""

    def __init__(self, ground: Ground, related: Relating) -> None:
        self.ground = ground
        self.related = related

    # -- registration ------------------------------------------------------------------------

    async def start(self, actor: Actor, payload: str = "") -> list[Reply]:
        """/start in private: staff link, registration, or help."""
        now = self.ground.now()
        replies: list[Reply] = []
        link_county = self._link_county(payload)
        async with self.ground.db.tx() as repo:
            user = await repo.users.upsert_user(actor.id, actor.name, actor.username, now)
            fields: dict[str, Any] = {"private_started": 1}
            if payload == "staff":
                fields["is_staff"] = 1
            await repo.users.update_user(actor.id, now, **fields)
            released = await repo.outbox.release_waiting(f"user:{actor.id}", actor.id, now)
            if payload == "staff" or (user.is_staff and not registration.is_registered(user)):
                replies.append(Reply(texts.STAFF_WELCOME.format(name=actor.name)))
                if released:
                    replies.append(Reply(f"有 {released} 条待收的工单信息，马上发给您。"))
            elif registration.is_registered(user):
                replies.append(Reply(texts.HELP_PRIVATE))
            elif user.reg_step is None:
                draft = await repo.tickets.get_draft(actor.id)
                fields, reply = registration.begin(has_draft=draft is not None, county=link_county)
                await repo.users.update_user(actor.id, now, **fields)
                replies.append(reply)
            else:  # in the middle of registration: continue where they were
                data = dict(user.reg_data)
                if link_county is not None and user.reg_step in ("name", "contact", "phone"):
                    data["county"] = link_county
                    await repo.users.update_user(actor.id, now, reg_data=data)
                replies.append(self._prompt(user.reg_step, data, "请继续登记："))
            if actor.is_admin:
                waiting = len(await repo.outbox.waiting_for_target(COORDINATOR))
                if waiting:
                    replies.append(Reply(texts.ADMIN_WAITING.format(count=waiting)))
        self.ground.on_change()
        return replies

    def _link_county(self, payload: str) -> str | None:
        """The county of a county's own link (/start county-<code>), if it is one of ours."""
        code = payload.removeprefix("county-") if payload.startswith("county-") else None
        county = self.ground.counties.get(code) if code else None
        return county.code if county is not None and code else None

    def _prompt(self, step: str, data: dict[str, Any], prefix: str) -> Reply:
        return registration.prompt(step, self.ground.counties, data, prefix)

    async def registration_input(
        self,
        actor: Actor,
        *,
        text: str | None = None,
        contact_phone: str | None = None,
        contact_user_id: str | None = None,
        town_index: int | None = None,
        county_index: int | None = None,
        skip: bool = False,
    ) -> list[Reply]:
        """One registration answer; after the last, the kept draft is shown for confirmation."""
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            user = await self.ground._user(repo, actor)
            if user.reg_step is None and (
                town_index is not None or county_index is not None or skip
            ):
                # A registration button pressed after registering: nothing to ask again.
                raise BadInput(texts.STALE_BUTTON)
            replies, done = await registration.step(
                repo,
                user,
                actor,
                now,
                self.ground.counties,
                text=text,
                contact_phone=contact_phone,
                contact_user_id=contact_user_id,
                town_index=town_index,
                county_index=county_index,
                skip=skip,
            )
            if done:
                draft = await repo.tickets.get_draft(actor.id)
                if draft is not None and draft.text.strip():
                    user = await self.ground._user(repo, actor)
                    await repo.tickets.update_ticket(
                        draft.id, enterprise_id=user.enterprise_id, updated_at=now
                    )
                    replies.append(Reply(texts.REG_DONE_DRAFT.strip()))
                    replies.append(await self._proposal(repo, draft.id))
                else:
                    replies[-1] = Reply(replies[-1].text + texts.REG_DONE_NEXT)
        return replies

    async def needs_registration(self, actor: Actor) -> bool:
        """True while a firm user is in the middle of registration."""
        async with self.ground.db.read() as repo:
            user = await repo.users.get_user(actor.id)
        return user is not None and user.reg_step is not None

    async def profile(self, actor: Actor, edit: bool) -> list[Reply]:
        """/profile and /profile edit."""
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            user = await self.ground._user(repo, actor)
            if edit or not registration.is_registered(user):
                await repo.users.update_user(actor.id, now, reg_step="name", reg_data={})
                return [Reply(texts.REG_START)]
            return [await registration.profile(repo, user, self.ground.counties)]

    # -- drafts ------------------------------------------------------------------------------

    async def report(
        self,
        actor: Actor,
        message_id: str,
        text: str,
        *,
        attachment: tuple[str, str] | None = None,
        location: tuple[float, float] | None = None,
    ) -> list[Reply]:
        """A private message from a firm: joins (or opens) the draft; never lost."""
        now = self.ground.now()
        text = text.strip()
        replies: list[Reply] = []
        if len(text) > MAX_REPORT_CHARS:
            text = text[:MAX_REPORT_CHARS]
            replies.append(Reply(texts.TOO_LONG.format(limit=MAX_REPORT_CHARS)))
        async with self.ground.db.tx() as repo:
            if not await repo.tickets.mark_seen(actor.chat_id, message_id, None):
                return []
            user = await self.ground._user(repo, actor)
            draft = await repo.tickets.get_draft(actor.id)
            kind = content.kind_of(text)
            if (
                kind != "content"
                and attachment is None
                and location is None
                and not await self._has_content(repo, draft)
            ):
                # A greeting, emoji or a key mash opens no report: guide the firm instead.
                return await self._no_content(repo, actor, user, kind)
            if draft is None:
                draft_id = await repo.tickets.insert_ticket(
                    state=TicketState.DRAFT.value,
                    reporter_id=actor.id,
                    channel=channel_of(actor.id),  # where the firm wrote from (问题来源)
                    enterprise_id=user.enterprise_id,
                    text=text,
                    created_at=now,
                    updated_at=now,
                )
                draft = await repo.tickets.get_ticket(draft_id)
                assert draft is not None
                await self.ground._event(repo, draft, actor.id, "created")
            elif text:
                joined = f"{draft.text}\n{text}" if draft.text else text
                if len(joined) > MAX_REPORT_CHARS and not replies:
                    replies.append(Reply(texts.TOO_LONG.format(limit=MAX_REPORT_CHARS)))
                await repo.tickets.update_ticket(
                    draft.id, text=joined[:MAX_REPORT_CHARS], updated_at=now
                )
            if attachment is not None:
                await repo.tickets.insert_attachment(
                    draft.id, attachment[0], attachment[1], text, now
                )
            if location is not None:
                await repo.tickets.update_ticket(
                    draft.id, location=f"{location[0]:.6f},{location[1]:.6f}"
                )
            if not registration.is_registered(user):
                if user.reg_step is None:
                    fields, reply = registration.begin(has_draft=True)
                    await repo.users.update_user(actor.id, now, private_started=1, **fields)
                    replies.append(reply)
                else:
                    replies.append(
                        self._prompt(user.reg_step, user.reg_data, "问题已暂存。请先完成企业登记：")
                    )
                return replies
            replies.append(await self._proposal(repo, draft.id))
        return replies

    async def _has_content(self, repo: Repo, draft: Ticket | None) -> bool:
        """A draft with something to report: a description, an attachment or a location."""
        if draft is None:
            return False
        if content.has_content(draft.text) or draft.location:
            return True
        return bool(await repo.tickets.attachments(draft.id))

    async def _no_content(self, repo: Repo, actor: Actor, user: User, kind: str) -> list[Reply]:
        """The answer to a message with nothing to report; registration starts if needed."""
        if not registration.is_registered(user):
            if user.reg_step is None:
                fields, reply = registration.begin(has_draft=False)
                await repo.users.update_user(
                    actor.id, self.ground.now(), private_started=1, **fields
                )
                return [reply]
            return [self._prompt(user.reg_step, user.reg_data, "请继续登记：")]
        return [Reply(texts.GREETING_GUIDE if kind == "greeting" else texts.ASK_DESCRIPTION)]

    async def _proposal(self, repo: Repo, ticket_id: int) -> Reply:
        ticket = await repo.tickets.get_ticket(ticket_id)
        assert ticket is not None
        attachments = await repo.tickets.attachments(ticket_id)
        if not content.has_content(ticket.text) and not attachments and not ticket.location:
            return Reply(texts.DRAFT_EMPTY if not ticket.text.strip() else texts.ASK_DESCRIPTION)
        result = self.ground.classifier.classify(ticket.text)
        urgency = ticket.urgency
        if result.urgent and urgency == Urgency.NORMAL and ticket.classified_by == "auto":
            urgency = Urgency.URGENT
        team = (
            ticket.team_id
            if ticket.classified_by == "reporter"
            else team_of(result, self.ground.settings.low_confidence)
        )
        if result.confidential:  # a complaint about officials: the coordinators only
            team = None
        co = [label for label in result.labels[1:] if label in TEAM_NAMES]
        await repo.tickets.update_ticket(
            ticket_id,
            team_id=team,
            confidential=result.confidential,
            request_type="投诉" if result.confidential else ticket.request_type,
            predicted_team=result.primary,
            co_teams=co if team == result.primary else [],
            domain_words=list(result.words),
            confidence=result.confidence,
            urgency=urgency.value,
            summary=texts.summary_of(ticket.text) or "（附件/位置）",
            updated_at=self.ground.now(),
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
                summary=texts.clip(ticket.text, 300) or "（附件/位置）",
                team=(
                    team_name(team)
                    if team
                    else texts.DRAFT_CONFIDENTIAL
                    if result.confidential
                    else texts.DRAFT_GENERAL
                ),
                co=co_text,
                words=texts.words_text(result.words),
                urgency=urgency.label,
                attachments=extra,
            ),
            buttons=draft_keyboard(ticket_id, urgency == Urgency.URGENT),
        )

    async def _own_draft(self, repo: Repo, actor: Actor, ticket_id: int) -> Ticket:
        ticket = await repo.tickets.get_ticket(ticket_id)
        if ticket is None or ticket.reporter_id != actor.id:
            raise NotAllowed("这不是您的草稿")
        if ticket.state != TicketState.DRAFT:
            raise BadInput(texts.DRAFT_GONE)
        return ticket

    async def choose_team(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """换个团队: the team buttons."""
        async with self.ground.db.read() as repo:
            await self._own_draft(repo, actor, ticket_id)
        return [Reply(texts.DRAFT_CHOOSE, buttons=team_choice_keyboard(ticket_id, "pick"))]

    async def pick_team(self, actor: Actor, ticket_id: int, team: str) -> list[Reply]:
        """The reporter's own choice of team (stored as a correction when it differs)."""
        if team not in TEAM_NAMES and team != GENERAL:
            raise BadInput(texts.STALE_BUTTON)
        async with self.ground.db.tx() as repo:
            await self._own_draft(repo, actor, ticket_id)
            await repo.tickets.update_ticket(
                ticket_id,
                team_id=None if team == GENERAL else team,
                classified_by="reporter",
                updated_at=self.ground.now(),
            )
            return [await self._proposal(repo, ticket_id)]

    async def toggle_urgent(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """The reporter marks the draft urgent (production stopped, safety) or not."""
        async with self.ground.db.tx() as repo:
            ticket = await self._own_draft(repo, actor, ticket_id)
            urgency = Urgency.NORMAL if ticket.urgency == Urgency.URGENT else Urgency.URGENT
            await repo.tickets.update_ticket(
                ticket_id,
                urgency=urgency.value,
                classified_by=(
                    "reporter" if ticket.classified_by == "reporter" else "auto_urgency_set"
                ),
            )
            return [await self._proposal(repo, ticket_id)]

    async def cancel_draft(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """取消: the draft is cancelled, kept in the log."""
        async with self.ground.db.tx() as repo:
            ticket = await self._own_draft(repo, actor, ticket_id)
            await repo.tickets.update_ticket(
                ticket_id, state=TicketState.CANCELLED.value, updated_at=self.ground.now()
            )
            await self.ground._event(repo, ticket, actor.id, "withdrawn", TicketState.CANCELLED)
        return [Reply(texts.DRAFT_CANCELLED)]

    async def confirm(self, actor: Actor, ticket_id: int) -> list[Reply]:
        """确认提交: number, deadline, receipt and card, in one transaction."""
        now = self.ground.now()
        async with self.ground.db.tx() as repo:
            user = await self.ground._user(repo, actor)
            if not registration.is_registered(user):
                raise BadInput("请先完成企业登记。")
            ticket = await self._own_draft(repo, actor, ticket_id)
            attachments = await repo.tickets.attachments(ticket_id)
            if not content.has_content(ticket.text) and not attachments and not ticket.location:
                raise BadInput(
                    texts.DRAFT_EMPTY if not ticket.text.strip() else texts.ASK_DESCRIPTION
                )
            enterprise = (
                await repo.users.get_enterprise(user.enterprise_id) if user.enterprise_id else None
            )
            county = enterprise.county if enterprise is not None else ""
            policy = self.ground.policy_for(county)
            number = await self._new_number(repo, now, county)
            due = policy.due_at(now, ticket.urgency)
            routed = ticket.team_id is not None
            state = TicketState.PENDING_CLAIM if routed else TicketState.PENDING_DISPATCH
            await repo.tickets.update_ticket(
                ticket_id,
                number=number,
                state=state.value,
                enterprise_id=user.enterprise_id,
                county=county,
                submitted_at=now,
                dispatched_at=now if routed else None,
                claim_due_at=policy.claim_due(now),
                due_at=due,
                updated_at=now,
            )
            await self.ground._event(
                repo, ticket, actor.id, "submitted", state, team=ticket.team_id
            )
            submitted = await repo.tickets.get_ticket(ticket_id)
            assert submitted is not None
            # Before the card is queued: the card shows the related tickets found now.
            await self.related.submitted(repo, submitted)
            if ticket.classified_by == "reporter" and ticket.team_id != ticket.predicted_team:
                await repo.tickets.insert_correction(
                    ticket_id,
                    ticket.text,
                    ticket.predicted_team or GENERAL,
                    ticket.team_id or GENERAL,
                    "reporter",
                    now,
                )
            await self.ground._send_card(repo, ticket_id, ticket.team_id)
            receipt = texts.RECEIPT.format(
                number=number,
                team=team_name(ticket.team_id) if routed else "专班（调度）分拨中",
                due=texts.fmt_dt(due),
            )
            # The receipt is stored with the ticket: a crash after commit cannot lose it.
            await enqueue(repo, now, f"user:{actor.id}", "message", message(receipt), ticket_id)
        logger.info("ticket %s submitted, team %s, chat %s", number, ticket.team_id, actor.chat_id)
        self.ground.on_change()
        return []

    async def _new_number(self, repo: Repo, now: datetime, county: str) -> str:
        """YM-YYYYMMDD-NNNN, or YM-<prefix>-YYYYMMDD-NNNN in a county with a prefix (each
        county counts its own)."""
        day = now.strftime("%Y%m%d")
        prefix = self.ground.counties.of(county).prefix if county else ""
        serial = await repo.tickets.next_number(day, county)
        return f"YM-{prefix}-{day}-{serial:04d}" if prefix else f"YM-{day}-{serial:04d}"
