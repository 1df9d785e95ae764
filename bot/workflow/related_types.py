"""The data of the related-reports finder (bot/workflow/related.py): its weights, what it keeps
of a report, what it finds, and which towns border which."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Weights:
    """How a candidate's score is made: a logistic model's log-odds over COMPONENTS (fitted
    on tests/data/related_dev.jsonl only; see tests/data/README.md)."""

    token: float = 1.0  # feature weights: a jieba token
    pair: float = 0.5  # a character pair
    char: float = 0.35  # a Chinese character
    word: float = 2.0  # a deciding lexicon word (on top of its token)
    bias: float = -5.1  # the log-odds: a constant, and per component
    similarity: float = 1.42  # the cosine of the two reports' features
    same_town: float = 4.27  # same town/park, fading with the hours between the reports
    near_town: float = 0.85  # a neighbouring one, fading likewise
    town_hours: float = 12.0
    same_team: float = 3.0  # both placed by the classifier, in the same team
    other_team: float = -0.07  # ... in different teams
    shared_word: float = 1.9  # per deciding word both share (at most two count)
    time: float = -1.44  # times log(1 + hours / hours_scale)
    topic: float = 0.0  # feature weight of an incident topic (bot/workflow/incidents.py)
    shared_topic: float = 0.0  # both tell of one incident topic
    other_topic: float = 0.0  # both tell of incident topics, none in common
    hours_scale: float = 24.0
    threshold: float = 0.5  # "probably the same": log-odds at least this
    group: float = 0.2  # a group is joined when the mean probability over its members is this
    cluster: bool = True  # a report found related to a group's member is related to the group
    sample: int = 12  # the newest members of a group scored to decide
    cap: int = 300  # newest postings walked per feature
    budget: int = 3000  # postings walked per lookup, over all its features
    rerank: int = 60  # candidates with the most shared weight scored exactly
    common: float = 0.2  # features in more than this share of the reports are skipped
    min_reports: int = 50  # below this many reports idf uses this count (a young index)
    recent: int = 30  # the newest reports of the same town are candidates without shared words


@dataclass(frozen=True, slots=True)
class Report:
    """What the finder keeps of a submitted ticket."""

    id: int
    number: str
    town: str | None
    team: str | None  # the classifier's primary label (not changed by dispatch)
    enterprise: int | None
    at: float  # submission time, seconds since the epoch
    words: tuple[str, ...] = ()  # the lexicon words that decided its team


@dataclass(frozen=True, slots=True)
class Match:
    """A probably related report and why."""

    report: Report
    score: float
    similarity: float
    place: str  # "same" | "near" | ""
    shared: tuple[str, ...]  # deciding words both reports have
    same_firm: bool
    via: int | None = None  # found through the group of this ticket id (not directly)


@dataclass
class Neighbours:
    """Which towns/parks border which (symmetric)."""

    pairs: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, mapping: Mapping[str, Iterable[str]]) -> Neighbours:
        """From town → neighbours (either direction is enough)."""
        out: dict[str, set[str]] = {}
        for town, others in mapping.items():
            for other in others:
                if other != town:
                    out.setdefault(town, set()).add(other)
                    out.setdefault(other, set()).add(town)
        return cls({t: frozenset(n) for t, n in out.items()})

    def place(self, a: str | None, b: str | None) -> str:
        """ "same", "near" or "" for two towns."""
        if not a or not b:
            return ""
        if a == b:
            return "same"
        return "near" if b in self.pairs.get(a, frozenset()) else ""
