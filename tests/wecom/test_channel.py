"""The WeCom channel end to end: the fake WeCom server posts encrypted callbacks to the bot's real
callback route, the real channel handles them through the real workflow, classifier and SQLite
file, and the real delivery loop answers through the API client into the fake.

A firm on WeChat (微信客服) registers, reports and confirms with menus; the team is a WeCom
department whose members each get the card; a click claims it and every member's card changes;
the claimer talks to the firm from the app chat and resolves; the firm rates. Around it: retried
callbacks handled once, a restart between storing and handling, the kf cursor kept across a
restart, the 48-hour window, and a team's staff change read from WeCom.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels.simulator.fakewecom import FakeWeCom
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.app import WeComRuntime, start_wecom
from bot.classify.classifier import get_classifier
from bot.config import Settings
from bot.services import Services, close_services, open_services
from bot.storage.wecom import WeComRepo
from tests.neutral.harness import Clock

# The WeCom channel's tables and flows on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

FIRM = "wmFactory01"
TECH_DEPT, COORD_DEPT = 2, 5
REPORT = "我们厂最近老是跳闸停电，生产线停了好几次，请帮忙协调供电公司"


class Deployment:
    """One county on WeCom: services on a SQLite file, the channel on the fake server."""

    def __init__(self, fake: FakeWeCom, folder: Path) -> None:
        self.fake = fake
        self.clock = Clock()
        self.settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_path=folder / "yimi.db",
            outbox_poll_seconds=0.05,
            wecom_corp_id=fake.corp_id,
            wecom_agent_id=fake.agent_id,
            wecom_secret=fake.secret,
            wecom_token=fake.token,
            wecom_aes_key=fake.aes_key,
            wecom_kf_id=fake.open_kfid,
            wecom_admin_ids="boss",
            wecom_api_base=fake.base_url,
        )
        self.services: Services | None = None
        self.runtime: WeComRuntime | None = None

    @property
    def s(self) -> Services:
        assert self.services is not None
        return self.services

    @property
    def rt(self) -> WeComRuntime:
        assert self.runtime is not None
        return self.runtime

    async def open(self) -> None:
        self.services = await open_services(self.settings, self.clock, get_classifier(), {}, {})
        wecom = self.settings.wecom()
        assert wecom is not None
        client = WeComClient(
            wecom.corp_id,
            wecom.secret,
            agent_id=wecom.agent_id,
            base_url=wecom.api_base,
            timeout=2.0,
        )
        self.runtime = await start_wecom(
            self.services, wecom, host="127.0.0.1", port=0, client=client, start_worker=False
        )
        self.fake.callback_url = self.runtime.url

    async def close(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
            self.runtime = None
        if self.services is not None:
            await close_services(self.services)
            self.services = None

    async def settle(self) -> None:
        """Handle what was stored and deliver what that queued, until nothing is left."""
        for _ in range(50):
            handled = await self.rt.channel.drain()
            sent = False
            while await self.s.delivery.run_once():
                sent = True
            if not handled and not sent:
                return
        raise AssertionError("the channel did not settle")

    # -- what people see ------------------------------------------------------------------

    def firm_got(self) -> list[dict[str, Any]]:
        return self.fake.customers[FIRM].received

    def firm_texts(self) -> list[str]:
        out = []
        for m in self.firm_got():
            if m["msgtype"] == "text":
                out.append(m["text"]["content"])
            elif m["msgtype"] == "msgmenu":
                out.append(m["msgmenu"].get("head_content", ""))
        return out

    def menu_id(self, label: str) -> str:
        """The id of the latest menu item whose text contains `label`."""
        for m in reversed(self.firm_got()):
            if m["msgtype"] == "msgmenu":
                for item in m["msgmenu"]["list"]:
                    if label in item["click"]["content"]:
                        return str(item["click"]["id"])
        raise AssertionError(f"no menu item {label!r} in {self.firm_texts()}")

    def cards(self, userid: str) -> list[Any]:
        return [m for m in self.fake.chats[userid] if m.msgtype == "template_card"]

    def texts(self, userid: str) -> list[str]:
        return [m.text for m in self.fake.chats[userid]]

    def button(self, userid: str, label: str) -> tuple[str, str]:
        """(task_id, key) of the latest card of `userid` with a button containing `label`."""
        for m in reversed(self.cards(userid)):
            view = self.fake.card_of(userid, str(m.content["task_id"]))
            for b in view.content.get("button_list", []):
                if label in b["text"]:
                    return str(view.content["task_id"]), str(b["key"])
        raise AssertionError(f"{userid} has no card button {label!r}")

    async def firm(self, text: str = "", **kw: Any) -> None:
        answer = await self.fake.customer_writes(FIRM, text, **kw)
        assert answer.status == 200
        await self.settle()

    async def member(self, userid: str, text: str) -> None:
        assert (await self.fake.member_writes(userid, text)).status == 200
        await self.settle()

    async def click(self, userid: str, label: str) -> None:
        task_id, key = self.button(userid, label)
        assert (await self.fake.click(userid, task_id, key)).status == 200
        await self.settle()

    async def register_and_report(self) -> str:
        """The firm reports, registers on the way, confirms; the ticket number."""
        await self.firm(REPORT)
        await self.firm("卫辉市精工机械有限公司")
        await self.firm("王经理")
        await self.firm("13812345678")
        await self.firm(menu_id=self.menu_id(self.s.settings.towns[0]))
        await self.firm(menu_id=self.menu_id("跳过"))
        assert any("确认" in t or "科技工信" in t for t in self.firm_texts()[-2:])
        await self.firm(menu_id=self.menu_id("确认"))
        receipt = [t for t in self.firm_texts() if "已提交" in t]
        assert receipt, self.firm_texts()
        found = re.search(r"YM-[0-9-]+", receipt[-1])
        assert found
        return found.group(0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as server:
        server.add_department(TECH_DEPT, "科技工信服务一米团")
        server.add_department(COORD_DEPT, "企业服务专班")
        server.add_member("zhangsan", "张三", [TECH_DEPT])
        server.add_member("lisi", "李四", [TECH_DEPT])
        server.add_member("boss", "赵主任", [COORD_DEPT])
        server.add_customer(FIRM, "王经理")
        yield server


@pytest.fixture
async def county(fake: FakeWeCom, tmp_path: Path) -> AsyncIterator[Deployment]:
    world = Deployment(fake, tmp_path)
    await world.open()
    await world.member("boss", "/bind tech_industry dept:2")
    await world.member("boss", "/bind coordinator dept:5")
    yield world
    await world.close()


async def test_teams_answers_an_admin_before_any_binding(fake: FakeWeCom, tmp_path: Path) -> None:
    world = Deployment(fake, tmp_path)
    await world.open()
    try:
        await world.member("boss", "/teams")
        assert "群组绑定情况" in world.texts("boss")[-1]
        assert "（未绑定）" in world.texts("boss")[-1]
        await world.member("zhangsan", "/bind tech_industry dept:2")
        assert "只有管理员" in world.texts("zhangsan")[-1]
    finally:
        await world.close()


async def test_the_whole_loop_on_wecom_and_wechat(county: Deployment) -> None:
    fake = county.fake
    assert "已绑定" in county.texts("boss")[-2]
    number = await county.register_and_report()

    # Every member of the department got the card with 签收 and 退回, the contact masked.
    for userid in ("zhangsan", "lisi"):
        [card] = county.cards(userid)
        labels = [b["text"] for b in card.content["button_list"]]
        assert any("签收" in t for t in labels) and any("退回" in t for t in labels)
        shown = str(card.content)
        assert number in shown and "13812345678" not in shown and "138****5678" in shown
    assert not county.cards("boss")  # the coordinators are not the routed team

    await county.click("zhangsan", "签收")
    # Both members' cards now say who claimed it, and offer no 签收 any more.
    task_id = str(county.cards("lisi")[0].content["task_id"])
    for userid in ("zhangsan", "lisi"):
        view = fake.card_of(userid, task_id).content
        assert "张三" in str(view)
        assert not any("签收" in b["text"] for b in view.get("button_list", []))
        # The card itself changed (not only a grey label where its buttons were).
        assert "办理中" in view["main_title"]["title"] and "张三" in view["sub_title_text"]
    # The claimer has the full contact in the app chat; the firm is told who took it.
    assert any("13812345678" in t for t in county.texts("zhangsan"))
    assert any("张三" in t and "签收" in t for t in county.firm_texts())

    # A second member's late 签收 press on a stale view is refused, not a second claim.
    await county.member("zhangsan", f"/reply {number} 明天上午去厂里看线路")
    assert any("明天上午去厂里看线路" in t for t in county.firm_texts())
    # The firm answers in WeChat (no reply-to there): it reaches the team, not a new report.
    await county.firm("好的，我们在厂里等")
    assert any("好的，我们在厂里等" in t for t in county.texts("zhangsan"))
    async with county.s.db.read() as repo:
        assert await repo.tickets.get_draft("wxkf:" + FIRM) is None

    # 办结 from the claimer's card; the next app-chat text is the result.
    await county.click("zhangsan", "办结")
    await county.member("zhangsan", "已协调供电公司更换线路，恢复正常")
    assert any("已协调供电公司更换线路" in t for t in county.firm_texts())
    await county.firm(menu_id=county.menu_id("满意"))
    async with county.s.db.read() as repo:
        ticket = await repo.tickets.get_ticket_by_number(number)
        events = [e.action for e in await repo.tickets.events(ticket.id)] if ticket else []
    assert ticket is not None and ticket.state.value == "closed", ticket
    assert ticket.claimed_by == "wecom:zhangsan" and ticket.claimed_by_name == "张三"
    assert "relay_to_firm" in events and "relay_to_team" in events
    # Every answer went through the API; the HTTP answers carried nothing.
    assert all(a.body == b"" for a in fake.callback_answers)


async def test_return_reason_is_the_members_next_message(county: Deployment) -> None:
    number = await county.register_and_report()
    await county.click("lisi", "退回")
    assert "原因" in county.texts("lisi")[-1]
    await county.member("lisi", "这是土地问题，不归我们")
    async with county.s.db.read() as repo:
        ticket = await repo.tickets.get_ticket_by_number(number)
    assert ticket is not None and ticket.state.value == "pending_dispatch"
    # The coordinators (department 5) get the returned ticket with its reason.
    assert any("这是土地问题" in t for t in county.texts("boss"))
    assert county.cards("boss")


async def test_a_retried_callback_is_handled_once(county: Deployment) -> None:
    fake = county.fake
    xml = (
        f"<xml><ToUserName><![CDATA[{fake.corp_id}]]></ToUserName>"
        f"<FromUserName><![CDATA[boss]]></FromUserName><CreateTime>{int(fake.now())}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[/teams]]></Content>"
        f"<MsgId>7000000000001</MsgId><AgentID>{fake.agent_id}</AgentID></xml>"
    )
    before = len(county.texts("boss"))
    for _ in range(3):  # WeCom retries when no 200 came within 5 s
        assert (await fake.post_callback(xml.encode())).status == 200
    await county.settle()
    assert len(county.texts("boss")) == before + 1


async def test_bad_signature_is_refused_and_never_stored(county: Deployment) -> None:
    import aiohttp

    async with county.s.db.read() as repo:
        stored = await WeComRepo(repo).count()
    async with aiohttp.ClientSession() as session:
        params = {"msg_signature": "0" * 40, "timestamp": str(int(county.fake.now())), "nonce": "1"}
        async with session.post(
            county.rt.url, params=params, data=b"<xml><Encrypt>AAAA</Encrypt></xml>"
        ) as resp:
            assert resp.status == 403
    async with county.s.db.read() as repo:
        assert await WeComRepo(repo).count() == stored


async def test_a_restart_between_storing_and_handling_loses_nothing(
    county: Deployment,
) -> None:
    fake = county.fake
    # Stored (answered 200) but not handled: the process stops here.
    assert (await fake.customer_writes(FIRM, REPORT)).status == 200
    await county.close()
    await county.open()
    await county.settle()
    # The report was pulled after the restart and its registration began.
    assert any("企业名称" in t for t in county.firm_texts())
    # The kf cursor survived: a new announcement does not bring the old message again.
    async with county.s.db.read() as repo:
        drafts_before = await repo.tickets.get_draft("wxkf:" + FIRM)
    assert (await fake.announce_kf()).status == 200
    await county.settle()
    async with county.s.db.read() as repo:
        draft = await repo.tickets.get_draft("wxkf:" + FIRM)
    assert drafts_before is not None and draft is not None
    assert draft.text.count("跳闸") == 1


async def test_out_of_the_48_hour_window_waits_for_the_firm(county: Deployment) -> None:
    fake = county.fake
    number = await county.register_and_report()
    await county.click("zhangsan", "签收")
    customer = fake.customers[FIRM]
    assert customer.last_message_at is not None
    customer.last_message_at -= 49 * 3600  # the firm has been silent for two days
    await county.member("zhangsan", f"/reply {number} 请问设备型号是什么？")
    assert not any("设备型号" in t for t in county.firm_texts())
    # The claimer is told the firm is out of reach; the ticket shows it.
    assert any("收不到消息" in t for t in county.texts("zhangsan"))
    async with county.s.db.read() as repo:
        ticket = await repo.tickets.get_ticket_by_number(number)
    assert ticket is not None and ticket.undelivered
    # The firm writes again: what waited goes out.
    await county.firm("你好，在吗")
    assert any("设备型号" in t for t in county.firm_texts())


async def test_a_kf_message_whose_answer_was_lost_reaches_the_firm_once(
    county: Deployment,
) -> None:
    """WeCom delivers a kf message but its answer never arrives: the outbox sends the row
    again under the same msgid, WeCom refuses the repeat, and the row counts as sent."""
    fake = county.fake
    number = await county.register_and_report()
    await county.click("zhangsan", "签收")
    before = len(county.firm_got())
    fake.faults.inject("/cgi-bin/kf/send_msg", "lost_answer")
    await county.member("zhangsan", f"/reply {number} 请问设备型号是什么？")
    county.clock.advance(seconds=60)  # past the retry's backoff
    await county.settle()
    asked = [t for t in county.firm_texts() if "设备型号" in t]
    assert len(asked) == 1, county.firm_texts()
    assert len(fake.kf_repeats) == 1  # the repeat was sent, and refused by its msgid
    assert fake.kf_repeats[0] == county.firm_got()[before]["msgid"]
    async with county.s.db.read() as repo:
        counts = await repo.outbox.outbox_counts()
    assert set(counts) == {"sent"}, counts


async def test_staff_changes_in_wecom_apply_without_the_bot(county: Deployment) -> None:
    fake = county.fake
    fake.add_member("wangwu", "王五", [TECH_DEPT])  # joined the team in WeCom today
    county.rt.sender._members.clear()  # the minute's cache has passed
    await county.register_and_report()
    assert county.cards("wangwu")
    await county.click("wangwu", "签收")
    async with county.s.db.read() as repo:
        [ticket] = await repo.tickets.open_tickets()
    assert ticket.claimed_by == "wecom:wangwu"


async def test_the_callback_server_serves_healthz_and_metrics(county: Deployment) -> None:
    base = county.rt.url.removesuffix("/wecom/callback")
    async with httpx.AsyncClient(base_url=base) as client:
        stopped = await client.get("/healthz")
        assert stopped.status_code == 503 and stopped.json()["delivery"] == "stopped"
        county.s.delivery.start()
        running = await client.get("/healthz")
        assert running.status_code == 200, running.text
        metrics = await client.get("/metrics")
    assert 'yimi_outbox_messages{status="pending"}' in metrics.text
    assert "yimi_delivery_failures_total" in metrics.text
    # The two /bind messages of the fixture, handled from the channel's inbox.
    assert 'yimi_update_handling_seconds_count{channel="wecom"} 2.0' in metrics.text


async def test_doctor_checks_the_credentials_and_every_bound_department(
    county: Deployment, fake: FakeWeCom
) -> None:
    from bot.channels.wecom.doctor import wecom_checks

    found = {c.name: c for c in await wecom_checks(county.settings)}
    assert found["企业微信凭据 credentials"].ok
    assert found["企业微信 tech_industry"].ok and "2 人" in found["企业微信 tech_industry"].line
    assert found["企业微信 coordinator"].ok
    fake.add_department(9, "金融服务一米团")  # nobody in it yet
    await county.member("boss", "/bind finance dept:9")
    empty = {c.name: c for c in await wecom_checks(county.settings)}["企业微信 finance"]
    assert not empty.ok and "没有成员" in empty.line


async def test_related_in_the_app_chat_for_coordinators_and_the_team(county: Deployment) -> None:
    number = await county.register_and_report()
    await county.member("boss", f"/related {number}")
    answer = county.texts("boss")[-1]
    assert number in answer and "可能相关" in answer and "没有发现" in answer
    await county.member("zhangsan", f"/related {number}")
    assert number in county.texts("zhangsan")[-1]
    await county.member("boss", "/related")
    assert "用法：/related" in county.texts("boss")[-1]


async def test_a_second_report_of_the_same_problem_shows_related_on_the_card(
    county: Deployment,
) -> None:
    first = await county.register_and_report()
    await county.firm("又停电了，生产线停着，供电公司还没来人")
    await county.firm(menu_id=county.menu_id("确认"))
    receipts = [t for t in county.firm_texts() if "已提交" in t]
    second = re.findall(r"YM-[0-9-]+", receipts[-1])[0]
    assert second != first
    card = str(county.cards("zhangsan")[-1].content)
    assert second in card and f"可能相关：{first}（同一企业" in card
    assert "13812345678" not in card
