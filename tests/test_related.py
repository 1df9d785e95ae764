"""Issue 13: the related-reports finder with the real classifier: the labelled sets replayed in
time order (precision and recall of the pairs it proposes), the window, groups, forgetting and
pruning, neighbouring towns and their setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.classify.classifier import get_classifier
from bot.config import DEFAULT_NEIGHBOURS, Settings
from bot.workflow.related import Neighbours, RelatedFinder, Report
from bot.workflow.related_eval import load, proposals, score

DATA = Path(__file__).parent / "data"
WINDOW = 5  # RELATED_WINDOW_WORKDAYS' default
HOUR = 3600.0


def replay(name: str) -> tuple[float, float, int]:
    items = load(DATA / name)
    found = proposals(
        items, get_classifier(), Neighbours.of(DEFAULT_NEIGHBOURS), window_workdays=WINDOW
    )
    result = score(items, found, window_workdays=WINDOW)
    return result.precision, result.recall, result.proposed


def test_dev_set_the_thresholds_were_tuned_on() -> None:
    # Tuned here only. Target of the issue: precision ≥ 0.9 at recall ≥ 0.7; reached: 0.857 / 0.407.
    precision, recall, proposed = replay("related_dev.jsonl")
    assert proposed > 100
    assert precision >= 0.85 and recall >= 0.40


def test_blind_test_set_never_tuned_on() -> None:
    # The floor this version reaches (0.761 / 0.290), short of the 0.9 / 0.7: see README.
    precision, recall, proposed = replay("related_pairs.jsonl")
    assert proposed > 80
    assert precision >= 0.75 and recall >= 0.28


def finder() -> RelatedFinder:
    return RelatedFinder(get_classifier().tokens, Neighbours.of(DEFAULT_NEIGHBOURS))


def add(f: RelatedFinder, ticket: int, town: str, hours: float, text: str) -> list[int]:
    """Look the report up, then index it with what it was found related to, as the bot does."""
    result = get_classifier().classify(text)
    at = hours * HOUR
    found = f.find(text, town=town, team=result.primary, at=at, words=result.words, limit=50)
    report = Report(ticket, f"YM-{ticket:04d}", town, result.primary, ticket, at, result.words)
    f.add(report, text, [m.report.id for m in found])
    return [m.report.id for m in found]


def test_same_problem_same_town_is_found_and_another_problem_is_not() -> None:
    f = finder()
    add(f, 1, "道陵岗乡", 9.0, "厂里突然停电了，生产线全停，什么时候能来电")
    add(f, 2, "城关镇", 9.2, "想申请流动资金贷款，银行要抵押，有没有贴息政策")
    assert add(f, 3, "道陵岗乡", 9.5, "我们这边也停电了，车间机器都停着，供电所电话打不通") == [1]
    result = get_classifier().classify("停电了")
    [match] = f.find(
        "停电了", town="道陵岗乡", team=result.primary, at=10 * HOUR, words=result.words
    )[:1]
    assert match.place == "same" and "停电" in match.shared


def test_a_report_found_related_to_one_member_is_related_to_its_group() -> None:
    f = finder()
    add(f, 1, "尉氏县产业集聚区", 7.0, "园区停电了，全厂没电，啥时候能来电")
    assert add(
        f, 2, "尉氏县产业集聚区", 7.5, "停电一个多小时了，冷库温度上来了，请尽快恢复供电"
    ) == [1]
    third = add(f, 3, "尉氏县产业集聚区", 8.0, "供电什么时候恢复？冷库的货要坏了")
    assert set(third) == {1, 2}
    assert [r.id for r in f.group_of(3)] == [1, 2, 3]


def test_the_window_forgetting_and_pruning() -> None:
    f = finder()
    add(f, 1, "道陵岗乡", 0.0, "厂里停电了，生产线全停")
    add(f, 2, "道陵岗乡", 200.0, "停电了，车间机器全停，啥时候来电")
    result = get_classifier().classify("停电了 机器全停")
    kw = {"town": "道陵岗乡", "team": result.primary, "words": result.words}
    found = f.find("停电了 机器全停", at=201 * HOUR, since=100 * HOUR, **kw)  # type: ignore[arg-type]
    assert [m.report.id for m in found] == [2]
    f.discard(2)  # closed meanwhile
    assert f.find("停电了 机器全停", at=201 * HOUR, since=100 * HOUR, **kw) == []  # type: ignore[arg-type]
    assert f.dead == 1
    f.prune(100 * HOUR)  # the out-of-window report goes too
    assert len(f) == 0 and f.dead == 0


def test_neighbours_work_both_ways_and_come_from_the_setting() -> None:
    near = Neighbours.of({"邢庄乡": ["道陵岗乡"]})
    assert near.place("道陵岗乡", "邢庄乡") == "near" == near.place("邢庄乡", "道陵岗乡")
    assert near.place("邢庄乡", "邢庄乡") == "same" and near.place("邢庄乡", "城关镇") == ""
    settings = Settings(
        _env_file=None, related_neighbours="城关镇=尉氏县产业集聚区|张市镇;大营镇=永兴镇"
    )  # type: ignore[call-arg]
    assert settings.related_neighbours == {
        "城关镇": ["尉氏县产业集聚区", "张市镇"],
        "大营镇": ["永兴镇"],
    }
    assert Settings(_env_file=None).related_neighbours["城关镇"]  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="RELATED_NEIGHBOURS"):
        Settings(_env_file=None, related_neighbours="城关镇")  # type: ignore[call-arg]
