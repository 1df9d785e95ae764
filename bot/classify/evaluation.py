"""Evaluation and maintenance of the classifier: `classify`, `eval` and `lexicon suggest` commands."""

from __future__ import annotations

import json
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.classify.classifier import (
    DOMAIN_IDS,
    GENERAL,
    LOW_CONFIDENCE,
    Classifier,
    Lexicon,
    get_classifier,
)

LABELS: tuple[str, ...] = (*DOMAIN_IDS, GENERAL)


@dataclass(frozen=True, slots=True)
class LabelStats:
    """Precision, recall and F1 of one label (primary label only)."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(slots=True)
class EvalReport:
    """Scores of a classifier on a labelled set."""

    total: int
    per_label: dict[str, LabelStats]
    macro_f1: float
    hit_rate: float
    accuracy: float
    confusion: dict[str, Counter[str]] = field(default_factory=dict)
    misses: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)

    def render(self) -> str:
        """The report as printed by `yimi-bot eval`."""
        lines = [f"{'label':<14} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
        for s in self.per_label.values():
            lines.append(
                f"{s.label:<14} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f} {s.support:>8}"
            )
        lines += [
            "",
            f"items      {self.total}",
            f"macro-F1   {self.macro_f1:.4f}",
            f"hit rate   {self.hit_rate:.4f}",
            f"accuracy   {self.accuracy:.4f}",
            "",
            "confusion matrix (rows: true primary, columns: predicted primary)",
        ]
        short = [label[:6] for label in LABELS]
        lines.append(" " * 14 + "".join(f"{s:>7}" for s in short))
        for true in LABELS:
            row = self.confusion.get(true, Counter())
            lines.append(f"{true:<14}" + "".join(f"{row[p]:>7}" for p in LABELS))
        return "\n".join(lines)


def load_items(path: Path) -> list[dict[str, Any]]:
    """Read labelled JSON lines ({"id", "text", "labels"})."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate(classifier: Classifier, items: Iterable[Mapping[str, Any]]) -> EvalReport:
    """Score the classifier's primary label against each item's labels (first = primary)."""
    confusion: dict[str, Counter[str]] = {label: Counter() for label in LABELS}
    hits = total = 0
    misses: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
    for item in items:
        gold = tuple(item["labels"])
        result = classifier.classify(item["text"])
        confusion.setdefault(gold[0], Counter())[result.primary] += 1
        total += 1
        if result.primary in gold:
            hits += 1
        else:
            misses.append((str(item.get("id", total)), gold, result.labels))
    per_label: dict[str, LabelStats] = {}
    for label in LABELS:
        tp = confusion.get(label, Counter())[label]
        predicted = sum(row[label] for row in confusion.values())
        support = sum(confusion.get(label, Counter()).values())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = LabelStats(label, precision, recall, f1, support)
    present = [s for s in per_label.values() if s.support]
    correct = sum(confusion.get(label, Counter())[label] for label in LABELS)
    return EvalReport(
        total=total,
        per_label=per_label,
        macro_f1=sum(s.f1 for s in present) / len(present) if present else 0.0,
        hit_rate=hits / total if total else 0.0,
        accuracy=correct / total if total else 0.0,
        confusion=confusion,
        misses=misses,
    )


def run_classify(inp: Iterable[str], out: TextIO) -> int:
    """`yimi-bot classify`: each line is a JSON object {"id", "text"} or, when it does not start
    with "{", a plain sentence (its id is the line number); one JSON line out per input, with the
    labels, confidence, deciding words, urgency and scores. Exit 1 when a line was skipped."""
    classifier = get_classifier()
    status = 0
    for lineno, line in enumerate(inp, 1):
        if not line.strip():
            continue
        if not line.lstrip().startswith("{"):
            item: dict[str, Any] = {"id": lineno, "text": line.strip()}
        else:
            try:
                item = json.loads(line)
                if not isinstance(item.get("text"), str):
                    raise TypeError("text must be a string")
            except (ValueError, TypeError, AttributeError) as exc:
                print(f"line {lineno}: skipped: {exc}", file=sys.stderr)
                status = 1
                continue
        result = classifier.classify(item["text"])
        record = {
            "id": item.get("id"),
            "labels": list(result.labels),
            "confidence": result.confidence,
            "words": list(result.words),
            "urgent": result.urgent,
            "scores": result.scores,
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return status


BANDS: tuple[float, ...] = (0.8, 0.6, 0.35, 0.0)


def reliability(
    classifier: Classifier, items: Iterable[Mapping[str, Any]]
) -> list[tuple[float, int, int]]:
    """(lower bound, reports, right) per confidence band: does a confidence mean what it says?"""
    counts = {b: [0, 0] for b in BANDS}
    for item in items:
        result = classifier.classify(item["text"])
        band = next(b for b in BANDS if result.confidence >= b)
        counts[band][0] += 1
        counts[band][1] += result.primary in item["labels"]
    return [(b, n, right) for b, (n, right) in counts.items()]


def render_reliability(rows: Sequence[tuple[float, int, int]]) -> str:
    """The reliability table as printed by `yimi-bot eval`."""
    lines = ["confidence band   reports   right   share right"]
    upper = 1.0
    for low, n, right in rows:
        share = f"{right / n:.3f}" if n else "-"
        lines.append(f"{low:.2f}–{upper:.2f}       {n:>7} {right:>7}   {share:>11}")
        upper = low
    lines.append(f"(below {LOW_CONFIDENCE} a report goes to the coordinators)")
    return "\n".join(lines)


def run_eval(path: Path, out: TextIO) -> int:
    """`yimi-bot eval FILE`: per-label P/R/F1, macro-F1, hit rate and the confusion matrix."""
    try:
        items = load_items(path)
    except (OSError, ValueError) as exc:
        print(f"cannot read {path}: {exc}", file=sys.stderr)
        return 2
    classifier = get_classifier()
    report = evaluate(classifier, items)
    out.write(report.render() + "\n\n")
    out.write(render_reliability(reliability(classifier, items)) + "\n")
    model = classifier.model
    out.write(
        f"model: {model.meta.get('examples')} training examples, lexicon weight "
        f"{model.meta.get('lexicon_weight')}, lexicon version {model.meta.get('lexicon_version')}\n"
        if model
        else "model: none (lexicon only)\n"
    )
    return 0


@dataclass(frozen=True, slots=True)
class Correction:
    """A routing a person corrected: the text, what the classifier said, where it really went."""

    text: str
    predicted: str
    final: str


def suggest_keywords(
    corrections: Sequence[Correction],
    lexicon: Lexicon,
    top: int = 10,
    *,
    classifier: Classifier | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """Candidate new keywords per final domain (TF-IDF over corrected texts), minus known words."""
    with warnings.catch_warnings():
        # jieba.analyse reads its idf file with an unclosed open() (at import and per TFIDF())
        warnings.simplefilter("ignore", ResourceWarning)
        import jieba.analyse

        tfidf = jieba.analyse.TFIDF()
    # segment with the classifier's tokenizer, so lexicon phrases stay whole and are filtered out
    tfidf.tokenizer = (classifier or get_classifier()).tokenizer
    by_domain: dict[str, list[str]] = {}
    for c in corrections:
        if c.final != c.predicted and c.final in DOMAIN_IDS:
            by_domain.setdefault(c.final, []).append(c.text)
    known = set(lexicon.terms)
    result: dict[str, list[tuple[str, float]]] = {}
    for domain, texts in by_domain.items():
        tags = tfidf.extract_tags("\n".join(texts), topK=top + len(known), withWeight=True)
        fresh = [
            (word, round(float(weight), 4))
            for word, weight in tags
            if word.lower() not in known and len(word) > 1 and not word.isdigit()
        ]
        result[domain] = fresh[:top]
    return result


def run_suggest(corrections: Sequence[Correction], out: TextIO) -> int:
    """`yimi-bot lexicon suggest`: print candidate keywords for a person to review."""
    lexicon = get_classifier().lexicon
    suggestions = suggest_keywords(corrections, lexicon)
    if not suggestions:
        out.write("没有可用的纠正记录 (no corrections to learn from)\n")
        return 0
    out.write(f"lexicon version {lexicon.version}: candidate keywords (review before adding)\n")
    for domain, words in suggestions.items():
        name = lexicon.team_names.get(domain, domain)
        listed = ", ".join(f"{w} ({s:.2f})" for w, s in words) or "-"
        out.write(f"{domain} {name}: {listed}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_classify(sys.stdin, sys.stdout))
