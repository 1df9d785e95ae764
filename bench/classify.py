"""Benchmark: classify() against plain jieba.lcut, cold start and peak memory of a one-line run.

`python bench/classify.py [--rounds N] [--no-cold-start]`
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ONE_LINE = (
    "import io, sys; from bot.classify.evaluation import run_classify; "
    "sys.exit(run_classify(io.StringIO(sys.argv[1]), sys.stdout))"
)


def reports() -> list[str]:
    """Texts of reports.jsonl (shipped in tests/data)."""
    path = ROOT / "tests" / "data" / "reports.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


PASSES = 3
COLD_TURNS = 7


def throughput(texts: list[str], rounds: int = 15) -> None:
    """Texts per second of jieba.lcut and of classify() on the same texts in this process.

    The functions take turns, PASSES passes over the texts each, so the noise of a shared machine
    falls on all alike; each round gives a ratio to the jieba.lcut pass of the same round, and
    the median and range of those ratios are printed beside the best rates. "cold cache" is
    classify() with the segmenter's cache of dictionary look-ups emptied before every pass:
    what a freshly started bot pays, before the words it meets are known to the cache."""
    import jieba

    from bot.classify.classifier import Classifier, get_classifier

    jieba.setLogLevel(30)
    jieba.initialize()
    clf = get_classifier()
    lexicon_only = Classifier(model=None)
    cold = Classifier()

    def cold_classify(texts: list[str]) -> None:
        cold.segmenter.clear()
        for t in texts:
            cold.classify(t)

    def each(fn: Callable[[str], object]) -> Callable[[list[str]], None]:
        def run(texts: list[str]) -> None:
            for t in texts:
                fn(t)

        return run

    contenders: dict[str, Callable[[list[str]], None]] = {
        "jieba.lcut": each(jieba.lcut),
        "classify": each(clf.classify),
        "lexicon only": each(lexicon_only.classify),
        "cold cache": cold_classify,
    }
    for run in contenders.values():  # warm all
        run(texts)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            for _ in range(PASSES):
                run(texts)
            rates[name].append(PASSES * len(texts) / (time.perf_counter() - start))
    base = rates["jieba.lcut"]
    print(
        f"{len(texts)} texts, {rounds} rounds of {PASSES} passes each;"
        " ratio to jieba.lcut in the same round:"
    )
    print(f"{'':14}{'best texts/s':>13}{'median ratio':>14}  range")
    for name, got in rates.items():
        ratios = [r / b for r, b in zip(got, base, strict=True)]
        print(
            f"{name:14}{max(got):13.0f}{statistics.median(ratios):13.2f}x"
            f"  {min(ratios):.2f}-{max(ratios):.2f}x"
        )
    best = max(rates["classify"]) / max(base)
    print(f"classify() best vs best: {best:.2f}x jieba.lcut (target >= 0.8x)")


# A middle process runs the one-line classify, so RUSAGE_CHILDREN there is that process alone.
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], capture_output=True, text=True)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(elapsed, peak, proc.returncode, proc.stdout.strip(), sep="\\t")
"""


BARE_JIEBA = (
    "import sys, jieba; jieba.setLogLevel(30); jieba.initialize(); print(jieba.lcut(sys.argv[1]))"
)


def cold_start(cache_dir: Path, label: str, program: str = ONE_LINE, *, show: bool = True) -> float:
    """Wall time and peak RSS of a fresh process classifying one JSON line."""
    env = {**os.environ, "YIMI_CACHE_DIR": str(cache_dir)}
    line = json.dumps({"id": 1, "text": "车间又跳闸了，生产线全停了"}, ensure_ascii=False)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, program, line],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    elapsed, peak, code, result = out.rstrip("\n").split("\t")
    if show:
        print(
            f"cold start, {label:<18} {float(elapsed):5.2f} s   peak RSS {int(peak) / 1024:6.1f} MiB"
        )
        print(f"  exit {code}: {result}")
    return float(elapsed)


def main() -> None:
    """Print the figures."""
    import jieba

    jieba.setLogLevel(30)
    args = sys.argv[1:]
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 15
    throughput(reports(), rounds)
    if "--no-cold-start" in args:
        return
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        cold_start(cache, "empty cache dir")
        cold_start(cache, "cached dictionary")
        jieba.initialize()  # its own cache in the temp dir, warm for the bare runs
        cold_start(cache, "bare jieba", BARE_JIEBA)
        # then the two take turns, so the machine's noise falls on both alike
        ours: list[float] = []
        bare: list[float] = []
        for _ in range(COLD_TURNS):
            ours.append(cold_start(cache, "cached", show=False))
            bare.append(cold_start(cache, "bare jieba", BARE_JIEBA, show=False))
        mid_ours, mid_bare = statistics.median(ours), statistics.median(bare)
        print(
            f"cold start, {COLD_TURNS} turns each: ours median {mid_ours:.2f} s"
            f" ({min(ours):.2f}-{max(ours):.2f}), bare jieba median {mid_bare:.2f} s"
            f" ({min(bare):.2f}-{max(bare):.2f})"
        )
        ratios = sorted(o / b for o, b in zip(ours, bare, strict=True))
        print(
            f"cold start ratio {mid_ours / mid_bare:.2f}x a bare jieba process, medians"
            f" (per turn {ratios[0]:.2f}-{ratios[-1]:.2f}x; target <= 1.3x)"
        )


if __name__ == "__main__":
    main()
