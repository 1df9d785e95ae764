"""Fit the related-reports finder's score (bot/workflow/related.py, `Weights`) on the DEV set only.

Every pair of a later report with an earlier one inside the window is a row: the finder's
COMPONENTS for it (similarity, same/near town, teams, shared deciding words, time, incident
topics) and whether the two share an event. A logistic regression (Newton's method, a little L2)
gives the component weights; then the threshold is swept on the full replay of dev (groups
included) for the most recall at precision ≥ --precision. The blind test set is never read here.

    python bench/related_fit.py [--precision 0.9] [--topic 1.5]
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.classify.classifier import get_classifier  # noqa: E402
from bot.config import DEFAULT_NEIGHBOURS  # noqa: E402
from bot.workflow.related import Neighbours, RelatedFinder, Report, Weights  # noqa: E402
from bot.workflow.related_eval import BASE, load, proposals, score, window_start  # noqa: E402

DEV = ROOT / "tests" / "data" / "related_dev.jsonl"
WINDOW = 5


def rows(weights: Weights) -> tuple[list[list[float]], list[int]]:
    """(components, related?) of every pair inside the window, replayed in time order."""
    classifier = get_classifier()
    items = load(DEV)
    finder = RelatedFinder(classifier.tokens, Neighbours.of(DEFAULT_NEIGHBOURS), weights)
    xs: list[list[float]] = []
    ys: list[int] = []
    events: dict[int, str] = {}
    for n, item in enumerate(items, 1):
        result = classifier.classify(item.text)
        at = BASE + item.hour * 3600.0
        since = BASE + window_start(item.hour, WINDOW) * 3600.0
        query = finder.features(item.text, result.words)
        qidf = {f: base * finder._idf(len(finder._post.get(f, ()))) for f, base in query.items()}
        qnorm = math.sqrt(sum(v * v for v in qidf.values()))
        qwords = {x.lower() for x in result.words}
        for doc in finder._docs:
            if doc is None or doc.report.at < since:
                continue
            xs.append(
                list(finder.components(doc, qidf, qnorm, qwords, item.town, result.primary, at))
            )
            ys.append(1 if events[doc.report.id] == item.event else 0)
        finder.add(Report(n, item.id, item.town, result.primary, n, at, result.words), item.text)
        events[n] = item.event
    return xs, ys


def fit(xs: list[list[float]], ys: list[int], l2: float = 0.5) -> list[float]:
    """Logistic regression by Newton's method: [bias, *component weights]."""
    data = [[1.0, *x] for x in xs]
    k = len(data[0])
    beta = [0.0] * k
    for _ in range(30):
        grad = [-l2 * b if j else 0.0 for j, b in enumerate(beta)]
        hess = [[(l2 if i == j and i else 0.0) for j in range(k)] for i in range(k)]
        for x, y in zip(data, ys, strict=True):
            z = sum(b * v for b, v in zip(beta, x, strict=True))
            p = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
            for i in range(k):
                grad[i] += (y - p) * x[i]
                for j in range(k):
                    hess[i][j] += p * (1 - p) * x[i] * x[j]
        step = solve(hess, grad)
        beta = [b + s for b, s in zip(beta, step, strict=True)]
        if max(abs(s) for s in step) < 1e-6:
            break
    return beta


def solve(a: list[list[float]], b: list[float]) -> list[float]:
    """a x = b by Gaussian elimination with partial pivoting."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-12:
            continue
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c], strict=True)]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument("--topic", type=float, default=1.5, help="feature weight of a topic")
    parser.add_argument("--no-topics", action="store_true")
    args = parser.parse_args()
    base = Weights()
    if not args.no_topics:
        base = replace(base, topic=args.topic, shared_topic=1.0, other_topic=-1.0)
    xs, ys = rows(base)
    names = RelatedFinder.COMPONENTS
    if args.no_topics:
        xs = [x[:-2] for x in xs]
        names = names[:-2]
    beta = fit(xs, ys)
    print(f"{len(ys)} pairs in the window, {sum(ys)} related")
    fitted = dict(zip(("bias", *names), beta, strict=True))
    print("fitted:", ", ".join(f"{k}={v:.2f}" for k, v in fitted.items()))
    weights = replace(base, **{k: round(v, 2) for k, v in fitted.items()})
    classifier = get_classifier()
    items = load(DEV)
    neighbours = Neighbours.of(DEFAULT_NEIGHBOURS)
    best: tuple[float, float, float] | None = None
    for t in [x / 4 for x in range(-8, 25)]:
        proposed = proposals(
            items, classifier, neighbours, replace(weights, threshold=t), window_workdays=WINDOW
        )
        s = score(items, proposed, window_workdays=WINDOW)
        print(f"threshold {t:5.2f}: precision {s.precision:.3f} recall {s.recall:.3f}")
        if s.precision >= args.precision and (best is None or s.recall > best[2]):
            best = (t, s.precision, s.recall)
    print("chosen:", best)
    print(repr(replace(weights, threshold=best[0] if best else weights.threshold)))


if __name__ == "__main__":
    main()
