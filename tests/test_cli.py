"""The command line: `yimi-bot classify` and `yimi-bot lexicon suggest` on corrections made in chat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import COORD, COORD_GROUP, FIRM_B, World
from tests.test_ticket_loop import report

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    return done.stdout


def test_classify_reads_and_writes_json_lines() -> None:
    lines = [
        {"id": 1, "text": "厂里变压器老是跳闸"},
        {"id": "x", "text": "你好"},
        {"id": 3, "text": "发不出工资想申请贷款周转"},
    ]
    out = cli("classify", stdin="\n".join(json.dumps(x, ensure_ascii=False) for x in lines))
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in results] == [1, "x", 3]
    assert results[0]["labels"] == ["tech_industry"]
    assert results[1]["labels"] == ["general"]
    assert set(results[2]["labels"]) == {"finance", "hr_social"}
    assert all(isinstance(r["scores"], dict) for r in results)


async def test_lexicon_suggest_learns_from_a_coordinators_redispatch(world: World) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    await w.register(FIRM_B, "绿源食品厂", "李娜", "13987654321")
    # Twice a firm writes about 冷链 (cold chain), which the lexicon does not know, and a
    # coordinator routes it to agriculture by hand.
    for text in ("我们的冷链车不够用，冷链仓储也缺", "冷链物流跟不上，冷链冷库想扩建"):
        number = await report(w, FIRM_B, "李娜", text)
        await w.say(COORD_GROUP, COORD, "调度员", f"/dispatch {number} agriculture")
        assert "已交办" in tg.last(COORD_GROUP).text
    out = cli("lexicon", "suggest", env={"DATABASE_PATH": str(w.settings.database_path)})
    assert "review" in out
    agriculture = next(line for line in out.splitlines() if line.startswith("agriculture"))
    assert "冷链" in agriculture


async def test_retrain_learns_a_coordinators_correction_and_shows_it_first(
    world: World, tmp_path: Path
) -> None:
    w, tg = world, world.telegram
    await w.bind_all()
    await w.register(FIRM_B, "绿源食品厂", "李娜", "13987654321")
    text = "冷链车不够用冷链仓储也缺货都压着"
    number = await report(w, FIRM_B, "李娜", text)
    await w.say(COORD_GROUP, COORD, "调度员", f"/dispatch {number} agriculture")
    assert "已交办" in tg.last(COORD_GROUP).text
    env = {"DATABASE_PATH": str(w.settings.database_path)}
    out_file = tmp_path / "model.json"
    shown = cli("retrain", "--out", str(out_file), env=env)
    assert "1 corrections made in chat" in shown
    assert "on the blind probes" in shown and "hit rate now" in shown
    assert "nothing written" in shown and not out_file.exists()
    written = cli("retrain", "--apply", "--out", str(out_file), env=env)
    assert f"written: {out_file}" in written
    from bot.classify.classifier import Classifier
    from bot.classify.model import LinearModel

    new = Classifier(model=None).with_model(LinearModel.load(out_file))
    assert "corrections" in LinearModel.load(out_file).meta["sources"]
    assert new.classify(text).primary == "agriculture"
