"""Every service built from Settings, independent of any channel: the composition root.

A channel brings its `Sender` (and how it tells who is in a group); everything else, the
database, the workflow, follow-up, reports and the delivery loop, is the same for all channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.classify.classifier import Classifier
from bot.config import Settings
from bot.core.ids import TELEGRAM, channel_of, qualify
from bot.core.ports import Clock, Membership
from bot.delivery.outbox import Delivery, Sender
from bot.reporting.service import Reports
from bot.storage.db import Database
from bot.workflow.facade import Workflow
from bot.workflow.followup import FollowUp


@dataclass
class Memberships:
    """Group membership asked of the channel a (qualified) group belongs to."""

    by_channel: dict[str, Membership] = field(default_factory=dict)

    async def is_member(self, chat_id: str, user_id: str) -> bool:
        """Whether `user_id` is in the group `chat_id` (False on a channel not running)."""
        channel = self.by_channel.get(channel_of(chat_id))
        return channel is not None and await channel.is_member(chat_id, user_id)


@dataclass
class Services:
    """What every channel's handlers use; opened at start, closed at stop."""

    settings: Settings
    db: Database
    workflow: Workflow
    delivery: Delivery
    followup: FollowUp
    reports: Reports
    memberships: Memberships


def admin_ids(settings: Settings) -> list[str]:
    """The admins of every configured channel, as qualified ids."""
    return [qualify(TELEGRAM, admin) for admin in settings.admin_ids]


async def open_services(
    settings: Settings,
    clock: Clock,
    classifier: Classifier,
    senders: dict[str, Sender],
    memberships: dict[str, Membership],
) -> Services:
    """Open the database and build the services on the given channels."""
    db = await Database.open(settings.database_path)
    members = Memberships(dict(memberships))
    workflow = Workflow(db, classifier, settings, clock, members)
    delivery = Delivery(db, senders, clock, settings.outbox_poll_seconds, admin_ids(settings))
    workflow.on_change = delivery.wake
    followup = FollowUp(db, settings, clock, workflow.policy, workflow.rights)
    followup.on_change = delivery.wake
    reports = Reports(db, settings, clock, workflow.calendar, workflow.policy, workflow.rights)
    return Services(settings, db, workflow, delivery, followup, reports, members)


async def close_services(services: Services) -> None:
    """Stop delivery and close the database."""
    await services.delivery.stop()
    await services.db.close()
