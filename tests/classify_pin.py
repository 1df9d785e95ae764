"""The classifier's outputs on every text of tests/data, recorded to pin them across rewrites.

`python -m tests.classify_pin --write` records `tests/data/classify_pinned.jsonl` from the code
as it is; `tests/test_classify_pin.py` checks the current code against it. The file was first
written from the classifier before the speed work of issue 11 (commit 7757441); write it again
only when the lexicon or the model changes on purpose (the header names both digests).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from bot.classify.classifier import DEFAULT_LEXICON, Classification, Classifier
from bot.classify.model import DEFAULT_MODEL

DATA = Path(__file__).resolve().parent / "data"
PINNED = DATA / "classify_pinned.jsonl"

# Inputs no data set has: empty and blank, Latin, digits, full-width forms, emoji, mixed
# separators, one character, a very long run, text beyond jieba's CJK range.
EXTRA: tuple[str, ...] = (
    "",
    "   ",
    "\n\t",
    "a",
    "你",
    "PLC MES ERP",
    "CNC加工中心3号机 跳闸了!!",
    "ＡＢＣ１２３，全角的字母和数字",
    "排污许可证\r\n到期了\u3000怎么办",
    "😀😀 贷款 😀",
    "社宝 待款 续带",
    "a-b_c.d%e#f&g+h 稳岗补贴",
    "𠀀𠀁 扩展区的字 厂房",
    "贷款" * 400,
    "我们厂" + "停电了" * 50 + "怎么办",
)


def digests() -> dict[str, str]:
    """The lexicon's and the model's content digests: what the pinned outputs depend on."""
    return {
        "lexicon": hashlib.sha256(DEFAULT_LEXICON.read_bytes()).hexdigest()[:16],
        "model": hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()[:16],
    }


def texts() -> list[str]:
    """Every text of tests/data/**/*.jsonl (in file order, duplicates kept once) and EXTRA."""
    seen: dict[str, None] = {}
    for path in sorted(DATA.rglob("*.jsonl")):
        if path == PINNED:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                seen.setdefault(json.loads(line)["text"], None)
    for text in EXTRA:
        seen.setdefault(text, None)
    return list(seen)


def as_record(result: Classification) -> dict[str, Any]:
    """Everything a classification returns, as plain JSON."""
    return {
        "labels": list(result.labels),
        "scores": result.scores,
        "confidence": result.confidence,
        "evidence": {k: list(v) for k, v in result.evidence.items()},
        "urgent": result.urgent,
        "confidential": result.confidential,
        "model": result.model,
    }


def record(full: Classifier, lexicon: Classifier) -> list[dict[str, Any]]:
    """Every text's classification by the shipped classifier and by its lexicon alone."""
    return [
        {
            "text": text,
            "full": as_record(full.classify(text)),
            "lexicon": as_record(lexicon.classify(text)),
        }
        for text in texts()
    ]


def main() -> int:
    """Write the pinned file from the classifier as it is now (`--write`)."""
    if sys.argv[1:] != ["--write"]:
        print("usage: python -m tests.classify_pin --write", file=sys.stderr)
        return 2
    rows = [{"digests": digests()}, *record(Classifier(), Classifier(model=None))]
    PINNED.write_text(
        "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows),
        encoding="utf-8",
    )
    print(f"{len(rows) - 1} classifications written to {PINNED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
