"""/healthz and /metrics: what a supervisor and Prometheus ask of a running bot.

Counts come from the database at each scrape (tickets by state and team, the outbox by status)
and from the delivery loop (failures by kind since start); the update-handling latency is a
histogram the channels feed. Each bot has a registry of its own, not prometheus-client's global
one, so several bots in one process (tests, the simulator's restarts) do not mix.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.delivery.outbox import Delivery
from bot.storage.db import Database
from bot.storage.health import StorageUnavailable

logger = logging.getLogger(__name__)

# Seconds: a delivery loop that has not gone round for this long is taken as stuck (it goes
# round every OUTBOX_POLL_SECONDS, five times that while the disk refuses writes).
LOOP_STALE = 60.0
# Seconds: a message that waits this long to be sent makes /healthz fail.
OLDEST_PENDING_LIMIT = 600.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Snapshot:
    """What the database said at the last scrape."""

    tickets: list[tuple[str, str, int]]
    outbox: dict[str, int]


class _Counts(Collector):
    """Yields the last snapshot (the async handler refreshes it just before)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics())

    def _metrics(self) -> Iterator[Metric]:
        snapshot = self.monitor.snapshot
        tickets = GaugeMetricFamily(
            "yimi_tickets", "Tickets (drafts excluded) by state and team", labels=["state", "team"]
        )
        outbox = GaugeMetricFamily(
            "yimi_outbox_messages", "Outbox messages by status", labels=["status"]
        )
        if snapshot is not None:
            for team, state, n in snapshot.tickets:
                tickets.add_metric([state, team], n)
            for status in ("pending", "waiting", "failed", "sent"):
                outbox.add_metric([status], snapshot.outbox.get(status, 0))
        yield tickets
        yield outbox
        failures = CounterMetricFamily(
            "yimi_delivery_failures",
            "Delivery attempts that failed since start, by kind",
            labels=["kind"],
        )
        delivery = self.monitor.delivery()
        for kind in ("retry_later", "transient", "unreachable", "not_now", "rejected"):
            failures.add_metric([kind], delivery.failures[kind])
        yield failures


class Monitor:
    """The registry and the health verdict of one bot."""

    def __init__(self, db: Database, delivery: Delivery) -> None:
        self.db = db
        self._delivery = delivery
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "yimi_update_handling_seconds",
            "Time from an update's arrival to the end of its handling",
            labelnames=["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.snapshot: Snapshot | None = None
        self.registry.register(_Counts(self))

    def delivery(self) -> Delivery:
        return self._delivery

    def observe(self, channel: str, seconds: float) -> None:
        """One update handled in `seconds`."""
        self.latency.labels(channel=channel).observe(seconds)

    async def metrics(self) -> bytes:
        """The Prometheus text exposition, counts read from the database now."""
        async with self.db.read() as repo:
            self.snapshot = Snapshot(
                await repo.stats.ticket_counts(), await repo.outbox.outbox_counts()
            )
        return generate_latest(self.registry)

    async def health(self, now: datetime) -> tuple[bool, dict[str, Any]]:
        """(healthy, the body): the database answers, the loop goes round, nothing waits long."""
        db, delivery = self.db, self._delivery
        body: dict[str, Any] = {}
        ok = True
        try:
            async with db.read() as repo:
                oldest = await repo.outbox.oldest_pending_outbox()
                counts = await repo.outbox.outbox_counts()
            body["database"] = "ok"
        except (sqlite3.Error, StorageUnavailable) as exc:
            ok = False
            body["database"] = f"error: {exc}"
            oldest, counts = None, {}
        if db.health.failing:
            ok = False
            body["database"] = "refusing writes"
        stale = delivery.last_round is None or time.monotonic() - delivery.last_round > LOOP_STALE
        if not delivery.running or stale:
            ok = False
            body["delivery"] = "stopped" if not delivery.running else "stuck"
        else:
            body["delivery"] = "running"
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        body["outbox_pending"] = counts.get("pending", 0)
        body["oldest_pending_seconds"] = round(max(age, 0.0), 1)
        if age > OLDEST_PENDING_LIMIT:
            ok = False
        body["status"] = "ok" if ok else "fail"
        return ok, body
