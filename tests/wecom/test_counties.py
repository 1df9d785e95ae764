"""A county's own 微信客服 link (scene_param=county-<code>) on WeCom: the firm who comes through
it is that county's, is not asked the county, is offered its towns, and its ticket is numbered
and routed in that county; a firm without one is asked. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.channels.simulator.fakewecom import FakeWeCom
from bot.config import Settings
from bot.render import texts
from bot.render.markup import plain
from tests.wecom.test_channel import FIRM, REPORT, TECH_DEPT, Deployment

pytestmark = pytest.mark.usefixtures("backend")

COUNTIES = """
[[county]]
code = "weishi"
name = "尉氏县"
prefix = "WS"
towns = ["城关镇", "大营镇"]

[[county]]
code = "qixian"
name = "杞县"
prefix = "QX"
towns = ["城郊乡", "高阳镇"]
"""
OTHER_FIRM, QX_DEPT = "wmFactory02", 7


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as server:
        server.add_department(TECH_DEPT, "尉氏县科技工信")
        server.add_department(QX_DEPT, "杞县科技工信")
        server.add_member("zhangsan", "张三", [TECH_DEPT])
        server.add_member("wangwu", "王五", [QX_DEPT])
        server.add_member("boss", "赵主任", [])
        server.add_customer(FIRM, "王经理")
        server.add_customer(OTHER_FIRM, "李经理")
        yield server


@pytest.fixture
async def city(fake: FakeWeCom, tmp_path: Path) -> AsyncIterator[Deployment]:
    (tmp_path / "counties.toml").write_text(COUNTIES, encoding="utf-8")
    world = Deployment(fake, tmp_path)
    world.settings = Settings(  # type: ignore[call-arg]
        **{
            **world.settings.model_dump(),
            "counties_file": tmp_path / "counties.toml",
        },
        _env_file=None,
    )
    await world.open()
    await world.member("boss", f"/bind tech_industry@weishi dept:{TECH_DEPT}")
    await world.member("boss", f"/bind tech_industry@qixian dept:{QX_DEPT}")
    yield world
    await world.close()


def menus(fake: FakeWeCom, firm: str) -> list[tuple[str, list[str]]]:
    return [
        (
            plain(m["msgmenu"].get("head_content", "")),
            [item["click"]["content"] for item in m["msgmenu"]["list"]],
        )
        for m in fake.customers[firm].received
        if m["msgtype"] == "msgmenu"
    ]


async def test_a_countys_link_decides_the_county(city: Deployment, fake: FakeWeCom) -> None:
    assert (await fake.customer_enters(FIRM, "county-weishi")).status == 200
    await city.settle()
    for text in ("尉氏精工机械厂", "王经理", "13812345678"):  # /start asks the name first
        await city.firm(text)
    asked = menus(fake, FIRM)
    assert not [head for head, _ in asked if plain(texts.REG_ASK_COUNTY) in head]
    assert asked[-1][1][:2] == ["城关镇", "大营镇"]
    await city.firm(menu_id=city.menu_id("城关镇"))
    await city.firm(menu_id=city.menu_id("跳过"))
    await city.firm(REPORT)
    await city.firm(menu_id=city.menu_id("确认"))
    receipt = [t for t in city.firm_texts() if "已提交" in t]
    assert receipt and "YM-WS-" in receipt[-1], city.firm_texts()
    assert city.cards("zhangsan") and not city.cards("wangwu")
    async with city.s.db.read() as repo:
        (ticket,) = await repo.tickets.tickets_submitted_between(None, None, "weishi")
    assert ticket.channel == "wxkf"  # the ledger's 问题来源: 微信


async def test_without_a_link_the_firm_chooses_its_county(
    city: Deployment, fake: FakeWeCom
) -> None:
    assert (await fake.customer_enters(OTHER_FIRM)).status == 200
    await city.settle()

    async def write(text: str = "", **kw: str) -> None:
        assert (await fake.customer_writes(OTHER_FIRM, text, **kw)).status == 200
        await city.settle()

    for text in ("杞县绿源食品厂", "李经理", "13987654321"):
        await write(text)
    head, items = menus(fake, OTHER_FIRM)[-1]
    assert plain(texts.REG_ASK_COUNTY) in head and items == ["尉氏县", "杞县"]

    def menu_id(label: str) -> str:
        for m in reversed(fake.customers[OTHER_FIRM].received):
            for item in m.get("msgmenu", {}).get("list", []):
                if label in item["click"]["content"]:
                    return str(item["click"]["id"])
        raise AssertionError(label)

    await write(menu_id=menu_id("杞县"))
    assert menus(fake, OTHER_FIRM)[-1][1][:2] == ["城郊乡", "高阳镇"]
    await write(menu_id=menu_id("高阳镇"))
    await write(menu_id=menu_id("跳过"))
    await write(REPORT)
    await write(menu_id=menu_id("确认"))
    assert city.cards("wangwu") and not city.cards("zhangsan")
