"""The lexicon is data reviewed like code: every keyword routes to its own team on its own."""

from __future__ import annotations

import tomllib

import pytest

from bot.classify.classifier import (
    DEFAULT_LEXICON,
    DOMAIN_IDS,
    GENERAL,
    Classifier,
    Lexicon,
    get_classifier,
)
from bot.core.models import TEAM_NAMES

LEXICON = Lexicon.load()
KEYWORDS = [(d, word) for d in DOMAIN_IDS for word in LEXICON.keywords[d]]
URGENCY = list(LEXICON.urgency)
GENERAL_TOPICS = tomllib.loads(DEFAULT_LEXICON.read_text(encoding="utf-8"))["general"]["strong"]


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return get_classifier()


def test_versioned_with_every_team() -> None:
    assert LEXICON.version >= 1
    assert LEXICON.team_names == TEAM_NAMES
    assert tuple(LEXICON.team_names) == DOMAIN_IDS


def test_each_domain_has_a_broad_vocabulary() -> None:
    for domain in DOMAIN_IDS:
        assert len(LEXICON.keywords[domain]) >= 100, domain


def test_context_free_keywords_belong_to_one_domain() -> None:
    owners: dict[str, list[str]] = {}
    for domain, word in KEYWORDS:
        owners.setdefault(word.lower(), []).append(domain)
    assert {w: d for w, d in owners.items() if len(d) > 1} == {}


@pytest.mark.parametrize(("domain", "word"), KEYWORDS, ids=[f"{d}-{w}" for d, w in KEYWORDS])
def test_keyword_routes_to_its_domain(clf: Classifier, domain: str, word: str) -> None:
    result = clf.classify(f"关于{word}，想问一下")
    assert result.primary == domain, (result.labels, result.scores)
    assert word in result.words or word.lower() in {w.lower() for w in result.words}


@pytest.mark.parametrize("word", GENERAL_TOPICS)
def test_topics_no_team_covers_stay_general(clf: Classifier, word: str) -> None:
    assert clf.classify(f"想问一下{word}的事").primary == GENERAL


@pytest.mark.parametrize("cue", URGENCY)
def test_urgency_cue_marks_urgent(clf: Classifier, cue: str) -> None:
    assert clf.classify(f"厂里{cue}，请尽快处理").urgent


def test_ambiguous_words_are_weak_or_flagged() -> None:
    # shared words like 补贴 count only a little for each team that lists them
    for word in ("补贴", "政策", "审批"):
        weights = dict(LEXICON.terms[word])
        assert all(w <= 1.0 for label, w in weights.items() if label != GENERAL)


def test_invalid_lexicon_is_refused() -> None:
    data = tomllib.loads(DEFAULT_LEXICON.read_text(encoding="utf-8"))
    data["domains"][0]["id"] = "nonsense"
    with pytest.raises(ValueError, match="unknown domain"):
        Lexicon.from_toml(data)
    data = tomllib.loads(DEFAULT_LEXICON.read_text(encoding="utf-8"))
    data["aliases"] = {"错字": "不存在的词"}
    with pytest.raises(ValueError, match="alias"):
        Lexicon.from_toml(data)


def test_alias_routes_like_its_target(clf: Classifier) -> None:
    for alias, target in LEXICON.aliases.items():
        assert (
            clf.classify(f"关于{alias}的问题").primary
            == clf.classify(f"关于{target}的问题").primary
        )
