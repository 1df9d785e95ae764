"""Issue 10 item 0: counties as tenants. One deployment serves 尉氏县 and 杞县: each has its own
groups, admins, towns, numbers, deadlines, stats, digest and ledger; a firm belongs to one county
and nobody acts on or sees another county's tickets. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.config import Settings
from bot.core.errors import BadInput, NotAllowed, NotFound
from bot.core.models import Ticket, TicketState
from bot.render import texts
from bot.render.keyboards import Reply
from bot.render.markup import plain
from tests.neutral.harness import CHANNEL, World, button, in_group, person

COUNTIES = """
[[county]]
code = "weishi"
name = "尉氏县"
prefix = "WS"
towns = ["城关镇", "大营镇"]
admins = ["test:ws-admin"]
[county.deadlines]
claim_limit_hours = 2

[[county]]
code = "qixian"
name = "杞县"
prefix = "QX"
towns = ["城关镇", "城郊乡", "高阳镇"]  # a 城关镇 of its own
admins = ["test:qx-admin"]
"""

WS_TECH, WS_COORD = f"{CHANNEL}:ws-tech", f"{CHANNEL}:ws-coord"
QX_TECH, QX_COORD = f"{CHANNEL}:qx-tech", f"{CHANNEL}:qx-coord"
CITY = f"{CHANNEL}:city-leaders"
OUTAGE = "暴雨后厂区停电了，变压器跳闸，生产线全停"
ROOT = Path(__file__).resolve().parents[2]

ADMIN = person("admin", admin=True)  # ADMIN_IDS: the whole deployment's admin
WS_ADMIN, QX_ADMIN = person("ws-admin"), person("qx-admin")
WANG = in_group(person("wang"), WS_TECH)  # 尉氏县 科技工信
LIU = in_group(person("liu"), QX_TECH)  # 杞县 科技工信
CHEN = in_group(person("chen"), WS_COORD)  # 尉氏县 专班
ZHOU = in_group(person("zhou"), QX_COORD)  # 杞县 专班


class Counties(World):
    """A world of two counties."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        (folder / "counties.toml").write_text(COUNTIES, encoding="utf-8")
        self.settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_path=folder / "yimi.db",
            outbox_poll_seconds=0.05,
            counties_file=folder / "counties.toml",
        )
        self.sender.groups |= {WS_TECH, WS_COORD, QX_TECH, QX_COORD, CITY}

    async def register_in(
        self, firm: str, enterprise: str, *, county_index: int | None, link: str = ""
    ) -> list[Reply]:
        """Registration of a firm; `link` is a county's own /start payload. Returns every
        reply after the phone (the county and town questions)."""
        w, actor = self.s.workflow, person(firm)
        await w.start(actor, link)
        for text in (enterprise, "张伟", "13812345678"):
            asked = await w.private_message(actor, self.incoming(text))
        if county_index is not None:
            asked += await w.registration_input(actor, county_index=county_index)
        asked += await w.registration_input(actor, town_index=0)
        await w.registration_input(actor, skip=True)
        return asked

    async def submit(self, firm: str, text: str = OUTAGE) -> Ticket:
        proposal = await self.say(person(firm), text)
        _, draft, _ = button(proposal, "确认")
        await self.s.workflow.confirm(person(firm), draft)
        await self.flush()
        return await self.get(draft)

    async def get(self, ticket_id: int) -> Ticket:
        async with self.s.db.read() as repo:
            found = await repo.tickets.get_ticket(ticket_id)
        assert found is not None
        return found


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[Counties]:
    w = Counties(tmp_path)
    await w.open()
    w.members.groups = {
        WS_TECH: {WANG.id},
        QX_TECH: {LIU.id},
        WS_COORD: {CHEN.id},
        QX_COORD: {ZHOU.id},
        CITY: {person("mayor").id},
    }
    bind = w.s.workflow.bind
    await bind(in_group(WS_ADMIN, WS_TECH), "尉氏科技工信群", "tech_industry")
    await bind(in_group(WS_ADMIN, WS_COORD), "尉氏专班群", "coordinator")
    await bind(in_group(ADMIN, QX_TECH), "杞县科技工信群", "tech_industry@qixian")
    await bind(in_group(QX_ADMIN, QX_COORD), "杞县专班群", "coordinator@qixian")
    await bind(in_group(ADMIN, CITY), "市领导群", "leaders")
    for member in (WANG, LIU):
        await w.s.workflow.start(person(member.name), "staff")
    await w.register_in("zhang", "宏远铸造厂", county_index=None, link="county-weishi")
    await w.register_in("li", "绿源食品厂", county_index=1)
    yield w
    await w.close()


def texts_in(w: World, chat: str) -> list[str]:
    return [s.text for s in w.sender.chat(chat)]


async def test_bindings_are_per_county_and_only_by_that_countys_admins(world: Counties) -> None:
    w = world
    async with w.s.db.read() as repo:
        bound = {(b.chat_id, b.county, b.team_id) for b in await repo.users.list_bindings()}
    assert bound == {
        (WS_TECH, "weishi", "tech_industry"),
        (WS_COORD, "weishi", "coordinator"),
        (QX_TECH, "qixian", "tech_industry"),
        (QX_COORD, "qixian", "coordinator"),
        (CITY, "", "leaders"),
    }
    other = f"{CHANNEL}:another"
    # A county admin cannot bind a group for the other county …
    with pytest.raises(NotAllowed) as refused:
        await w.s.workflow.bind(in_group(WS_ADMIN, other), "x", "finance@qixian")
    assert "杞县" in str(refused.value)
    # … the deployment's admin must name the county of a team group …
    with pytest.raises(BadInput) as usage:
        await w.s.workflow.bind(in_group(ADMIN, other), "x", "finance")
    assert "weishi" in str(usage.value) and "qixian" in str(usage.value)
    with pytest.raises(BadInput) as unknown:
        await w.s.workflow.bind(in_group(ADMIN, other), "x", "finance@lankao")
    assert "lankao" in str(unknown.value)
    # … nor take the other county's bound group for their own …
    with pytest.raises(NotAllowed):
        await w.s.workflow.bind(in_group(QX_ADMIN, WS_TECH), "x", "tech_industry@qixian")
    with pytest.raises(NotAllowed):
        await w.s.workflow.bind(in_group(QX_ADMIN, CITY), "x", "leaders")
    with pytest.raises(NotAllowed):
        await w.s.workflow.unbind(in_group(QX_ADMIN, WS_COORD))
    # … and someone who is no admin at all cannot bind.
    with pytest.raises(NotAllowed):
        await w.s.workflow.bind(in_group(person("wang"), other), "x", "finance")
    listing = (await w.s.workflow.teams())[0].text
    assert listing.index("尉氏县") < listing.index("尉氏科技工信群") < listing.index("杞县")
    assert listing.index("杞县") < listing.index("杞县科技工信群")


async def test_registration_asks_the_county_unless_the_link_names_it(world: Counties) -> None:
    w = world
    asked = await w.register_in("zhao", "恒达机械有限公司", county_index=1)
    county_question = [r for r in asked if texts.REG_ASK_COUNTY in r.text]
    assert county_question, "no county question without a county's link"
    labels = [b.text for row in county_question[0].buttons or [] for b in row]
    assert labels == ["尉氏县", "杞县"]
    town_question = [r for r in asked if "乡镇" in r.text and r.buttons]
    town_labels = [b.text for row in town_question[0].buttons or [] for b in row]
    assert town_labels[:3] == ["城关镇", "城郊乡", "高阳镇"]  # 杞县's towns only
    # A county's own link: no county question, that county's towns.
    linked = await w.register_in("sun", "豫丰面粉厂", county_index=None, link="county-weishi")
    assert not [r for r in linked if texts.REG_ASK_COUNTY in r.text]
    linked_towns = [b.text for r in linked for row in r.buttons or [] for b in row]
    assert "城关镇" in linked_towns and "城郊乡" not in linked_towns
    # A link naming no county of ours is an ordinary /start: the county is asked.
    unknown = await w.register_in("qian", "永兴纸业", county_index=0, link="county-lankao")
    assert [r for r in unknown if texts.REG_ASK_COUNTY in r.text]
    async with w.s.db.read() as repo:
        firms = {
            name: (await repo.users.find_enterprise(name, None, county))
            for name, county in (
                ("恒达机械有限公司", "qixian"),
                ("豫丰面粉厂", "weishi"),
                ("永兴纸业", "weishi"),
            )
        }
    assert all(firm is not None for firm in firms.values()), firms
    profile = (await w.s.workflow.profile(person("zhao"), False))[0].text
    assert "杞县" in profile


async def test_numbers_cards_and_deadlines_follow_the_firms_county(world: Counties) -> None:
    w = world
    ws, qx = await w.submit("zhang"), await w.submit("li")
    assert (ws.county, qx.county) == ("weishi", "qixian")
    assert ws.number is not None and ws.number.startswith("YM-WS-") and ws.number.endswith("0001")
    assert qx.number is not None and qx.number.startswith("YM-QX-") and qx.number.endswith("0001")
    # Each card reaches its own county's team, never the other's.
    assert any(ws.number in t for t in texts_in(w, WS_TECH))
    assert not any(qx.number in t for t in texts_in(w, WS_TECH))
    assert any(qx.number in t for t in texts_in(w, QX_TECH))
    assert not any(ws.number in t for t in texts_in(w, QX_TECH))
    # 尉氏县 sets claim_limit_hours = 2; 杞县 keeps the deployment's (4 working hours).
    assert ws.claim_due_at is not None and qx.claim_due_at is not None
    assert ws.claim_due_at - ws.submitted_at == timedelta(hours=2)  # type: ignore[operator]
    assert qx.claim_due_at - qx.submitted_at == timedelta(  # type: ignore[operator]
        hours=w.settings.claim_limit_hours
    )
    second = await w.submit("zhang", "厂里的排污许可证快到期了，续办需要什么材料")
    assert second.number is not None and second.number.endswith("0002")


async def test_nobody_acts_on_or_sees_another_countys_ticket(world: Counties) -> None:
    w, wf = world, world.s.workflow
    ws, qx = await w.submit("zhang"), await w.submit("li")
    assert ws.number and qx.number
    # The other county's team member, pressing a button of a ticket not of the county.
    with pytest.raises(NotAllowed) as claim:
        await wf.claim(WANG, qx.id)
    assert texts.OTHER_COUNTY in str(claim.value)
    # The other county's coordinators cannot dispatch, discard or view it.
    with pytest.raises(NotAllowed):
        await wf.dispatch(CHEN, qx.id, "finance")
    with pytest.raises(NotAllowed):
        await wf.ask_discard(CHEN, qx.id, "invalid")
    with pytest.raises(NotFound):
        await wf.view(CHEN, qx.number)
    with pytest.raises(NotFound):
        await wf.view(in_group(person("wang"), WS_TECH), qx.number)
    # Its own county's coordinators can.
    assert qx.number in (await wf.view(ZHOU, qx.number))[0].text
    await wf.claim(LIU, qx.id)
    await w.flush()
    assert (await w.get(qx.id)).state is TicketState.IN_PROGRESS
    # A member of the other county cannot talk to the firm or merge across counties.
    with pytest.raises((NotAllowed, NotFound)):
        await wf.reply_command(person("wang"), qx.number, "您好", "m1")
    await wf.claim(WANG, ws.id)
    with pytest.raises(NotAllowed) as merge:
        await wf.merge(in_group(ADMIN, WS_COORD), ws.number, qx.number)
    assert texts.MERGE_OTHER_COUNTY in str(merge.value)
    # The same problem in the other county is not "related".
    third = await w.submit("zhang")
    assert third.number is not None
    shown = (await wf.related(CHEN, third.number))[0].text
    assert ws.number in shown and qx.number not in shown
    with pytest.raises(NotFound):
        await wf.related(ZHOU, third.number)


async def test_stats_digest_and_ledger_per_county_and_side_by_side(
    world: Counties, tmp_path: Path
) -> None:
    w, s = world, world.s
    await w.submit("zhang")
    await w.submit("zhang", "厂里电缆被挖断了，需要电力公司尽快抢修")
    await w.submit("li")
    w.clock.advance(hours=1)
    ws_stats = plain((await s.reports.stats_for(CHEN, "week"))[0].text)
    qx_stats = plain((await s.reports.stats_for(ZHOU, "week"))[0].text)
    assert "尉氏县" in ws_stats and "新增 2 件" in ws_stats
    assert "杞县" in qx_stats and "新增 1 件" in qx_stats
    assert "各县（区）对比" not in ws_stats
    city = plain((await s.reports.stats_for(in_group(person("mayor"), CITY), "week"))[0].text)
    assert texts.ALL_COUNTIES in city and "新增 3 件" in city
    assert "尉氏县｜2｜" in city and "杞县｜1｜" in city
    # Each county has a 城关镇: over both they are two places, never one.
    assert "尉氏县城关镇" in city and "杞县城关镇" in city, city
    # The ledger of a coordinators' group holds its county's tickets only.
    path, rows = await s.reports.export_for(ZHOU, tmp_path / "qx.xlsx", start=None, end=None)
    assert rows == 1
    sheet = load_workbook(path, read_only=True)["问题台账"]
    cells = " ".join(str(c) for row in sheet.iter_rows(values_only=True) for c in row if c)
    assert "YM-QX-" in cells and "YM-WS-" not in cells and "宏远铸造厂" not in cells
    # The Friday digest: each county's to its own coordinators, the comparison to the city.
    await s.reports.send_weekly_digest()
    await w.flush()
    ws_digest = [t for t in texts_in(w, WS_COORD) if "周报" in t]
    qx_digest = [t for t in texts_in(w, QX_COORD) if "周报" in t]
    city_digest = [t for t in texts_in(w, CITY) if "周报" in t]
    assert len(ws_digest) == len(qx_digest) == len(city_digest) == 1
    assert "（尉氏县）" in ws_digest[0] and "新增 2 件" in ws_digest[0]
    assert "（杞县）" in qx_digest[0] and "新增 1 件" in qx_digest[0]
    assert "各县（区）对比" in city_digest[0] and "杞县｜1｜" in city_digest[0]


async def test_a_countys_overdue_list_goes_to_its_own_coordinators(world: Counties) -> None:
    w = world
    ws, qx = await w.submit("zhang"), await w.submit("li")
    w.clock.advance(days=20)
    await w.s.followup.send_overdue_report()
    await w.flush()
    assert ws.number and qx.number
    ws_lines = " ".join(texts_in(w, WS_COORD))
    qx_lines = " ".join(texts_in(w, QX_COORD))
    assert ws.number in ws_lines and qx.number not in ws_lines
    assert qx.number in qx_lines and ws.number not in qx_lines


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`yimi-bot …` on the world's database (DATABASE_URL comes from the backend fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_PATH": str(folder / "yimi.db"),
            "COUNTIES_FILE": str(folder / "counties.toml"),
            "BOT_TOKEN": "123456:TEST-TOKEN",
        },
    )


async def test_a_one_county_deployment_grows_into_several(tmp_path: Path) -> None:
    # 尉氏县 ran alone: a bound team, a firm, a ticket, all of no county.
    alone = await World.staffed(tmp_path)
    await alone.register(person("zhang"), "宏远铸造厂", "张伟", "13812345678")
    proposal = await alone.say(person("zhang"), OUTAGE)
    _, draft, _ = button(proposal, "确认")
    await alone.s.workflow.confirm(person("zhang"), draft)
    await alone.close()
    # The city lists its counties: the bot refuses to start until the old data has a county.
    (tmp_path / "counties.toml").write_text(COUNTIES, encoding="utf-8")
    refused = cli(tmp_path, "run")
    assert refused.returncode == 2
    assert "adopt-county" in refused.stderr and "1 件工单" in refused.stderr
    adopted = cli(tmp_path, "adopt-county", "weishi")
    assert adopted.returncode == 0, adopted.stderr
    assert "1 家企业、1 件工单、2 个群组" in adopted.stdout
    # Now a county of the city: the old firm, its ticket and groups are 尉氏县's.
    w = Counties(tmp_path)
    w.sender.groups |= {World.TECH, World.COORD}
    await w.open()
    try:
        w.members.groups = {World.TECH: {person("wang").id}, World.COORD: {person("chen").id}}
        old = await w.get(draft)
        assert old.county == "weishi" and old.number is not None
        chen = in_group(person("chen"), World.COORD)
        assert old.number in (await w.s.workflow.view(chen, old.number))[0].text
        with pytest.raises(NotFound):
            await w.s.workflow.view(ZHOU, old.number)
        new = await w.submit("zhang", "厂里的排污许可证快到期了，续办需要什么材料")
        assert new.county == "weishi" and (new.number or "").startswith("YM-WS-")
    finally:
        await w.close()
    # A county dropped from the file while its tickets exist: refused, with the county named.
    (tmp_path / "counties.toml").write_text(
        COUNTIES.split("[[county]]")[0] + "[[county]]" + COUNTIES.split("[[county]]")[2],
        encoding="utf-8",
    )
    dropped = cli(tmp_path, "run")
    assert dropped.returncode == 2 and "weishi（2 件工单）" in dropped.stderr
