"""The classifier's fast paths give what the slow ones they replace give, input by input.

The segmenter against jieba's own `cut(text, HMM=False)`; the homophone finder against the
character-by-character scan it replaced (kept here as the reference); the model's
`text_scores` / `explain_tokens` against `scores(features(...))` / `explain(features(...))`,
which training still uses.
"""

from __future__ import annotations

import itertools
import random

import jieba
import pytest

from bot.classify import segment
from bot.classify.classifier import Classifier, get_classifier
from bot.classify.homophones import Homophones
from bot.classify.model import features
from bot.classify.segment import Segmenter
from tests.classify_pin import texts


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return get_classifier()


def noise(seed: int, count: int, words: list[str]) -> list[str]:
    """Random texts of lexicon words, CJK, Latin, digits, jieba's joiners, blanks and symbols."""
    rng = random.Random(seed)
    pieces = [
        *words,
        *"的了厂房贷款社保停电跳闸环评土地农业合同工资补贴我们你好",
        *"abcXYZ019",
        *"+#&._%-",
        " ",
        "\t",
        "\r\n",
        "\n",
        "\u3000",
        *"，。！？、：；（）《》",
        "😀",
        "ＡＢ１２",
        "\u9fd5",  # the last character of jieba's CJK range
        "\u9fd6",  # the first one past it
        "𠀀",  # CJK extension B
        "ā",
        "\x00",
        "\ue000",  # private use
        "İ",  # changes length when lower-cased
    ]
    return ["".join(rng.choices(pieces, k=rng.randint(0, 40))) for _ in range(count)]


def inputs(clf: Classifier) -> list[str]:
    words = sorted(clf.lexicon.terms)
    return [*texts(), *noise(11, 3000, words)]


def test_the_segmenter_cuts_as_jieba_does(clf: Classifier) -> None:
    cut = Segmenter(clf.tokenizer).cut
    for text in inputs(clf):
        assert cut(text) == list(clf.tokenizer.cut(text, HMM=False)), text


def test_the_segmenter_cuts_as_jieba_does_on_its_default_dictionary(clf: Classifier) -> None:
    jieba.initialize()
    cut = Segmenter(jieba.dt).cut
    for text in inputs(clf)[::3]:
        assert cut(text) == list(jieba.dt.cut(text, HMM=False)), text


def test_the_segmenter_cuts_the_same_when_its_cache_starts_again(
    clf: Classifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment, "CACHE_SIZE", 25)
    seg = Segmenter(clf.tokenizer)
    for text in inputs(clf)[:400]:
        assert seg.cut(text) == list(clf.tokenizer.cut(text, HMM=False)), text
        assert len(seg._logp) <= 25


def test_the_segmenter_follows_a_change_of_the_dictionary(clf: Classifier) -> None:
    tokenizer = jieba.Tokenizer()
    tokenizer.tmp_dir = str(clf.cache_dir)
    tokenizer.cache_file = "jieba.cache"
    seg = Segmenter(tokenizer)
    text = "城关镇宏达塑业注塑机跳闸"
    assert seg.cut(text) == list(tokenizer.cut(text, HMM=False))
    tokenizer.add_word("宏达塑业", 50000)
    tokenizer.add_word("注塑机跳闸", 50000)
    assert "宏达塑业" in seg.cut(text)
    assert seg.cut(text) == list(tokenizer.cut(text, HMM=False))


Tables = tuple[dict[tuple[str, ...], list[str]], dict[tuple[str, str], list[int]]]


def reference_tables(clf: Classifier) -> Tables:
    """The tables the scan used: words by their syllables, key lengths by the first two."""
    by_key: dict[tuple[str, ...], list[str]] = {}
    lengths: dict[tuple[str, str], set[int]] = {}
    for pair, entries in clf._index.items():
        for word, key in entries:
            by_key.setdefault(tuple(key), []).append(word)
            lengths.setdefault(pair, set()).add(len(key))
    return by_key, {pair: sorted(ks) for pair, ks in lengths.items()}


def reference_homophones(
    clf: Classifier, tables: Tables, text: str, covered: bytearray
) -> list[tuple[str, str]]:
    """The scan `Classifier._fuzzy` did before `Homophones`: every pair of syllables in turn."""
    by_key, lengths = tables
    py = list(map(clf._chars.get, text))
    out = []
    for i, pair in enumerate(itertools.pairwise(py)):
        if pair not in lengths or covered[i] or covered[i + 1]:
            continue
        for k in lengths[pair]:  # type: ignore[index]
            if i + k > len(py) or any(covered[i : i + k]):
                continue
            for word in by_key.get(tuple(py[i : i + k]), ()):  # type: ignore[arg-type]
                surface = text[i : i + k]
                if any(a == b for a, b in zip(surface, word, strict=True)):
                    out.append((surface, word))
    return out


def test_homophones_are_found_as_the_scan_found_them(clf: Classifier) -> None:
    homophones = Homophones(clf._chars, clf._index)
    tables = reference_tables(clf)
    rng = random.Random(5)
    fuzzy = sorted(clf.lexicon.fuzzy_terms)
    # texts full of homophones: lexicon words with a character swapped for one that sounds alike
    alike: dict[str, list[str]] = {}
    for ch, syllable in clf._chars.items():
        alike.setdefault(syllable, []).append(ch)
    sounding = [
        "".join(
            rng.choice(alike.get(clf._chars.get(c, ""), [c])) if rng.random() < 0.5 else c
            for c in rng.choice(fuzzy)
        )
        + rng.choice(["", "了", "，", " ", "a"])
        for _ in range(2000)
    ]
    found = 0
    for text in [*inputs(clf), *sounding]:
        exact = bytearray(len(text))
        clf._exact(text, set(), exact, [])
        masks = [exact, bytearray(len(text)), bytearray(rng.getrandbits(1) for _ in text)]
        for covered in masks:
            want = reference_homophones(clf, tables, text, covered)
            assert list(homophones.find(text, covered)) == want, text
            found += len(want)
    assert found > 1000


def test_the_model_scores_a_text_as_from_its_features(clf: Classifier) -> None:
    model = clf.model
    assert model is not None
    for text in inputs(clf):
        text = text.strip()
        tokens = clf.tokens(text)
        feats = features(text.lower(), tokens)
        fast = model.text_scores(text.lower(), tokens)
        slow = model.scores(feats)
        assert fast == pytest.approx(slow, rel=1e-12, abs=1e-12), text
        for label in model.labels:
            assert model.explain_tokens(tokens, label) == model.explain(feats, label)


def test_many_words_of_one_team_are_scored_as_before(clf: Classifier) -> None:
    words = [w for w, labels in clf.lexicon.terms.items() if any(w2 > 0 for _, w2 in labels)]
    rng = random.Random(3)
    decay = clf._decay
    for count in (1, 5, 31, 32, 33, 80):
        items = [("x", w, rng.choice([3.0, 2.0, 1.0, -1.5, 2.4])) for w in words[:count]]
        raw, best = clf._score({"land": items}, [])
        positive = sorted((w for _, _, w in items if w > 0), reverse=True)
        want = sum(w * decay**i for i, w in enumerate(positive)) + sum(
            w for _, _, w in items if w < 0
        )
        assert raw["land"] == want
        assert best["land"] == (positive[0] if positive else 0.0)
