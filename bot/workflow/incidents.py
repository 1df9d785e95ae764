"""Incident topics for related reports (issue 13): the kinds of event that hit many firms at once
(a power cut, a road closed, hail), each with the many ways people tell it — the thing, its
symptoms, causes and consequences ("冷库温度升到零下八度", "变压器冒烟了", "啥时候来电") — and
the look-alikes that mean another topic ("电费", "去年停电"). Two reports of one topic are
probably about the same event even when they share no word; two of different topics are not.

The map is data (`incidents.toml`, written from the team's knowledge of how a county talks, not
from the labelled sets; see tests/data/README.md). Matching is plain substrings: a look-alike
is blanked out of the text first, then every word is looked for, by its first character.
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
        self._not: dict[str, list[str]] = {}
        for topic, (words, nots) in topics.items():
            for word in words:
                self._words.setdefault(word[0], []).append((word, topic))
            for word in nots:
                self._not.setdefault(word[0], []).append(word)
        for entries in self._words.values():
            entries.sort(key=lambda e: -len(e[0]))
        for nots_ in self._not.values():
            nots_.sort(key=len, reverse=True)
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
        """The topics `text` tells of (empty when none)."""
        lowered = self._blank(text.lower())
        found: set[str] = set()
        words = self._words
        for i, ch in enumerate(lowered):
            entries = words.get(ch)
            if entries:
                for word, topic in entries:
                    if topic not in found and lowered.startswith(word, i):
                        found.add(topic)
        return frozenset(found)

    def _blank(self, text: str) -> str:
        """The text with every look-alike replaced by spaces."""
        if not any(ch in self._not for ch in text):
            return text
        out = list(text)
        i = 0
        while i < len(text):
            for word in self._not.get(text[i], ()):
                if text.startswith(word, i):
                    out[i : i + len(word)] = " " * len(word)
                    i += len(word) - 1
                    break
            i += 1
        return "".join(out)


@cache
def incidents() -> Incidents:
    """The shipped map, read once."""
    return Incidents.load()
