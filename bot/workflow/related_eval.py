"""Scoring the related-reports finder on a labelled set (tests/data/related_*.jsonl).

A set is JSON lines `{"id", "town", "hour", "text", "event"}`: two reports are related iff they
share an event. The reports are replayed in time order through a fresh `RelatedFinder` (the real
classifier's tokens, team and deciding words); each one proposes the earlier reports the finder
returns, and the proposed pairs are scored against every related pair of the set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.classify.classifier import Classifier
from bot.workflow.related import Neighbours, RelatedFinder, Report, Weights

BASE = 1_790_000_000.0  # any epoch second: the sets give hours from a Monday 00:00


@dataclass(frozen=True, slots=True)
class Labelled:
    """One report of a labelled set."""

    id: str
    town: str
    hour: float
    text: str
    event: str


@dataclass(frozen=True, slots=True)
class PairScore:
    """Precision and recall of the proposed pairs."""

    proposed: int
    correct: int
    related: int

    @property
    def precision(self) -> float:
        """Correct proposals among all proposals (1.0 when nothing was proposed)."""
        return self.correct / self.proposed if self.proposed else 1.0

    @property
    def recall(self) -> float:
        """Related pairs proposed among all related pairs."""
        return self.correct / self.related if self.related else 1.0


def load(path: Path) -> list[Labelled]:
    """A labelled set, in time order."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            items.append(
                Labelled(
                    str(raw["id"]),
                    str(raw["town"]),
                    float(raw["hour"]),
                    str(raw["text"]),
                    str(raw["event"]),
                )
            )
    return sorted(items, key=lambda r: (r.hour, r.id))


def proposals(
    items: Sequence[Labelled],
    classifier: Classifier,
    neighbours: Neighbours,
    weights: Weights | None = None,
    *,
    window_workdays: int | None = None,
    threshold: float | None = None,
) -> list[tuple[str, str, float]]:
    """Replay the set: (earlier id, later id, score) for every pair the finder proposes, the
    finder searching the last `window_workdays` working days (all of the set when None)."""
    finder = RelatedFinder(classifier.tokens, neighbours, weights)
    ids: dict[int, str] = {}
    out: list[tuple[str, str, float]] = []
    for n, item in enumerate(items, 1):
        result = classifier.classify(item.text)
        at = BASE + item.hour * 3600.0
        since = None
        if window_workdays is not None:
            since = BASE + window_start(item.hour, window_workdays) * 3600.0
        matches = finder.find(
            item.text,
            town=item.town,
            team=result.primary,
            at=at,
            words=result.words,
            since=since,
            limit=1000,
            threshold=threshold,
        )
        out.extend((ids[m.report.id], item.id, m.score) for m in matches)
        report = Report(n, item.id, item.town, result.primary, n, at, result.words)
        finder.add(report, item.text, [m.report.id for m in matches])
        ids[n] = item.id
    return out


def window_start(hour: float, workdays: int) -> float:
    """The hour at which a window of `workdays` working days (Mon–Fri, as the sets count them;
    today included when it is one) starts, midnight."""
    day = int(hour // 24)
    counted = 0
    while True:
        if day % 7 < 5:
            counted += 1
            if counted >= workdays:
                return day * 24.0
        day -= 1


def score(
    items: Sequence[Labelled],
    proposed: Sequence[tuple[str, str, float]],
    *,
    window_workdays: int | None = None,
) -> PairScore:
    """Precision and recall of `proposed` against the set's events; with `window_workdays`,
    recall counts only the related pairs inside the window the finder searched."""
    hour = {item.id: item.hour for item in items}
    event = {item.id: item.event for item in items}
    by_event: dict[str, list[Labelled]] = {}
    for item in items:
        by_event.setdefault(item.event, []).append(item)
    related = 0
    for members in by_event.values():
        for j, later in enumerate(members):
            for earlier in members[:j]:
                if window_workdays is None or earlier.hour >= window_start(
                    later.hour, window_workdays
                ):
                    related += 1
    pairs = {(a, b) for a, b, _ in proposed}
    correct = sum(1 for a, b in pairs if event[a] == event[b] and hour[a] <= hour[b])
    return PairScore(len(pairs), correct, related)
