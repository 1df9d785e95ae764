"""Keyword classifier that routes a report to the 一米团 team(s) whose lexicon it matches best.

Pure: text in, `Classification` out. All I/O (the lexicon, jieba's dictionary, the derived user
dictionary and pinyin tables in the cache dir) happens when a `Classifier` is built.

How a text is scored:

1. It is cut as the classifier's own `jieba.Tokenizer` cuts it (HMM off: we only need the
   lexicon's words, which the derived user dictionary makes whole tokens), by the faster
   equivalent in segment.py; the same tokens are the learned model's word features. Each token found in the lexicon
   adds its weight to its domain(s), or to `general`, or subtracts (negative cues). A long token
   that is not a lexicon word is searched for lexicon words inside it (社保费 → 社保).
2. Voice input: windows of the text whose toneless pinyin equals a lexicon word's pinyin, and that
   share at least one character with it (社宝 → 社保, 待款 → 贷款), count at a reduced weight.
3. Context rules from the lexicon (co-occurring words) add to or take from domains, for decoys
   such as the smell of a fertiliser plant (environment, not agriculture).
4. The best domain wins unless it scores below `min_score` or the general cues outweigh it; a
   second domain is added only when it is clearly needed too.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import marshal
import math
import operator
import os
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jieba

from bot.classify.homophones import Homophones
from bot.classify.lexicon import DEFAULT_LEXICON as DEFAULT_LEXICON  # re-exported
from bot.classify.lexicon import Lexicon as Lexicon  # re-exported
from bot.classify.lexicon import Rule as Rule  # re-exported
from bot.classify.model import DEFAULT_MODEL, LinearModel, log_softmax
from bot.classify.segment import Segmenter
from bot.core.teams import GENERAL as GENERAL  # re-exported: part of the classifier interface
from bot.core.teams import TEAM_NAMES

logger = logging.getLogger(__name__)

DOMAIN_IDS: tuple[str, ...] = tuple(TEAM_NAMES)
LOW_CONFIDENCE = 0.35
_CACHE_FORMAT = 2
_CJK = re.compile(r"[\u4e00-\u9fff]+")


@dataclass(frozen=True, slots=True)
class Classification:
    """The routing decision for one text, with the words that decided it."""

    labels: tuple[str, ...]
    scores: dict[str, float]
    confidence: float
    evidence: dict[str, tuple[str, ...]]
    urgent: bool
    # A complaint about a government department or official: coordinators only (WORKFLOW.md).
    confidential: bool = False
    # The combined probabilities (≥ 0.01) when a learned model took part; empty for lexicon only.
    model: dict[str, float] = field(default_factory=dict)

    @property
    def primary(self) -> str:
        """The team that should receive the report (or `general`)."""
        return self.labels[0]

    @property
    def words(self) -> tuple[str, ...]:
        """The matched words that support the primary label."""
        return self.evidence.get(self.primary, ())

    @property
    def routable(self) -> bool:
        """True when the report can go straight to a team without a coordinator."""
        return self.primary != GENERAL and self.confidence >= LOW_CONFIDENCE


def default_cache_dir() -> Path:
    """Where the jieba dictionary cache and derived files live ($YIMI_CACHE_DIR or XDG cache)."""
    env = os.environ.get("YIMI_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "yimi-bot"


def _toneless(reading: str) -> str:
    """Strip tone marks from a pinyin reading (ǚ → v)."""
    plain = "".join(
        c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c)
    )
    return plain.replace("u\u0308", "v").replace("ü", "v")


def _loose(syllable: str) -> str:
    """Merge the finals and initials that accented speech and voice input confuse (zh/z, ing/in)."""
    if syllable[:2] in ("zh", "ch", "sh"):
        syllable = syllable[0] + syllable[2:]
    if syllable.endswith(("ing", "eng")):
        syllable = syllable[:-1]
    return syllable


def _build_derived(tokenizer: jieba.Tokenizer, lexicon: Lexicon) -> dict[str, Any]:
    """Compute the user dictionary frequencies and pinyin tables (slow; cached on disk)."""
    from pypinyin import Style, lazy_pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    floor = int(lexicon.settings.get("userdict_min_freq", 2000))
    words = sorted(t for t in lexicon.terms if len(t) > 1 and _CJK.search(t))
    userdict = [(w, max(int(tokenizer.suggest_freq(w, False)), floor)) for w in words]
    chars: dict[str, str] = {}
    for code, readings in pinyin_dict.items():
        if 0x4E00 <= code <= 0x9FFF:
            chars[chr(code)] = _loose(_toneless(readings.split(",")[0]))
    index: dict[tuple[str, str], list[tuple[str, tuple[str, ...]]]] = {}
    for word in sorted(lexicon.fuzzy_terms):
        if not (2 <= len(word) <= 6) or not _CJK.fullmatch(word):
            continue
        key = tuple(_loose(p) for p in lazy_pinyin(word, style=Style.NORMAL))
        index.setdefault((key[0], key[1]), []).append((word, key))
    return {"format": _CACHE_FORMAT, "userdict": userdict, "chars": chars, "index": index}


_Hits = dict[str, list[tuple[str, str, float]]]  # label -> (surface, term, weight)


class Classifier:
    """Routes texts to teams with a lexicon and a private jieba tokenizer."""

    def __init__(
        self,
        lexicon: Lexicon | None = None,
        *,
        cache_dir: Path | None = None,
        model: LinearModel | str | None = "default",
    ) -> None:
        self.lexicon = lexicon or Lexicon.load()
        self.cache_dir = cache_dir or default_cache_dir()
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            logger.warning("cache dir %s not writable; using the temp dir", self.cache_dir)
            self.cache_dir = Path(tempfile.gettempdir())
        # the shipped model goes with the shipped lexicon; a test's own lexicon runs alone
        if model == "default":
            model = (
                LinearModel.load(cache_dir=self.cache_dir)
                if lexicon is None and DEFAULT_MODEL.exists()
                else None
            )
        self.model: LinearModel | None = model if isinstance(model, LinearModel) else None
        self._lexicon_weight = (
            float(self.model.meta.get("lexicon_weight", 1.0)) if self.model else 0.0
        )
        jieba.setLogLevel(logging.WARNING)
        self.tokenizer = jieba.Tokenizer()
        self.tokenizer.tmp_dir = str(self.cache_dir)
        self.tokenizer.cache_file = "jieba.cache"
        self.tokenizer.initialize()
        derived = self._load_derived()
        self.userdict_path = self.cache_dir / f"userdict-{self._key()[:16]}.txt"
        if not self.userdict_path.exists():
            self._write_atomic(
                self.userdict_path,
                "".join(f"{w} {f}\n" for w, f in derived["userdict"]).encode("utf-8"),
            )
        with self.userdict_path.open("rb") as fh:  # jieba leaves files it opens itself unclosed
            self.tokenizer.load_userdict(fh)
        self.segmenter = Segmenter(self.tokenizer)  # cuts as self.tokenizer does, faster
        self._chars: dict[str, str] = derived["chars"]
        self._index: dict[tuple[str, str], list[tuple[str, tuple[str, ...]]]] = derived["index"]
        self._homophones = Homophones(self._chars, self._index)
        self._terms = self.lexicon.terms
        s = self.lexicon.settings
        self._min_score = s.get("min_score", 1.5)
        self._second_ratio = s.get("second_ratio", 0.6)
        self._second_min = s.get("second_min", 4.0)
        self._fuzzy_weight = s.get("fuzzy_weight", 0.8)
        self._general_margin = s.get("general_margin", 0.0)
        self._decay = s.get("decay", 1.0)
        # decay**i, as _score weighs the i-th strongest word of a label
        self._powers = [self._decay**i for i in range(32)]
        self._fuzzy_skip = s.get("fuzzy_skip", 6.0)
        self._min_word = s.get("min_word", 2.0)
        self._urgent = (
            re.compile("|".join(map(re.escape, self.lexicon.urgency)))
            if self.lexicon.urgency
            else None
        )
        self._confidential = (
            re.compile("|".join(f"(?:{p})" for p in self.lexicon.confidential))
            if self.lexicon.confidential
            else None
        )

    def is_confidential(self, text: str) -> bool:
        """Whether the text complains about a government department or official."""
        return bool(self._confidential and self._confidential.search(text))

    def _key(self) -> str:
        """Cache key: lexicon content, cache format and library versions."""
        # the version from metadata: importing pypinyin itself costs 0.2 s of cold start
        raw = f"{self.lexicon.digest}:{_CACHE_FORMAT}:{jieba.__version__}:{version('pypinyin')}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def _load_derived(self) -> dict[str, Any]:
        """Load the derived tables from the cache dir, building them on a miss."""
        path = self.cache_dir / f"derived-{self._key()[:16]}.marshal"
        try:
            with path.open("rb") as fh:
                data = marshal.load(fh)
            if isinstance(data, dict) and data.get("format") == _CACHE_FORMAT:
                return data
        except (OSError, EOFError, ValueError, TypeError):
            pass
        data = _build_derived(self.tokenizer, self.lexicon)
        self._write_atomic(path, marshal.dumps(data))
        return data

    @staticmethod
    def _write_atomic(path: Path, payload: bytes) -> None:
        """Write a cache file atomically; a failure only costs speed next time."""
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, path)
        except OSError:
            logger.warning("could not write cache file %s", path, exc_info=True)

    def _add(
        self, hits: _Hits, seen: set[str], surface: str, term: str, scale: float = 1.0
    ) -> None:
        """Record a matched lexicon term for every label it counts for."""
        seen.add(term)
        for label, weight in self._terms[term]:
            hits.setdefault(label, []).append((surface, term, weight * scale))

    def _exact(self, text: str, seen: set[str], covered: bytearray, keys: list[str]) -> _Hits:
        """Lexicon words among the tokens, and inside longer tokens (社保费 → 社保).

        The lower-cased tokens are appended to `keys` (the learned model's word features)."""
        terms = self._terms
        hits: _Hits = {}
        pos = 0
        for tok in self.segmenter.cut(text):
            start, pos = pos, pos + len(tok)
            key = tok.lower()
            keys.append(key)
            if key in terms:
                if key not in seen:
                    self._add(hits, seen, tok, key)
                covered[start:pos] = b"\x01" * len(tok)
            elif 3 <= len(key) <= 8:
                self._inner(tok, key, start, hits, seen, covered)
        return hits

    def _inner(
        self, tok: str, key: str, start: int, hits: _Hits, seen: set[str], covered: bytearray
    ) -> None:
        """Lexicon words hidden inside a longer token, longest first."""
        terms = self._terms
        n = len(key)
        i = 0
        while i < n - 1:
            for j in range(n, i + 1, -1):
                sub = key[i:j]
                if sub in terms:
                    if sub not in seen:
                        self._add(hits, seen, tok[i:j], sub)
                    covered[start + i : start + j] = b"\x01" * (j - i)
                    i = j - 1
                    break
            i += 1

    def _fuzzy(self, text: str, hits: _Hits, seen: set[str], covered: bytearray) -> bool:
        """Homophones from voice input: same loose pinyin, one char in common, not inside a match."""
        found = False
        for surface, word in self._homophones.find(text, covered):
            if word not in seen:
                self._add(hits, seen, surface, word, self._fuzzy_weight)
                found = True
        return found

    def _score(self, hits: _Hits, fired: list[Rule]) -> tuple[dict[str, float], dict[str, float]]:
        """Score per label and the weight of its strongest word (rules count as words)."""
        raw: dict[str, float] = {}
        best: dict[str, float] = {}
        for label, items in hits.items():
            positive = sorted([w for _, _, w in items if w > 0], reverse=True)
            powers = self._powers
            if len(positive) > len(powers):
                powers = [self._decay**i for i in range(len(positive))]
            # each further word of the same label counts a little less: many words naming a
            # subject (crops, machines) must not outvote the words naming the problem
            raw[label] = sum(map(operator.mul, positive, powers)) + sum(
                [w for _, _, w in items if w < 0]
            )
            best[label] = positive[0] if positive else 0.0
        for rule in fired:
            for label, delta in rule.add.items():
                raw[label] = raw.get(label, 0.0) + delta
                best[label] = max(best.get(label, 0.0), delta)
        return raw, best

    def _settled(self, raw: dict[str, float]) -> bool:
        """True when homophones could not change the winner (pinyin matching is skipped)."""
        ranked = sorted((s for d, s in raw.items() if d != GENERAL), reverse=True)
        if not ranked:
            return False
        rival = max(ranked[1] if len(ranked) > 1 else 0.0, raw.get(GENERAL, 0.0))
        return ranked[0] >= self._fuzzy_skip and ranked[0] - rival >= self._fuzzy_skip / 2

    def _fired(self, text: str) -> list[Rule]:
        """The context rules whose every group matches (plain loops: this runs per report)."""
        fired = []
        for rule in self.lexicon.rules:
            for group in rule.groups:
                if not group.search(text):
                    break
            else:
                fired.append(rule)
        return fired

    def tokens(self, text: str) -> list[str]:
        """The lower-cased tokens of a text, as the classifier cuts it."""
        return [tok.lower() for tok in self.segmenter.cut(text.strip())]

    def with_model(
        self, model: LinearModel | None, *, lexicon_weight: float | None = None
    ) -> Classifier:
        """The same lexicon and tokenizer with another learned model (training, `retrain`)."""
        other = copy.copy(self)
        other.model = model
        other._lexicon_weight = (
            lexicon_weight
            if lexicon_weight is not None
            else float(model.meta.get("lexicon_weight", 1.0))
            if model
            else 0.0
        )
        return other

    def classify(self, text: str) -> Classification:
        """Classify one report text: the lexicon's scores, combined with the learned model's."""
        text = text.strip()
        keys: list[str] = []
        lexical, hits = self._by_lexicon(text, keys)
        model = self.model
        if model is None or not text:
            return lexical
        # The lexicon decides alone when one team's words are all it found: the words that must
        # decide (a lone 跳闸, 排污许可证) keep their role; the model weighs in where words compete
        # or none decide.
        if self._decisive(lexical):
            return lexical
        own = log_softmax(model.text_scores(text.lower(), keys))
        weight = self._lexicon_weight
        lex_scores = lexical.scores
        # a product of the two: the model's probabilities times exp(weight × lexicon score)
        combined = [
            lp + weight * lex_scores.get(label, 0.0)
            for lp, label in zip(own, model.labels, strict=True)
        ]
        probs = [math.exp(v) for v in log_softmax(combined)]
        best = max(range(len(probs)), key=probs.__getitem__)
        primary = model.labels[best]
        labels: tuple[str, ...] = (primary,)
        if primary in lexical.labels and len(lexical.labels) == 2:
            labels = lexical.labels if lexical.labels[0] == primary else lexical.labels[::-1]
        evidence = {label: self._words(hits, label) for label in labels}
        if not evidence[primary] and primary != GENERAL:
            evidence[primary] = model.explain_tokens(keys, primary)
        return Classification(
            labels=labels,
            scores=lex_scores,
            confidence=round(probs[best], 3),
            evidence=evidence,
            urgent=lexical.urgent,
            confidential=lexical.confidential,
            model={
                label: round(p, 3)
                for label, p in zip(model.labels, probs, strict=True)
                if p >= 0.01
            },
        )

    @staticmethod
    def _decisive(lexical: Classification) -> bool:
        """The lexicon chose a team and found no other team's words (general cues it weighed)."""
        return lexical.primary != GENERAL and sum(1 for k in lexical.scores if k != GENERAL) == 1

    @staticmethod
    def _words(hits: _Hits, label: str) -> tuple[str, ...]:
        """The matched words that count for a label (positive weights), in text order."""
        return tuple(dict.fromkeys(s for s, _, w in hits.get(label, []) if w > 0))

    def _by_lexicon(self, text: str, keys: list[str]) -> tuple[Classification, _Hits]:
        """The lexicon's decision alone, and its matched words."""
        seen: set[str] = set()
        covered = bytearray(len(text))
        hits = self._exact(text, seen, covered, keys) if text else {}
        fired = self._fired(text)
        raw, best = self._score(hits, fired)
        if (
            text
            and self._homophones
            and not self._settled(raw)
            and self._fuzzy(text, hits, seen, covered)
        ):
            raw, best = self._score(hits, fired)
        general = max(raw.pop(GENERAL, 0.0), 0.0)
        domains = sorted(
            ((d, s) for d, s in raw.items() if s > 0), key=lambda ds: ds[1], reverse=True
        )
        s1 = domains[0][1] if domains else 0.0
        s2 = domains[1][1] if len(domains) > 1 else 0.0
        scores = {d: round(s, 3) for d, s in domains}
        if general:
            scores[GENERAL] = round(general, 3)
        urgent = bool(self._urgent and self._urgent.search(text))
        confidential = self.is_confidential(text)

        def words(label: str) -> tuple[str, ...]:
            return self._words(hits, label)

        vague = not domains or best.get(domains[0][0], 0.0) < self._min_word
        if vague or s1 < self._min_score or general > s1 + self._general_margin:
            confidence = general / (general + s1 + 1.0) if general else 1.0 - s1 / (s1 + 2.0)
            return Classification(
                labels=(GENERAL,),
                scores=scores,
                confidence=round(min(max(confidence, 0.0), 1.0), 3),
                evidence={GENERAL: words(GENERAL)},
                urgent=urgent,
                confidential=confidential,
            ), hits
        labels = [domains[0][0]]
        if (
            s2 >= self._second_min
            and s2 >= self._second_ratio * s1
            and best.get(domains[1][0], 0.0) >= self._min_word
        ):
            labels.append(domains[1][0])
        strength = s1 / (s1 + 2.0)
        share = s1 / (s1 + s2 + general)
        confidence = strength * math.sqrt(share)
        return Classification(
            labels=tuple(labels),
            scores=scores,
            confidence=round(confidence, 3),
            evidence={label: words(label) for label in labels},
            urgent=urgent,
            confidential=confidential,
        ), hits


_default: Classifier | None = None
_default_lock = threading.Lock()


def get_classifier() -> Classifier:
    """The process-wide default classifier (built on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Classifier()
        return _default
