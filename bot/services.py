"""Every service built from Settings, independent of any channel: the composition root.

A channel brings its `Sender` (and how it tells who is in a group); everything else, the
database, the workflow, follow-up, reports and the delivery loop, is the same for all channels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bot.classify.classifier import Classifier
from bot.config import Settings
from bot.core.ids import TELEGRAM, WECOM, channel_of, qualify
from bot.core.ports import Clock, Membership
from bot.delivery.outbox import Delivery, Sender
from bot.reporting.monitor import Monitor
from bot.reporting.service import Reports
from bot.storage import lease
from bot.storage.backup import BackupError, RunLock, daily_backup
from bot.storage.db import Database
from bot.storage.lease import Leadership
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
    monitor: Monitor
    run_lock: RunLock | None = None
    leadership: Leadership | None = None  # several processes on PostgreSQL: the lead's renewal


def admin_ids(settings: Settings) -> list[str]:
    """The admins of every configured channel, as qualified ids."""
    return [qualify(TELEGRAM, admin) for admin in settings.admin_ids] + [
        qualify(WECOM, admin) for admin in settings.wecom_admin_ids
    ]


async def open_services(
    settings: Settings,
    clock: Clock,
    classifier: Classifier,
    senders: dict[str, Sender],
    memberships: dict[str, Membership],
) -> Services:
    """Open the database and build the services on the given channels."""
    # A SQLite file has one bot; PostgreSQL is shared by design (no lock file).
    lock = None if settings.database_dsn else RunLock(settings.database_path)
    if lock is not None and not lock.acquire():  # not fatal: only `restore` depends on it
        logging.getLogger(__name__).warning(
            "another process holds %s: is a second bot running on this database?", lock.path
        )
    try:
        db = await Database.at(settings.database_path, settings.database_dsn)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    members = Memberships(dict(memberships))
    workflow = Workflow(db, classifier, settings, clock, members)
    await workflow.relating.load()
    delivery = Delivery(db, senders, clock, settings.outbox_poll_seconds, admin_ids(settings))
    workflow.on_change = delivery.wake
    followup = FollowUp(db, settings, clock, workflow.policy, workflow.rights)
    followup.on_change = delivery.wake
    reports = Reports(db, settings, clock, workflow.calendar, workflow.policy, workflow.rights)
    monitor = Monitor(db, delivery)
    services = Services(settings, db, workflow, delivery, followup, reports, members, monitor, lock)
    if lease.LEADING and settings.database_dsn:  # this process waited for the lead (cli)
        services.leadership = Leadership(db, lease.LEADING)
        services.leadership.start()
    return services


def add_channel(
    services: Services, channels: tuple[str, ...], sender: Sender, membership: Membership
) -> None:
    """A channel whose sender needs the open services (WeCom keeps its cards in the database):
    its chats (one or more channel names) go to `sender`, its groups' members to `membership`."""
    for channel in channels:
        services.delivery.add_sender(channel, sender)
        services.memberships.by_channel[channel] = membership


async def close_services(services: Services) -> None:
    """Stop delivery and close the database."""
    await services.delivery.stop()
    if services.leadership is not None:
        await services.leadership.stop()
    await services.db.close()
    if services.run_lock is not None:
        services.run_lock.release()


async def run_daily_backup(services: Services) -> Path | None:
    """The daily backup (BACKUP_DIR, BACKUP_KEEP), off a thread: the bot keeps working."""
    import asyncio

    settings = services.settings
    if settings.backup_dir is None:
        return None
    try:
        return await asyncio.to_thread(
            partial(daily_backup, url=settings.database_dsn),
            settings.database_path,
            settings.backup_dir,
            settings.backup_keep,
            services.workflow.now().date(),
        )
    except (BackupError, OSError) as exc:
        logging.getLogger(__name__).error("daily backup failed: %s", exc)
        return None
