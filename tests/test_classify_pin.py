"""classify() returns what it returned before it was made faster, on every text of tests/data.

The expected outputs were recorded by `python -m tests.classify_pin --write` from the classifier
as it was before the speed work (see tests/classify_pin.py), both for the shipped classifier
(lexicon + model) and for the lexicon alone. Labels, words, urgency and flags must be equal;
scores and confidences (rounded to 3 places by the classifier) may differ by one unit in the
last place at most, which a different order of float additions can cause.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bot.classify.classifier import Classifier, get_classifier
from tests.classify_pin import PINNED, as_record, digests, texts

ROUNDING = 0.001 + 1e-9


@pytest.fixture(scope="module")
def pinned() -> list[dict[str, Any]]:
    header, *rows = (json.loads(line) for line in PINNED.read_text(encoding="utf-8").splitlines())
    if header["digests"] != digests():
        pytest.fail(
            "lexicon.toml or model.json changed since the outputs were pinned: check the change "
            "on its own, then record again with `python -m tests.classify_pin --write`"
        )
    return rows


def close(got: dict[str, float], want: dict[str, float]) -> bool:
    """Same keys, values within the classifier's rounding."""
    return got.keys() == want.keys() and all(
        math.isclose(got[k], want[k], rel_tol=0.0, abs_tol=ROUNDING) for k in want
    )


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """What differs between two records, beyond float rounding."""
    out = [key for key in ("labels", "evidence", "urgent", "confidential") if got[key] != want[key]]
    if not close(got["scores"], want["scores"]):
        out.append("scores")
    if not close(got["model"], want["model"]):
        out.append("model")
    if not math.isclose(got["confidence"], want["confidence"], rel_tol=0.0, abs_tol=ROUNDING):
        out.append("confidence")
    return out


def test_the_pinned_file_covers_every_text(pinned: list[dict[str, Any]]) -> None:
    assert [row["text"] for row in pinned] == texts()
    assert len(pinned) > 1800


@pytest.mark.parametrize("kind", ["full", "lexicon"])
def test_every_text_classifies_as_pinned(pinned: list[dict[str, Any]], kind: str) -> None:
    clf = get_classifier() if kind == "full" else Classifier(model=None)
    wrong = []
    rounded = 0
    for row in pinned:
        got = as_record(clf.classify(row["text"]))
        if diff := differences(got, row[kind]):
            wrong.append((row["text"][:40], diff, got, row[kind]))
        elif got != row[kind]:
            rounded += 1
    assert not wrong, wrong[:3]
    # float rounding may move a third decimal now and then, not as a rule
    assert rounded <= len(pinned) // 100
