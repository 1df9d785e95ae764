"""The classify/eval/suggest commands: output formats, figures, keyword suggestions."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bot.classify.classifier import DOMAIN_IDS, Classifier, get_classifier
from bot.classify.evaluation import (
    Correction,
    evaluate,
    run_classify,
    run_eval,
    run_suggest,
    suggest_keywords,
)


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return get_classifier()


def test_classify_writes_one_json_line_per_input(capsys: pytest.CaptureFixture[str]) -> None:
    lines = [
        json.dumps({"id": "甲1", "text": "车间又跳闸了"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": 7, "text": "你好"}),
        json.dumps({"id": 8}),
        "",
    ]
    out = io.StringIO()
    code = run_classify(io.StringIO("\n".join(lines) + "\n"), out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in records] == ["甲1", 7]
    assert records[0]["labels"] == ["tech_industry"]
    assert records[0]["scores"]["tech_industry"] > 0
    assert records[1]["labels"] == ["general"]
    assert set(records[0]) == {"id", "labels", "confidence", "words", "urgent", "scores"}
    assert "跳闸" in records[0]["words"] and 0 < records[0]["confidence"] <= 1
    assert '"甲1"' in out.getvalue()  # ensure_ascii=False
    err = capsys.readouterr().err
    assert "line 2" in err and "line 4" in err
    assert code == 1


def test_classify_clean_input_exits_zero() -> None:
    out = io.StringIO()
    assert run_classify(io.StringIO('{"id": 1, "text": "续贷"}\n'), out) == 0
    assert json.loads(out.getvalue())["labels"] == ["finance"]


def test_eval_prints_figures_and_confusion(tmp_path: Path) -> None:
    data = tmp_path / "items.jsonl"
    items = [
        {"id": "a", "text": "又跳闸了", "labels": ["tech_industry"]},
        {"id": "b", "text": "续贷怎么办", "labels": ["finance"]},
        {"id": "c", "text": "你好", "labels": ["general"]},
        {"id": "d", "text": "员工社保断缴", "labels": ["land", "hr_social"]},
    ]
    data.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items), encoding="utf-8")
    out = io.StringIO()
    assert run_eval(data, out) == 0
    text = out.getvalue()
    assert "macro-F1" in text and "hit rate   1.0000" in text
    assert "confusion matrix" in text
    for label in DOMAIN_IDS:
        assert label in text


def test_eval_of_missing_file_is_an_error(tmp_path: Path) -> None:
    assert run_eval(tmp_path / "missing.jsonl", io.StringIO()) == 2


def test_evaluate_counts_primary_and_hits(clf: Classifier) -> None:
    items = [
        {"text": "又跳闸了", "labels": ["tech_industry"]},
        {"text": "员工社保断缴", "labels": ["land", "hr_social"]},
        {"text": "你好", "labels": ["finance"]},
    ]
    report = evaluate(clf, items)
    assert report.total == 3
    assert report.hit_rate == pytest.approx(2 / 3)
    assert report.per_label["tech_industry"].f1 == 1.0
    assert report.per_label["finance"].recall == 0.0
    assert report.confusion["land"]["hr_social"] == 1
    assert len(report.misses) == 1


def test_suggest_finds_a_planted_word(clf: Classifier) -> None:
    planted = "钒液流"
    corrections = [
        Correction(
            f"我们的{planted}储能项目想申请示范，{planted}电堆测试需要场地",
            "general",
            "tech_industry",
        ),
        Correction(
            f"{planted}电解液生产线调试，{planted}技术有没有政策", "general", "tech_industry"
        ),
        Correction("续贷办不下来", "finance", "finance"),  # not a correction: ignored
    ]
    suggestions = suggest_keywords(corrections, clf.lexicon, classifier=clf)
    assert set(suggestions) == {"tech_industry"}
    words = [w for w, _ in suggestions["tech_industry"]]
    assert any(planted in w or w in planted for w in words), words
    assert not set(words) & set(clf.lexicon.terms)


def test_run_suggest_prints_and_changes_nothing(clf: Classifier) -> None:
    before = (clf.lexicon.version, len(clf.lexicon.terms))
    out = io.StringIO()
    assert run_suggest([Correction("氢燃料叉车加氢站谁来建", "general", "tech_industry")], out) == 0
    assert "tech_industry" in out.getvalue()
    assert (clf.lexicon.version, len(clf.lexicon.terms)) == before
    empty = io.StringIO()
    assert run_suggest([], empty) == 0
    assert empty.getvalue()
