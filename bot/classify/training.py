"""Training the learned model (`yimi-bot train`, `yimi-bot retrain`): needs the `train` extra.

The training sets are listed in TRAINING_SETS (tests/data/README.md says where each came from).
The blind probe set is never read here except by `retrain`, which only *reports* how a new model
would change its answers there before anything is written; no setting is chosen on it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.classify.classifier import DOMAIN_IDS, GENERAL, Classifier
from bot.classify.model import MODEL_FORMAT, LinearModel, features

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
TRAINING_SETS: tuple[str, ...] = (
    "reports.jsonl",
    "train/train_a.jsonl",
    "train/train_b.jsonl",
    "heldout_probe.jsonl",
    "heldout_probe2.jsonl",
)
BLIND_SET = "blind_probe.jsonl"
LABELS: tuple[str, ...] = (*DOMAIN_IDS, GENERAL)
# Chosen by cross-validation on the training sets (see `choose`); stored in model.json's meta.
DEFAULT_C = 30.0
DEFAULT_LEXICON_WEIGHT = 1.0
REPORTS_FLOOR = 0.95
PRUNE = (
    0.3  # weights (× idf, after the median shift) below this are dropped: 4× fewer, same answers
)
MIN_DF = 2  # a feature seen in one training text only is noise


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text; `source` names the set it came from."""

    text: str
    label: str
    source: str


def load_sets(names: Iterable[str] = TRAINING_SETS, base: Path = DATA) -> list[Example]:
    """The labelled examples of the named JSON-lines files (primary label only)."""
    out: list[Example] = []
    for name in names:
        path = base / name
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                out.append(Example(item["text"], item["labels"][0], name))
    return out


def featurize(classifier: Classifier, text: str) -> set[str]:
    """The model's features of a text, cut by the classifier's own tokenizer."""
    return features(text.strip().lower(), classifier.tokens(text))


def fit(
    classifier: Classifier,
    examples: Sequence[Example],
    *,
    c: float = DEFAULT_C,
    lexicon_weight: float = DEFAULT_LEXICON_WEIGHT,
    prune: float = PRUNE,
) -> LinearModel:
    """Train a multinomial logistic regression on TF-IDF-weighted binary features."""
    import numpy as np
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    rows = [featurize(classifier, ex.text) for ex in examples]
    df: dict[str, int] = {}
    for row in rows:
        for feat in row:
            df[feat] = df.get(feat, 0) + 1
    kept = [{f: 1 for f in row if df[f] >= MIN_DF} for row in rows]
    vec = DictVectorizer()
    x = vec.fit_transform(kept)
    tfidf = TfidfTransformer()
    x = tfidf.fit_transform(x)
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(x, [ex.label for ex in examples])
    classes = [str(k) for k in model.classes_]
    missing = set(LABELS) - set(classes)
    if missing:
        raise ValueError(f"no training examples for {sorted(missing)}")
    order = [classes.index(label) for label in LABELS]
    coef = model.coef_[order]
    # Softmax ignores a constant added to every label's score, so each feature's weights may be
    # shifted by their median: most become about 0 and are pruned, which keeps scoring fast.
    coef = coef - np.median(coef, axis=0)
    weights: dict[str, tuple[float, tuple[tuple[int, float], ...]]] = {}
    for j, feat in enumerate(vec.feature_names_):
        idf = float(tfidf.idf_[j])
        pairs = tuple(
            (i, round(float(coef[i, j]) * idf, 4))
            for i in range(len(LABELS))
            if abs(coef[i, j] * idf) >= prune
        )
        weights[str(feat)] = (round(idf, 4) ** 2, pairs)
    meta = {
        "c": c,
        "lexicon_weight": lexicon_weight,
        "lexicon_version": classifier.lexicon.version,
        "examples": len(examples),
        "sources": sorted({ex.source for ex in examples}),
    }
    return LinearModel(LABELS, tuple(float(model.intercept_[i]) for i in order), weights, meta)


def dump(model: LinearModel, path: Path) -> None:
    """Write a model as model.json: sorted, one feature per line, so a review reads the diff."""
    head = {
        "format": MODEL_FORMAT,
        "labels": list(model.labels),
        "intercept": [round(b, 4) for b in model.intercept],
        "meta": model.meta,
    }
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "weights": {']
    entries = sorted(model.weights.items())
    for n, (feat, (idf2, pairs)) in enumerate(entries):
        value = [round(idf2**0.5, 4), [list(p) for p in pairs]]
        comma = "," if n < len(entries) - 1 else ""
        lines.append(f"{json.dumps(feat, ensure_ascii=False)}: {json.dumps(value)}{comma}")
    lines.append("}}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def folds(examples: Sequence[Example], k: int, seed: int = 0) -> list[list[int]]:
    """k stratified folds of example indexes (each label spread evenly)."""
    by_label: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_label.setdefault(ex.label, []).append(i)
    rng = random.Random(seed)
    out: list[list[int]] = [[] for _ in range(k)]
    n = 0
    for label in sorted(by_label):
        idx = by_label[label]
        rng.shuffle(idx)
        for i in idx:
            out[n % k].append(i)
            n += 1
    return out


def cross_predict(
    classifier: Classifier,
    examples: Sequence[Example],
    *,
    k: int = 5,
    c: float = DEFAULT_C,
    weights: Sequence[float] = (DEFAULT_LEXICON_WEIGHT,),
    score_on: Callable[[Example], bool] = lambda ex: True,
) -> dict[float, list[tuple[Example, str]]]:
    """Out-of-fold predictions (model trained without the fold) for each lexicon weight."""
    out: dict[float, list[tuple[Example, str]]] = {w: [] for w in weights}
    for fold in folds(examples, k):
        held = set(fold)
        model = fit(classifier, [ex for i, ex in enumerate(examples) if i not in held], c=c)
        for i in fold:
            ex = examples[i]
            if not score_on(ex):
                continue
            for w in weights:
                result = classifier.with_model(model, lexicon_weight=w).classify(ex.text)
                out[w].append((ex, result.primary))
    return out


def macro_f1(pairs: Sequence[tuple[Example, str]]) -> float:
    """Macro-F1 over the labels present, primary labels only."""
    f1s = []
    for label in LABELS:
        tp = sum(1 for ex, p in pairs if ex.label == label and p == label)
        gold = sum(1 for ex, _ in pairs if ex.label == label)
        pred = sum(1 for _, p in pairs if p == label)
        if not gold:
            continue
        prec = tp / pred if pred else 0.0
        rec = tp / gold
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s) if f1s else 0.0


def choose(classifier: Classifier, examples: Sequence[Example], out: TextIO) -> tuple[float, float]:
    """Pick C and the lexicon weight by 5-fold CV on the training sets alone: the mean of the
    out-of-fold macro-F1 on reports.jsonl (which the lexicon was tuned on, so it favours the
    lexicon) and on the newer sets the lexicon never saw (which favour the model), among the
    settings that keep reports.jsonl at REPORTS_FLOOR or above."""
    best = (0.0, DEFAULT_C, DEFAULT_LEXICON_WEIGHT)
    for c in (30.0, 100.0):
        preds = cross_predict(classifier, examples, c=c, weights=(0.5, 1.0, 2.0))
        for w, pairs in preds.items():
            old = macro_f1([p for p in pairs if p[0].source == "reports.jsonl"])
            new = macro_f1([p for p in pairs if p[0].source.startswith("train/")])
            score = (old + new) / 2
            out.write(
                f"C={c:<6g} lexicon weight={w:<4g} out-of-fold macro-F1: "
                f"reports.jsonl {old:.4f}, new sets {new:.4f}, mean {score:.4f}\n"
            )
            # the floor on reports.jsonl (held out by CV) first, then the best mean
            if old >= REPORTS_FLOOR and score > best[0]:
                best = (score, c, w)
    return best[1], best[2]


def run_train(
    classifier: Classifier,
    out: TextIO,
    *,
    path: Path,
    search: bool = False,
    extra: Sequence[Example] = (),
) -> LinearModel:
    """`yimi-bot train`: fit on every training set (and `extra`), write `path`."""
    examples = load_sets() + list(extra)
    c, w = DEFAULT_C, DEFAULT_LEXICON_WEIGHT
    if search:
        c, w = choose(classifier, examples, out)
    model = fit(classifier, examples, c=c, lexicon_weight=w)
    model.meta["trained"] = datetime.now(UTC).strftime("%Y-%m-%d")
    dump(model, path)
    out.write(
        f"trained on {len(examples)} examples ({', '.join(model.meta['sources'])}); "
        f"C={c:g}, lexicon weight={w:g}; {len(model.weights)} features -> {path}\n"
    )
    return model


def compare(
    old: Classifier, new: Classifier, items: Sequence[Mapping[str, Any]], out: TextIO
) -> list[tuple[str, str, str, str]]:
    """What a new model would change on labelled items: (id, gold, old, new) of each change."""
    changes = []
    right_old = right_new = 0
    for item in items:
        gold = tuple(item["labels"])
        a = old.classify(item["text"]).primary
        b = new.classify(item["text"]).primary
        right_old += a in gold
        right_new += b in gold
        if a != b:
            changes.append((str(item.get("id")), gold[0], a, b))
    out.write(f"hit rate now {right_old / len(items):.4f}, after {right_new / len(items):.4f}\n")
    for ident, gold, a, b in changes:
        mark = "+" if b == gold else ("-" if a == gold else " ")
        out.write(f"  {mark} {ident}: {a} -> {b} (labelled {gold})\n")
    return changes
