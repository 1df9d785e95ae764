"""Held-out style probes: reports written independently of reports.jsonl, in other wording.

Voice-dictated text without punctuation, homophone typos (社宝, 待款, 续带), shop-floor English
(PLC, VOCs, OT), amounts, towns and firms, and decoys across domains. heldout_probe.jsonl was
written before the lexicon was tuned; heldout_probe2.jsonl after, without looking at failures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.classify.classifier import Classifier, get_classifier
from bot.classify.evaluation import LABELS, evaluate, load_items

DATA = Path(__file__).with_name("data")
PROBES = ("heldout_probe.jsonl", "heldout_probe2.jsonl")


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return get_classifier()


@pytest.mark.parametrize("name", PROBES)
def test_probe_is_well_formed(name: str) -> None:
    items = load_items(DATA / name)
    assert len({item["id"] for item in items}) == len(items)
    for item in items:
        labels = item["labels"]
        assert item["text"].strip() and 1 <= len(labels) <= 2, item
        assert set(labels) <= set(LABELS), item
        assert len(labels) == 1 or "general" not in labels, item


@pytest.mark.parametrize("name", PROBES)
def test_probe_macro_f1(clf: Classifier, name: str) -> None:
    report = evaluate(clf, load_items(DATA / name))
    assert report.macro_f1 >= 0.90, report.render()
    assert report.hit_rate >= 0.93, report.render()
