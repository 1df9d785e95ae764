"""Benchmark: classify() against plain jieba.lcut, cold start and peak memory of a one-line run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
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


def throughput(texts: list[str], rounds: int = 5) -> None:
    """Texts per second of jieba.lcut and of classify() on the same texts in this process."""
    import jieba

    from bot.classify.classifier import get_classifier

    jieba.setLogLevel(30)
    jieba.initialize()
    from bot.classify.classifier import Classifier

    clf = get_classifier()
    lexicon_only = Classifier(model=None)
    for t in texts:  # warm all three
        jieba.lcut(t)
        clf.classify(t)
        lexicon_only.classify(t)
    best: dict[str, float] = {}
    # interleave the two so machine noise hits both alike; keep each one's best round
    for _ in range(rounds):
        for name, fn in (
            ("jieba.lcut", jieba.lcut),
            ("classify", clf.classify),
            ("lexicon only", lexicon_only.classify),
        ):
            start = time.perf_counter()
            for t in texts:
                fn(t)
            rate = len(texts) / (time.perf_counter() - start)
            best[name] = max(best.get(name, 0.0), rate)
    ratio = best["classify"] / best["jieba.lcut"]
    print(f"jieba.lcut   {best['jieba.lcut']:9.0f} texts/s")
    print(f"classify()   {best['classify']:9.0f} texts/s  (lexicon and model)")
    print(
        f"lexicon only {best['lexicon only']:9.0f} texts/s  "
        f"({best['lexicon only'] / best['jieba.lcut']:.2f}x jieba.lcut)"
    )
    print(
        f"ratio        {ratio:9.2f}x  (target >= 0.8x)  over {len(texts)} texts, best of {rounds}"
    )


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


def cold_start(cache_dir: Path, label: str, program: str = ONE_LINE) -> float:
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
    print(f"cold start, {label:<18} {float(elapsed):5.2f} s   peak RSS {int(peak) / 1024:6.1f} MiB")
    print(f"  exit {code}: {result}")
    return float(elapsed)


def main() -> None:
    """Print the figures."""
    import jieba

    jieba.setLogLevel(30)
    texts = reports()
    throughput(texts)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        cold_start(cache, "empty cache dir")
        cold_start(cache, "cached dictionary")
        ours = min(cold_start(cache, "cached, again"), cold_start(cache, "cached, 4th"))
        jieba.initialize()  # its own cache in the temp dir, warm for the bare runs
        bare = min(cold_start(cache, "bare jieba", BARE_JIEBA) for _ in range(2))
        print(f"cold start ratio {ours / bare:.2f}x a bare jieba process (target <= 1.3x)")


if __name__ == "__main__":
    main()
