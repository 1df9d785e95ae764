"""/stats, the Friday digest and the 问题台账 export, on tickets made through the real bot."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import (
    ADMIN,
    COORD,
    COORD_GROUP,
    FIN_GROUP,
    FIRM_A,
    FIRM_B,
    MEMBER_FIN,
    MEMBER_TECH,
    TECH_GROUP,
    World,
)
from tests.test_ticket_loop import POWER, report


@pytest.fixture
async def busy(world: World) -> World:
    """Three tickets: one closed as satisfied, one claimed, one waiting; a leaders' group."""
    w, tg = world, world.telegram
    await w.bind_all()
    tg.members[-1010] = {ADMIN}
    await w.say(-1010, ADMIN, "管理员", "/bind leaders")
    await w.register(FIRM_A, "恒达机械有限公司", "张伟", "13812345678")
    await w.register(FIRM_B, "绿源食品厂", "李娜", "13987654321", "大营镇")
    first = await report(w, FIRM_A, "张伟", POWER)
    card = tg.find(TECH_GROUP, first)
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "签收")
    await w.press(TECH_GROUP, MEMBER_TECH, "王工", card, "办结")
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "已更换变压器")
    await w.press(FIRM_A, FIRM_A, "张伟", tg.last(FIRM_A), "已解决·满意")
    second = await report(w, FIRM_B, "李娜", "流动资金紧张，想申请续贷")
    await w.press(FIN_GROUP, MEMBER_FIN, "钱行长", tg.find(FIN_GROUP, second), "签收")
    await report(w, FIRM_A, "张伟", "工人社保断缴了怎么补")
    w.clock.advance(minutes=30)
    return w


async def test_stats_for_a_team_and_for_the_coordinators(busy: World) -> None:
    w, tg = busy, busy.telegram
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "/stats")
    team = tg.last(TECH_GROUP).text
    assert "科技工信" in team and "100.0%" in team  # satisfaction of the one rated ticket
    await w.say(COORD_GROUP, COORD, "调度员", "/stats month")
    everyone = tg.last(COORD_GROUP).text
    assert "3" in everyone and "金融" in everyone
    await w.say(COORD_GROUP, COORD, "调度员", "/stats decade")
    assert "用法" in tg.last(COORD_GROUP).text


async def test_weekly_digest_goes_to_coordinators_and_leaders_with_a_chart(busy: World) -> None:
    w, tg = busy, busy.telegram
    assert await w.services.reports.send_weekly_digest()
    await w.flush()
    for chat in (COORD_GROUP, -1010):
        photo = tg.chat(chat)[-1]
        assert photo.method == "sendPhoto"
        _, content, _ = photo.params["_files"]["photo"]
        assert bytes(content).startswith(b"\x89PNG")
        assert "周报" in tg.chat(chat)[-2].text
    # The per-team section's heading is bold like the others, not raw template text.
    digest = tg.chat(COORD_GROUP)[-2].text
    assert "<b>分团情况</b>" in digest and "{B}" not in digest and "{E}" not in digest


async def test_export_in_the_coordinators_group(busy: World) -> None:
    w, tg = busy, busy.telegram
    await w.say(TECH_GROUP, MEMBER_TECH, "王工", "/export")
    assert "专班群" in tg.last(TECH_GROUP).text
    await w.say(COORD_GROUP, COORD, "调度员", "/export 2026-13-01")
    assert "用法" in tg.last(COORD_GROUP).text
    await w.say(COORD_GROUP, COORD, "调度员", "/export 2026-11-01 2026-11-30")
    sent = tg.last(COORD_GROUP)
    assert sent.method == "sendDocument" and "共 3 条" in sent.text and "调度员" in sent.text
    filename, content, _ = sent.params["_files"]["document"]
    assert filename.endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(bytes(content)))
    assert book.sheetnames[:2] == ["问题台账", "本周新增"]
    ledger = book["问题台账"]
    headers = [c.value for c in ledger[1]]
    assert headers[:4] == ["序号", "工单编号", "登记日期", "问题来源"]
    rows = [r for r in ledger.iter_rows(min_row=2, values_only=True) if r[1]]
    numbers = {r[1] for r in rows if str(r[1]).startswith("YM-")}
    assert len(numbers) == 3
    phone = headers.index("联系电话")
    assert {r[phone] for r in rows if str(r[1]).startswith("YM-")} >= {"138****5678"}
    audit = (
        sqlite3.connect(w.settings.database_path)
        .execute("SELECT actor_id, action FROM audit_log")
        .fetchall()
    )
    assert audit == [(f"telegram:{COORD}", "export")]
    # The admin's export is not masked.
    await w.say(COORD_GROUP, ADMIN, "管理员", "/export")
    _, content, _ = tg.last(COORD_GROUP).params["_files"]["document"]
    ledger = openpyxl.load_workbook(io.BytesIO(bytes(content)))["问题台账"]
    assert "13812345678" in [c for row in ledger.iter_rows(values_only=True) for c in row]


async def test_cli_export_writes_the_same_workbook(busy: World, tmp_path: Path) -> None:
    out = tmp_path / "ledger.xlsx"
    env = {"DATABASE_PATH": str(busy.settings.database_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "export", "--out", str(out), "--masked"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "3 条工单" in done.stdout
    ledger = openpyxl.load_workbook(out)["问题台账"]
    cells = [c for row in ledger.iter_rows(values_only=True) for c in row]
    assert "138****5678" in cells and "13812345678" not in cells


def _cli_export(busy: World, out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_PATH": str(busy.settings.database_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "export", "--out", str(out), *flags],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


async def test_cli_export_is_masked_by_default_and_unmasked_for_an_admin(
    busy: World, tmp_path: Path
) -> None:
    done = _cli_export(busy, tmp_path / "default.xlsx")
    assert done.returncode == 0, done.stderr
    assert "已脱敏" in done.stdout
    assert "ledger exported by the command line: 3 tickets, masked" in done.stderr
    assert "None" not in done.stderr
    ledger = openpyxl.load_workbook(tmp_path / "default.xlsx")["问题台账"]
    rows = list(ledger.iter_rows(values_only=True))
    headers = list(rows[0])
    closed = next(r for r in rows if r[headers.index("企业评价")] == "满意")
    # Rated 已解决·满意 by the firm: 是否解决 says so.
    assert closed[headers.index("是否解决")] == "已解决"
    assert (
        closed[headers.index("联系人")] == "张**"
        and closed[headers.index("联系电话")] == "138****5678"
    )
    footer = rows[-1][0]
    assert "已脱敏" in footer and "命令行 yimi-bot export" in footer

    done = _cli_export(busy, tmp_path / "admin.xlsx", "--unmasked")
    assert done.returncode == 0, done.stderr
    assert "ledger exported by the command line: 3 tickets, unmasked" in done.stderr
    rows = list(
        openpyxl.load_workbook(tmp_path / "admin.xlsx")["问题台账"].iter_rows(values_only=True)
    )
    cells = [c for row in rows for c in row]
    assert "13812345678" in cells and "张伟" in cells
    assert "未脱敏" in rows[-1][0]
    audit = (
        sqlite3.connect(busy.settings.database_path)
        .execute("SELECT payload FROM audit_log WHERE action = 'export'")
        .fetchall()
    )
    assert ['"admin": false' in a[0] for a in audit] == [True, False]
