"""Related reports (issue 13): which open, recent tickets are probably the same problem.

Pure and in memory: an inverted index from text features to the reports that have them, filled
from the database at start (bot/workflow/relating.py, `Relating.load`) and on every submission.
A report's features are the classifier's own jieba tokens, the character pairs and characters
of its Chinese runs and the lexicon's deciding words (weighted up), each weighted by how rare it
is among the indexed reports (idf). A candidate's score is a log-odds over COMPONENTS: the
cosine of the two reports' features, the same or a neighbouring town/park (fading over hours),
the team the classifier chose for each, the deciding words both share and the time between them
(fitted on tests/data/related_dev.jsonl only, see tests/data/README.md). "Probably the same" is
a score of at least `threshold`; a report related to a member of a group (an earlier burst) is
related to the whole group when it matches the group's newest members well on average.

Speed: posting lists are in submission order; a lookup walks only their part inside the window,
the rarest features first, at most `cap` newest entries per feature and `budget` in all, skips
features most reports have, and scores exactly the `rerank` best candidates and the newest
reports of the same town. `bench/related.py` measures it at 100,000 open tickets.
"""

from __future__ import annotations

import math
import re
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from bot.workflow.incidents import Incidents, incidents
from bot.workflow.related_types import Match as Match  # re-exported
from bot.workflow.related_types import Neighbours as Neighbours  # re-exported
from bot.workflow.related_types import Report as Report  # re-exported
from bot.workflow.related_types import Weights as Weights  # re-exported

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_WORDISH = re.compile(r"[0-9a-z\u4e00-\u9fff]")
# Words every report has: they say nothing about which problem it is.
_STOP = """
我们 你们 他们 我厂 我司 公司 企业 厂里 我们厂 现在 今天 一直 已经 问题 情况 这个 那个
什么 怎么 怎么办 为什么 没有 不能 可以 能不能 需要 希望 请问 帮忙 帮助 麻烦 一下 还是 就是
但是 因为 所以 如果 这样 那边 这边 这里 那里 时候 之后 以后 目前 还有 一些 非常 比较
特别 相关 部门 领导 政府 反映 咨询 了解 处理 解决 尽快 及时 谢谢 您好 你好
"""
STOP_TOKENS = frozenset(_STOP.split())


@dataclass(slots=True)
class _Doc:
    report: Report
    feats: tuple[str, ...]  # interned: a hundred thousand reports share their strings
    group: int  # the group's key (a member's seq)
    norm: float = 0.0  # of its weighted features, with the idf of when it was indexed


class RelatedFinder:
    """The inverted index over open and recent reports, the groups found so far, the lookup."""

    def __init__(
        self,
        tokens: Callable[[str], list[str]],
        neighbours: Neighbours | None = None,
        weights: Weights | None = None,
        topics: Incidents | None = None,
    ) -> None:
        self._tokens = tokens
        self.neighbours = neighbours or Neighbours()
        self.w = weights or Weights()
        self.topics = topics if topics is not None else incidents()
        self._reset()

    def _reset(self) -> None:
        self._post: dict[str, list[int]] = {}  # feature -> seqs, ascending
        self._docs: list[_Doc | None] = []  # by seq
        self._at: list[float] = []  # by seq, ascending
        self._by_id: dict[int, int] = {}  # ticket id -> seq
        self._town: dict[str, list[int]] = {}  # town -> seqs, ascending
        self._groups: dict[int, list[int]] = {}  # group -> member seqs, ascending
        self._live = 0

    def __len__(self) -> int:
        return self._live

    # -- features ----------------------------------------------------------------------------

    def features(self, text: str, words: Sequence[str] = ()) -> dict[str, float]:
        """A text's features and their base weights (before idf)."""
        w = self.w
        feats: dict[str, float] = {}
        lowered = text.lower()
        for tok in self._tokens(lowered):
            if len(tok) >= 2 and tok not in STOP_TOKENS and _WORDISH.search(tok):
                feats["t" + tok] = w.token
        for run in _CJK_RUN.findall(lowered):
            for i in range(len(run) - 1):
                feats.setdefault("p" + run[i : i + 2], w.pair)
            if w.char:
                for ch in run:
                    feats.setdefault("c" + ch, w.char)
        for word in words:
            feats["w" + word.lower()] = w.word
        if w.topic or w.shared_topic or w.other_topic:
            for topic in self.topics.of(lowered):
                feats["k" + topic] = w.topic or 1e-9
        return feats

    def _idf(self, df: int) -> float:
        n = max(self._live, self.w.min_reports)
        return math.log((n + 1) / (df + 1)) + 1.0

    def _norm(self, feats: dict[str, float]) -> float:
        post = self._post
        return math.sqrt(
            sum((base * self._idf(len(post.get(f, ())) + 1)) ** 2 for f, base in feats.items())
        )

    # -- the index ---------------------------------------------------------------------------

    def add(self, report: Report, text: str, related: Iterable[int] = ()) -> None:
        """Index a submitted report (in submission order), in one group with the tickets it
        was found related to (`related`: ticket ids). A report indexed before is replaced."""
        self.discard(report.id)
        seq = len(self._docs)
        if self._at and report.at < self._at[-1]:
            # a late arrival (clock skew): keep the times ascending for the window's bisect
            report = replace(report, at=self._at[-1])
        weighted = self.features(text, report.words)
        feats = tuple(sys.intern(f) for f in weighted)
        self._docs.append(_Doc(report, feats, seq, self._norm(weighted)))
        self._at.append(report.at)
        self._by_id[report.id] = seq
        self._groups[seq] = [seq]
        self._live += 1
        for f in feats:
            self._post.setdefault(f, []).append(seq)
        if report.town:
            self._town.setdefault(report.town, []).append(seq)
        for ticket_id in related:
            other = self._by_id.get(ticket_id)
            if other is not None:
                self._join(seq, other)

    def _join(self, a: int, b: int) -> None:
        """Merge the groups of two reports (the smaller into the larger)."""
        da, db = self._docs[a], self._docs[b]
        if da is None or db is None or da.group == db.group:
            return
        big, small = (da.group, db.group)
        if len(self._groups[big]) < len(self._groups[small]):
            big, small = small, big
        for seq in self._groups.pop(small):
            doc = self._docs[seq]
            if doc is not None:
                doc.group = big
            self._groups[big].append(seq)
        self._groups[big].sort()

    def discard(self, ticket_id: int) -> None:
        """Forget a report (closed, cancelled); its postings are dropped at the next prune."""
        seq = self._by_id.pop(ticket_id, None)
        if seq is not None and self._docs[seq] is not None:
            self._docs[seq] = None
            self._live -= 1

    def prune(self, since: float) -> None:
        """Drop reports submitted before `since` and every forgotten posting (rebuilds the
        lists: run it now and then, not per lookup). Groups are kept."""
        kept = [d for d in self._docs if d is not None and d.report.at >= since]
        groups: dict[int, list[int]] = {}
        for doc in kept:
            groups.setdefault(doc.group, []).append(doc.report.id)
        self._reset()
        for doc in kept:
            self._readd(doc)
        for members in groups.values():
            first = self._by_id[members[0]]
            for ticket_id in members[1:]:
                self._join(first, self._by_id[ticket_id])

    def _readd(self, doc: _Doc) -> None:
        seq = len(self._docs)
        self._docs.append(_Doc(doc.report, doc.feats, seq, doc.norm))
        self._at.append(doc.report.at)
        self._by_id[doc.report.id] = seq
        self._groups[seq] = [seq]
        self._live += 1
        for f in doc.feats:
            self._post.setdefault(f, []).append(seq)
        if doc.report.town:
            self._town.setdefault(doc.report.town, []).append(seq)

    @property
    def dead(self) -> int:
        """Entries forgotten or out of date but still in the lists."""
        return len(self._docs) - self._live

    def group_of(self, ticket_id: int) -> list[Report]:
        """The reports in one group with a ticket (itself included), oldest first."""
        seq = self._by_id.get(ticket_id)
        doc = self._docs[seq] if seq is not None else None
        if doc is None:
            return []
        members = (self._docs[s] for s in self._groups.get(doc.group, []))
        return [m.report for m in members if m is not None]

    # -- the lookup --------------------------------------------------------------------------

    def find(
        self,
        text: str,
        *,
        town: str | None,
        team: str | None,
        at: float,
        words: Sequence[str] = (),
        since: float | None = None,
        enterprise: int | None = None,
        exclude: int | None = None,
        limit: int = 20,
        threshold: float | None = None,
    ) -> list[Match]:
        """The reports submitted since `since` that are probably the same problem, best first:
        those found directly, then the rest of their groups."""
        w = self.w
        query = self.features(text, words)
        start = bisect_left(self._at, since) if since is not None else 0
        common = w.common * max(self._live, w.min_reports)
        qidf: dict[str, float] = {}  # query feature -> its weight (base × idf)
        lists: list[tuple[int, str, list[int]]] = []
        for f, base in query.items():
            plist = self._post.get(f)
            df = len(plist) if plist else 0
            qidf[f] = base * self._idf(df)
            if plist and df <= common:
                lists.append((df, f, plist))
        # The rarest features first: they say most and cost least; common ones share the rest
        # of the budget, newest postings first.
        lists.sort()
        acc: dict[int, float] = {}
        budget = w.budget
        for df, f, plist in lists:
            if budget <= 0:
                break
            lo = max(bisect_left(plist, start), df - min(w.cap, budget))
            budget -= df - lo
            gain = qidf[f] * qidf[f]
            for seq in plist[lo:]:
                acc[seq] = acc.get(seq, 0.0) + gain
        best = sorted(acc, key=acc.__getitem__, reverse=True)[: w.rerank]
        if town and w.recent:
            nearby = self._town.get(town, [])
            best.extend(s for s in nearby[-w.recent :] if s >= start and s not in acc)
        qnorm = math.sqrt(sum(v * v for v in qidf.values()))
        cut = w.threshold if threshold is None else threshold
        qwords = {x.lower() for x in words}
        direct: dict[int, Match] = {}
        for seq in best:
            doc = self._docs[seq]
            if doc is None or doc.report.id == exclude:
                continue
            match = self._score(doc, query, qidf, qnorm, qwords, town, team, at, enterprise)
            if match.score >= cut:
                direct[seq] = match
        found = sorted(direct.values(), key=lambda m: (-m.score, -m.report.at))
        if w.cluster:

            def score(doc: _Doc) -> Match:
                return self._score(doc, query, qidf, qnorm, qwords, town, team, at, enterprise)

            def known(doc: _Doc, value: float) -> Match:
                report = doc.report
                return Match(
                    report,
                    round(value, 4),
                    0.0,
                    self.neighbours.place(town, report.town),
                    tuple(x for x in report.words if x.lower() in qwords),
                    enterprise is not None and enterprise == report.enterprise,
                )

            found += self._through_groups(direct, start, exclude, score, known, limit)
        return found[:limit]

    def _through_groups(
        self,
        direct: dict[int, Match],
        start: int,
        exclude: int | None,
        score: Callable[[_Doc], Match],
        known: Callable[[_Doc, float], Match],
        limit: int,
    ) -> list[Match]:
        """The other members (inside the window) of the groups of the direct matches, for each
        group whose members the report matches well on average (a group is not joined on one
        member's word: single links chain separate problems together). The newest `sample`
        members are scored; the rest of a joined group get the group's mean."""
        out: list[Match] = []
        seen = set(direct)
        groups = dict.fromkeys(d.group for s in direct if (d := self._docs[s]) is not None)
        for group in groups:
            listed = self._groups.get(group, [])
            newest = listed[max(bisect_left(listed, start), len(listed) - limit) :]
            members = [
                m
                for m in newest
                if m >= start
                and m not in seen
                and (d := self._docs[m]) is not None
                and d.report.id != exclude
            ]
            if not members:
                continue
            sampled = members[-self.w.sample :]
            scored = [score(d) for m in sampled if (d := self._docs[m]) is not None]
            inside = [direct[m] for m in self._groups[group] if m in direct]
            probs = [_sigmoid(m.score) for m in scored + inside]
            mean = sum(probs) / len(probs)
            if mean < self.w.group:
                continue
            via = max(inside, key=lambda m: m.score).report.id
            rest = members[: -self.w.sample] if len(members) > self.w.sample else []
            logit = math.log(mean / (1.0 - mean)) if mean < 1.0 else 30.0
            scored += [known(d, logit) for m in rest if (d := self._docs[m]) is not None]
            for match in scored:
                seen.add(self._by_id[match.report.id])
                out.append(replace(match, via=via))
        out.sort(key=lambda m: (-m.score, -m.report.at))
        return out

    COMPONENTS = (
        "similarity",
        "same_town",
        "near_town",
        "same_team",
        "other_team",
        "shared_word",
        "time",
        "shared_topic",
        "other_topic",
    )

    def components(
        self,
        doc: _Doc,
        qidf: dict[str, float],
        qnorm: float,
        qwords: set[str],
        town: str | None,
        team: str | None,
        at: float,
    ) -> tuple[float, ...]:
        """What a candidate's score is made of (in the order of COMPONENTS)."""
        w = self.w
        dot = sum(qidf[f] * qidf[f] for f in doc.feats if f in qidf)
        sim = min(dot / (qnorm * doc.norm), 1.0) if qnorm and doc.norm else 0.0
        report = doc.report
        place = self.neighbours.place(town, report.town)
        hours = abs(at - report.at) / 3600.0
        fade = math.exp(-hours / w.town_hours)
        placed = bool(team and report.team and team != "general" and report.team != "general")
        qtopics = {f for f in qidf if f[0] == "k"}
        dtopics = {f for f in doc.feats if f[0] == "k"}
        return (
            sim,
            fade if place == "same" else 0.0,
            fade if place == "near" else 0.0,
            1.0 if placed and team == report.team else 0.0,
            1.0 if placed and team != report.team else 0.0,
            float(min(sum(1 for x in report.words if x.lower() in qwords), 2)),
            math.log1p(hours / w.hours_scale),
            1.0 if qtopics & dtopics else 0.0,
            1.0 if qtopics and dtopics and not qtopics & dtopics else 0.0,
        )

    def _score(
        self,
        doc: _Doc,
        query: dict[str, float],
        qidf: dict[str, float],
        qnorm: float,
        qwords: set[str],
        town: str | None,
        team: str | None,
        at: float,
        enterprise: int | None,
    ) -> Match:
        w = self.w
        sim, same, near, same_team, other_team, shared_n, time, topic, other = self.components(
            doc, qidf, qnorm, qwords, town, team, at
        )
        score = (
            w.bias
            + w.similarity * sim
            + w.same_town * same
            + w.near_town * near
            + w.same_team * same_team
            + w.other_team * other_team
            + w.shared_word * shared_n
            + w.time * time
            + w.shared_topic * topic
            + w.other_topic * other
        )
        report = doc.report
        place = self.neighbours.place(town, report.town)
        shared = tuple(x for x in report.words if x.lower() in qwords)
        same_firm = enterprise is not None and enterprise == report.enterprise
        return Match(report, round(score, 4), round(sim, 4), place, shared, same_firm)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 30.0), -30.0)))
