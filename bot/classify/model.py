"""The learned half of the classifier: a linear model over jieba tokens and character n-grams.

Trained offline (`yimi-bot train`, bot/classify/training.py, with scikit-learn from the `train`
extra) and shipped as reviewed data in `model.json`; scoring here is plain Python over a dict, so
the bot imports nothing heavy. Features are binary and TF-IDF weighted with unit length, which is
what the trainer fed scikit-learn: each weight in the file is already multiplied by its idf, so a
text's score for a label is `intercept + sum(weights) / sqrt(sum(idf²))` over the known features.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import math
import operator
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = Path(__file__).with_name("model.json")
MODEL_FORMAT = 1
_KEEP = re.compile(r"[\u4e00-\u9fffa-z0-9]")
_DROP = re.compile(r"[^\u4e00-\u9fffa-z0-9]+")


def features(text: str, tokens: Iterable[str]) -> set[str]:
    """The binary features of a lower-cased text: its tokens, characters and character pairs."""
    out = {"w" + tok for tok in tokens if len(tok) > 1 and _KEEP.match(tok)}
    plain = _DROP.sub("", text)
    out.update("c" + ch for ch in plain)
    out.update("b" + plain[i : i + 2] for i in range(len(plain) - 1))
    return out


@dataclass(frozen=True, slots=True)
class LinearModel:
    """Per-label weights of the features that matter, as exported by the trainer."""

    labels: tuple[str, ...]
    intercept: tuple[float, ...]
    # feature -> (idf², ((label index, weight × idf), ...)): as in the file, for review and tests
    weights: dict[str, tuple[float, tuple[tuple[int, float], ...]]]
    meta: dict[str, Any]
    # feature -> (idf², weight × idf per label): dense, so scoring sums columns in C
    dense: dict[str, tuple[float, ...]] = field(default_factory=dict, compare=False)
    # the dense rows keyed without their prefix, so `text_scores` looks a text's tokens and
    # characters up as they are: words; characters and pairs together (their lengths differ)
    words: dict[str, tuple[float, ...]] = field(default_factory=dict, compare=False)
    grams: dict[str, tuple[float, ...]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.dense:
            n = len(self.labels)
            for feat, (idf2, pairs) in self.weights.items():
                row = [0.0] * (n + 1)
                row[0] = idf2
                for i, w in pairs:
                    row[i + 1] = w
                self.dense[feat] = tuple(row)
        if not self.words and not self.grams:
            for feat, values in self.dense.items():
                kind, key = feat[0], feat[1:]
                # only what `features` makes: anything else could never be looked up
                if kind == "w" and len(key) > 1 and _KEEP.match(key):
                    self.words[key] = values
                elif (kind == "c" and len(key) == 1) or (kind == "b" and len(key) == 2):
                    self.grams[key] = values

    @classmethod
    def load(cls, path: Path | None = None, *, cache_dir: Path | None = None) -> LinearModel:
        """Read a model file written by `yimi-bot train` (via a marshal cache in `cache_dir`:
        parsing the JSON costs a cold start about 0.1 s)."""
        raw = (path or DEFAULT_MODEL).read_bytes()
        cached = None
        if cache_dir is not None:
            cached = cache_dir / f"model-{hashlib.sha256(raw).hexdigest()[:16]}.marshal"
            try:
                labels, intercept, weights, meta, dense = marshal.loads(cached.read_bytes())
                return cls(labels, intercept, weights, meta, dense)
            except (OSError, EOFError, ValueError, TypeError):
                pass
        data = json.loads(raw.decode("utf-8"))
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"model format {data.get('format')!r}, expected {MODEL_FORMAT}")
        model = cls(
            tuple(data["labels"]),
            tuple(map(float, data["intercept"])),
            {
                feat: (float(idf) ** 2, tuple((int(i), float(w)) for i, w in pairs))
                for feat, (idf, pairs) in data["weights"].items()
            },
            dict(data["meta"]),
        )
        if cached is not None:
            payload = (model.labels, model.intercept, model.weights, model.meta, model.dense)
            with contextlib.suppress(OSError):
                tmp = cached.with_suffix(f".tmp{os.getpid()}")
                tmp.write_bytes(marshal.dumps(payload))
                os.replace(tmp, cached)
        return model

    def scores(self, feats: Iterable[str]) -> list[float]:
        """Raw linear scores per label, in the order of `labels`."""
        get = self.dense.get
        rows = [row for row in map(get, feats) if row is not None]
        if not rows:
            return list(self.intercept)
        # column 0 is idf², the others the label weights; zip(*) and sum run in C
        norm, *sums = map(sum, zip(*rows, strict=True))
        scale = 1.0 / math.sqrt(norm)
        return [b + a * scale for a, b in zip(sums, self.intercept, strict=True)]

    def text_scores(self, text: str, tokens: Iterable[str]) -> list[float]:
        """`scores(features(text, tokens))`, without building the feature strings.

        `text` is lower-cased, as for `features`. The same rows are summed, in another order:
        the sums may differ from those of `scores` in the last bits."""
        plain = _DROP.sub("", text)
        rows = [
            *filter(None, map(self.words.get, set(tokens))),
            *filter(None, map(self.grams.get, {*plain, *map(operator.add, plain, plain[1:])})),
        ]
        if not rows:
            return list(self.intercept)
        # every row has the same length: zip need not check
        norm, *sums = map(sum, zip(*rows, strict=False))
        scale = 1.0 / math.sqrt(norm)
        return [b + a * scale for a, b in zip(sums, self.intercept, strict=True)]

    def explain_tokens(self, tokens: Iterable[str], label: str, top: int = 3) -> tuple[str, ...]:
        """`explain` over a text's tokens: the words that pushed most towards `label`."""
        column = self.labels.index(label) + 1
        found = sorted(
            (
                (row[column], tok)
                for tok in set(tokens)
                if (row := self.words.get(tok)) and row[column] > 0
            ),
            reverse=True,
        )
        return tuple(word for _, word in found[:top])

    def log_proba(self, feats: Iterable[str]) -> list[float]:
        """Log of the softmax of the scores: the model's own log-probabilities."""
        return log_softmax(self.scores(feats))

    def explain(self, feats: Iterable[str], label: str, top: int = 3) -> tuple[str, ...]:
        """The word features that pushed most towards `label` (for 判断依据 when no word matched)."""
        index = self.labels.index(label)
        found: list[tuple[float, str]] = []
        for feat in feats:
            row = self.dense.get(feat)
            if row is None or feat[0] != "w":
                continue
            w = row[index + 1]
            if w > 0:
                found.append((w, feat[1:]))
        found.sort(reverse=True)
        return tuple(word for _, word in found[:top])


def log_softmax(values: Sequence[float]) -> list[float]:
    """log(softmax(values)), computed stably."""
    top = max(values)
    total = math.log(sum(math.exp(v - top) for v in values)) + top
    return [v - total for v in values]
