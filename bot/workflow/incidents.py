"""Incident topics for related reports (issue 13): the kinds of event that hit many firms at once
(a power cut, a road closed, hail), each with the many ways people tell it — the thing, its
symptoms, causes and consequences ("冷库温度升到零下八度", "变压器冒烟了", "啥时候来电") — and
the look-alikes that mean another topic ("电费", "去年停电"). Two reports of one topic are
probably about the same event even when they share no word; two of different topics are not.

The map is data (`incidents.toml`, written from the team's knowledge of how a county talks, not
from the labelled sets; see tests/data/README.md). Matching is plain substrings, looked for by
their first character; a word inside one of its own topic's look-alikes does not count.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

PATH = Path(__file__).with_name("incidents.toml")


class Incidents:
    """Which incident topics a text tells of."""

    def __init__(self, topics: dict[str, tuple[list[str], list[str]]]) -> None:
        # first character -> (word, topic), longest words first
        self._words: dict[str, list[tuple[str, str]]] = {}
        self._not = {topic: nots for topic, (_, nots) in topics.items() if nots}
        for topic, (words, _) in topics.items():
            for word in words:
                self._words.setdefault(word[0], []).append((word, topic))
        for entries in self._words.values():
            entries.sort(key=lambda e: -len(e[0]))
        self.topics = sorted(topics)

    @classmethod
    def load(cls, path: Path = PATH) -> Incidents:
        """The map in `path` ([topic.<key>] tables with `words` and optional `not`)."""
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        topics: dict[str, tuple[list[str], list[str]]] = {}
        for key, table in data.get("topic", {}).items():
            words = [w.strip().lower() for w in table.get("words", []) if len(w.strip()) >= 2]
            nots = [w.strip().lower() for w in table.get("not", []) if len(w.strip()) >= 2]
            topics[key] = (words, nots)
        return cls(topics)

    def of(self, text: str) -> frozenset[str]:
        """The topics `text` tells of (empty when none): a topic counts when one of its words
        appears outside every look-alike of that topic (电费 blocks 停电's 电 words, not 停水)."""
        lowered = text.lower()
        spans: dict[str, list[tuple[int, int]]] = {}
        words = self._words
        for i, ch in enumerate(lowered):
            for word, topic in words.get(ch, ()):
                if lowered.startswith(word, i):
                    spans.setdefault(topic, []).append((i, i + len(word)))
        found = set()
        for topic, hits in spans.items():
            blocked = self._blocked(lowered, topic)
            if any(not any(a <= i and j <= b for a, b in blocked) for i, j in hits):
                found.add(topic)
        return frozenset(found)

    def _blocked(self, text: str, topic: str) -> list[tuple[int, int]]:
        """Where the topic's look-alikes stand in the text."""
        out = []
        for word in self._not.get(topic, ()):
            at = text.find(word)
            while at >= 0:
                out.append((at, at + len(word)))
                at = text.find(word, at + 1)
        return out


@cache
def incidents() -> Incidents:
    """The shipped map, read once."""
    return Incidents.load()
