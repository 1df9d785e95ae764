"""The simulator's WeChat/WeCom mode without a browser: its HTTP API, as the page calls it.

The page's actions become encrypted callbacks from the fake WeCom server to the bot's real
/wecom/callback; the real channel, workflow, classifier, delivery loop and a SQLite file of the
simulator's own handle them; what the bot sends through message/send, kf/send_msg and
update_template_card comes back in /api/state. Every step of a report is checked in the database
with a connection of its own (committed rows only).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.simulator.wecomsim import (
    ADMIN,
    DEPARTMENTS,
    FIRM_LI,
    FIRM_ZHANG,
    WX_PERSONAS,
    WeComSimulator,
    wecom_database_path,
)
from bot.cli import main
from bot.config import Settings
from bot.core.models import TEAM_NAMES
from bot.storage.db import Database

REPORT = "厂里变压器老是跳闸，生产线停了好几次，请帮忙协调供电公司"
TECH = ("wanggong", "zhaotuanzhang")  # the members of 科技工信 (department 2)


def sim_settings(tmp_path: Path, **kw: object) -> Settings:
    values: dict[str, object] = {
        "database_path": tmp_path / "yimi.db",
        "simulator_database_path": tmp_path / "simulator.db",
        "towns": ["城关镇", "大营镇"],
        **kw,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


class PageClient:
    """What the page does, over HTTP: read /api/state, post the people's actions."""

    def __init__(self, sim: WeComSimulator, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session

    async def state(self) -> dict[str, Any]:
        async with self.session.get(self.sim.url + "api/state") as response:
            assert response.status == 200
            return dict(await response.json())

    async def chat(self, pid: str) -> list[dict[str, Any]]:
        state = await self.state()
        [chat] = [c for c in state["chats"] if c["id"] == pid]
        return list(chat["messages"])

    async def post(self, path: str, body: dict[str, Any], status: int = 200) -> str:
        async with self.session.post(self.sim.url + path, json=body) as response:
            text = await response.text()
            assert response.status == status, text
            return text

    async def wait(self, pid: str, contains: str, *, after: int = 0) -> dict[str, Any]:
        """The first bot message to `pid` after seq `after` containing `contains` (polled)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for m in await self.chat(pid):
                shown = m.get("text", "") + str(m.get("card", ""))
                if m["from"] == "bot" and m["seq"] > after and contains in shown:
                    return m
            await asyncio.sleep(0.05)
        raise AssertionError(f"{pid} never saw {contains!r}: {await self.chat(pid)}")

    async def last_seq(self, pid: str) -> int:
        chat = await self.chat(pid)
        return int(chat[-1]["seq"]) if chat else 0

    async def firm_says(self, firm: str, text: str) -> int:
        seq = await self.last_seq(firm)
        await self.post("api/wx/send", {"user": firm, "text": text})
        return seq

    async def firm_taps(self, firm: str, label: str) -> int:
        for m in reversed(await self.chat(firm)):
            for item in m.get("menu") or []:
                if label in item["content"]:
                    seq = await self.last_seq(firm)
                    await self.post("api/wx/menu", {"user": firm, "id": item["id"]})
                    return seq
        raise AssertionError(f"no menu item {label!r} for {firm}")

    async def card(self, userid: str, number: str) -> dict[str, Any]:
        """The member's team card of ticket `number` (the first card about it), as it shows now."""
        for m in await self.chat(userid):
            if m.get("card") and number in m["card"]["title"] + m["card"]["sub"]:
                return dict(m["card"])
        raise AssertionError(f"{userid} has no card for {number}")

    async def member_clicks(self, userid: str, card: dict[str, Any], label: str) -> int:
        [button] = [b for b in card["buttons"] if label in b["text"]]
        seq = await self.last_seq(userid)
        body = {"user": userid, "task_id": card["task_id"], "key": button["key"]}
        await self.post("api/wecom/click", body)
        return seq


def db_rows(sim: WeComSimulator, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(sim.database_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def settled(sim: WeComSimulator, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """A query once the bot's handling has committed what it shows (polled, 15 s at most)."""
    deadline = time.monotonic() + 15
    rows = db_rows(sim, sql, *params)
    while not rows and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        rows = db_rows(sim, sql, *params)
    return rows


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[WeComSimulator]:
    simulator = WeComSimulator(sim_settings(tmp_path), port=0)
    await simulator.start()
    assert simulator.health()["ok"], simulator.error
    yield simulator
    await simulator.stop()


@pytest.fixture
async def page(sim: WeComSimulator) -> AsyncIterator[PageClient]:
    async with aiohttp.ClientSession() as session:
        yield PageClient(sim, session)


async def test_first_start_binds_every_department_and_registers_the_firm(
    sim: WeComSimulator, page: PageClient, tmp_path: Path
) -> None:
    bound = dict(db_rows(sim, "SELECT team_id, chat_id FROM bindings"))
    assert bound == {team: f"wecom:dept:{dept}" for dept, _, team in DEPARTMENTS}
    assert set(TEAM_NAMES) <= set(bound)
    [firm] = db_rows(sim, "SELECT name FROM enterprises")
    assert firm == ("恒达机械有限公司",)
    # Its own file: not the bot's, not the Telegram simulator's.
    assert sim.database_path == tmp_path / "simulator-wecom.db"
    assert not (tmp_path / "yimi.db").exists() and not (tmp_path / "simulator.db").exists()
    # The binding went through the app chat: the admin's /bind and the bot's answers.
    admin = await page.chat(ADMIN)
    assert next(m["text"] for m in admin if m["from"] == "me") == "/bind tech_industry dept:2"
    assert any("已绑定" in m["text"] for m in admin if m["from"] == "bot")
    # The page's state names every person and their kind of chat.
    state = await page.state()
    kinds = {c["id"]: c["kind"] for c in state["chats"]}
    assert kinds[FIRM_ZHANG] == kinds[FIRM_LI] == "wechat" and kinds["wanggong"] == "wecom"
    assert {p["name"] for p in state["personas"]} == {p.name for p in WX_PERSONAS}


async def test_a_wechat_report_is_claimed_resolved_and_rated_on_wecom(
    sim: WeComSimulator, page: PageClient
) -> None:
    firm = FIRM_LI  # not registered: registration first, in WeChat, with menus
    seq = await page.firm_says(firm, REPORT)
    await page.wait(firm, "企业名称", after=seq)
    for text, expect in (
        ("绿源食品有限公司", "联系人"),
        ("李娜", "手机号"),
        ("13987654321", "乡镇"),
    ):
        seq = await page.firm_says(firm, text)
        await page.wait(firm, expect, after=seq)
    seq = await page.firm_taps(firm, "大营镇")
    await page.wait(firm, "信用代码", after=seq)
    seq = await page.firm_taps(firm, "跳过")
    proposal = await page.wait(firm, "科技工信服务一米团", after=seq)
    items = " ".join(i["content"] for i in proposal["menu"])
    assert "确认提交" in items and "换个团队" in items and "取消" in items, items
    [(enterprise, town)] = db_rows(
        sim, "SELECT name, town FROM enterprises WHERE name LIKE '绿源%'"
    )
    assert (enterprise, town) == ("绿源食品有限公司", "大营镇")
    [(draft_state,)] = db_rows(
        sim, "SELECT state FROM tickets WHERE reporter_id = ?", f"wxkf:{firm}"
    )
    assert draft_state == "draft"

    # 确认提交: a ticket, a receipt in WeChat, a card in each 科技工信 member's app chat.
    seq = await page.firm_taps(firm, "确认提交")
    receipt = await page.wait(firm, "已提交", after=seq)
    found = re.search(r"YM-[0-9-]+", receipt["text"])
    assert found
    number = found.group(0)
    [(state, team, reporter)] = db_rows(
        sim, "SELECT state, team_id, reporter_id FROM tickets WHERE number = ?", number
    )
    assert (state, team, reporter) == ("pending_claim", "tech_industry", f"wxkf:{firm}")
    for userid in TECH:
        await page.wait(userid, number)
        card = await page.card(userid, number)
        labels = [b["text"] for b in card["buttons"]]
        assert any("签收" in t for t in labels) and any("退回" in t for t in labels)
        assert "139****4321" in card["sub"] and "13987654321" not in card["sub"]
    # Not the other teams' members.
    assert not [m for m in await page.chat("liugong") if number in str(m)]

    # 王工 claims it: both members' cards now say so and offer no 签收.
    wang = await page.card("wanggong", number)
    seq = await page.member_clicks("wanggong", wang, "签收")
    [(state, claimed_by, claimed_name)] = await settled(
        sim,
        "SELECT state, claimed_by, claimed_by_name FROM tickets WHERE number = ?"
        " AND state = 'in_progress'",
        number,
    )
    assert (claimed_by, claimed_name) == ("wecom:wanggong", "王工")
    await page.wait("wanggong", "13987654321", after=seq)  # the full contact, privately
    for userid in TECH:
        deadline = time.monotonic() + 15
        card = await page.card(userid, number)
        while "签收" in str(card["buttons"]) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            card = await page.card(userid, number)
        assert "王工" in str(card), card
        assert not any("签收" in b["text"] for b in card["buttons"])
    assert [m for m in await page.chat("zhaotuanzhang") if m["from"] == "me"] == []
    await page.wait(firm, "王工")  # the firm is told who has it

    # /reply in the app chat reaches the firm in WeChat; the firm's answer reaches 王工.
    seq_firm = await page.last_seq(firm)
    await page.post("api/wecom/send", {"user": "wanggong", "text": f"/reply {number} 明天上午到厂"})
    await page.wait(firm, "明天上午到厂", after=seq_firm)
    seq = await page.firm_says(firm, "好的，我们在厂里等")
    await page.wait("wanggong", "我们在厂里等")

    # 办结 on the claimer's card, the result as his next text: the firm is asked to rate.
    closing = None
    for m in reversed(await page.chat("wanggong")):
        if m.get("card") and any("办结" in b["text"] for b in m["card"]["buttons"]):
            closing = m["card"]
            break
    assert closing is not None, await page.chat("wanggong")
    seq = await page.member_clicks("wanggong", closing, "办结")
    await page.wait("wanggong", "结果", after=seq)
    seq_firm = await page.last_seq(firm)
    await page.post("api/wecom/send", {"user": "wanggong", "text": "已协调供电公司更换变压器"})
    rating = await page.wait(firm, "更换变压器", after=seq_firm)
    [(state, result)] = await settled(
        sim,
        "SELECT state, result_text FROM tickets WHERE number = ? AND state = 'pending_confirm'",
        number,
    )
    assert result == "已协调供电公司更换变压器"
    assert any("满意" in i["content"] for i in rating.get("menu") or []), rating
    assert any("未解决" in i["content"] for i in rating.get("menu") or [])

    # The firm taps 满意: closed, and the event log holds the whole story.
    seq = await page.firm_taps(firm, "满意")
    await page.wait(firm, "已销号", after=seq)
    [(state, satisfaction)] = await settled(
        sim,
        "SELECT state, satisfaction FROM tickets WHERE number = ? AND state = 'closed'",
        number,
    )
    assert satisfaction == "satisfied"
    actions = [
        a
        for (a,) in db_rows(
            sim,
            "SELECT action FROM ticket_events WHERE ticket_id ="
            " (SELECT id FROM tickets WHERE number = ?) ORDER BY id",
            number,
        )
    ]
    for action in ("claim", "relay_to_firm", "relay_to_team", "resolve", "rate"):
        assert any(action in a for a in actions), actions

    # Everything came in as encrypted callbacks, answered with an empty 200, each stored once.
    assert sim.fake is not None
    answers = sim.fake.callback_answers
    assert answers and all(a.status == 200 and a.body == b"" for a in answers)
    [(stored,)] = db_rows(sim, "SELECT count(*) FROM wecom_inbox")
    [(unhandled,)] = db_rows(sim, "SELECT count(*) FROM wecom_inbox WHERE handled_at IS NULL")
    # One row per callback and one per 微信客服 message pulled with kf/sync_msg.
    assert stored == len(answers) + len(sim.fake.kf_log) and unhandled == 0
    assert sim.fake.calls_to("message/update_template_card")


async def test_bad_input_gets_a_clear_chinese_answer(page: PageClient) -> None:
    assert "消息不能为空" in await page.post(
        "api/wx/send", {"user": FIRM_ZHANG, "text": "  "}, status=400
    )
    assert "未知身份" in await page.post(
        "api/wecom/send", {"user": "nobody", "text": "你好"}, status=400
    )
    assert "未知身份" in await page.post(
        "api/wx/send", {"user": "wanggong", "text": "你好"}, status=400
    )  # a member is not a WeChat firm
    assert "没有这个菜单项" in await page.post(
        "api/wx/menu", {"user": FIRM_ZHANG, "id": "v1:nothing"}, status=400
    )
    assert "卡片" in await page.post(
        "api/wecom/click", {"user": "wanggong", "task_id": "nope", "key": "x"}, status=400
    )


async def test_a_picture_from_wechat_reaches_the_draft(
    sim: WeComSimulator, page: PageClient
) -> None:
    form = aiohttp.FormData()
    form.add_field("user", FIRM_ZHANG)
    form.add_field("photo", b"\x89PNG\r\n\x1a\nfake", filename="跳闸.png", content_type="image/png")
    async with page.session.post(sim.url + "api/photo", data=form) as response:
        assert response.status == 200, await response.text()
    [mine] = [m for m in await page.chat(FIRM_ZHANG) if m.get("msgtype") == "image"]
    async with page.session.get(sim.url + f"api/media/{mine['media_id']}") as response:
        assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")
    rows = await settled(
        sim,
        "SELECT a.kind FROM attachments a JOIN tickets t ON t.id = a.ticket_id"
        " WHERE t.reporter_id = ?",
        f"wxkf:{FIRM_ZHANG}",
    )
    assert rows == [("photo",)]


async def test_reset_starts_over_and_a_foreign_database_is_refused(
    sim: WeComSimulator, page: PageClient, tmp_path: Path
) -> None:
    await page.firm_says(FIRM_ZHANG, REPORT)
    await settled(sim, "SELECT id FROM tickets WHERE reporter_id = ?", f"wxkf:{FIRM_ZHANG}")
    await page.post("api/reset", {})
    assert sim.health()["ok"]
    assert db_rows(sim, "SELECT id FROM tickets") == []
    assert len(db_rows(sim, "SELECT team_id FROM bindings")) == len(DEPARTMENTS)
    assert [m for m in await page.chat(FIRM_ZHANG) if REPORT in m.get("text", "")] == []

    production = tmp_path / "real.db"
    db = await Database.open(production)
    await db.close()
    other = WeComSimulator(
        sim_settings(tmp_path / "x", simulator_database_path=tmp_path / "real.db"), port=0
    )
    # simulator-wecom beside real.db is real-wecom.db: make that the production file.
    production.rename(wecom_database_path(other.settings))
    await other.start()
    try:
        assert other.health()["ok"] is False
        assert "不是模拟器的数据库" in (other.error or "")
    finally:
        await other.stop()


async def test_the_page_is_served_and_the_bot_stopping_shows(
    sim: WeComSimulator, page: PageClient
) -> None:
    async with page.session.get(sim.url) as response:
        html = await response.text()
    assert "微信 / 企业微信" in html and "/static/wecom.js" in html
    async with page.session.get(sim.url + "static/wecom.js") as response:
        assert response.status == 200
    async with page.session.get(sim.url + "healthz") as response:
        assert response.status == 200, await response.text()
    assert sim.runtime is not None
    await sim.runtime.channel.stop()
    health = (await page.state())["health"]
    assert health["ok"] is False and "回调处理已停止" in health["error"]


def test_simulate_wecom_is_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    async def wecom(settings: Settings, host: str = "", port: int = 0) -> None:
        ran.append(f"wecom:{port}")

    async def telegram(settings: Settings, host: str = "", port: int = 0) -> None:
        ran.append(f"telegram:{port}")

    monkeypatch.setattr("bot.channels.simulator.wecomsim.run_wecom_simulator", wecom)
    monkeypatch.setattr("bot.channels.simulator.server.run_simulator", telegram)
    monkeypatch.setenv("SIM_PORT", "8099")
    assert main(["simulate", "--wecom"]) == 0
    assert main(["simulate"]) == 0
    assert ran == ["wecom:8099", "telegram:8099"]


async def test_a_return_goes_to_the_coordinators_with_its_reason(
    sim: WeComSimulator, page: PageClient
) -> None:
    seq = await page.firm_says(FIRM_ZHANG, REPORT)
    await page.wait(FIRM_ZHANG, "科技工信服务一米团", after=seq)
    seq = await page.firm_taps(FIRM_ZHANG, "确认提交")
    receipt = await page.wait(FIRM_ZHANG, "已提交", after=seq)
    found = re.search(r"YM-[0-9-]+", receipt["text"])
    assert found
    number = found.group(0)
    await page.wait("wanggong", number)
    seq = await page.member_clicks("wanggong", await page.card("wanggong", number), "退回")
    await page.wait("wanggong", "原因", after=seq)
    await page.post("api/wecom/send", {"user": "wanggong", "text": "这是供电公司的事，不归工信"})
    [(state, returns)] = await settled(
        sim,
        "SELECT state, return_count FROM tickets WHERE number = ? AND state = 'pending_dispatch'",
        number,
    )
    assert (state, returns) == ("pending_dispatch", 1)
    # The coordinators' department (陈调度, 赵团长) gets the returned ticket with the reason.
    await page.wait(ADMIN, "不归工信")
    routing = await page.card(ADMIN, number)
    assert len(routing["buttons"]) >= 2, routing  # a button per team to route it to


async def test_the_fake_wecom_gone_is_named(sim: WeComSimulator, page: PageClient) -> None:
    assert sim.fake is not None
    await sim.fake.stop()
    health = (await page.state())["health"]
    assert health["ok"] is False and "无法连接企业微信接口" in health["error"]
    # A person's action now gets a Chinese answer instead of vanishing.
    text = await page.post("api/wx/send", {"user": FIRM_ZHANG, "text": "你好"}, status=502)
    assert "消息没有送到机器人" in text
