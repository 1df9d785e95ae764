"""The simulator's WeChat/WeCom mode in a real browser: Debian's chromium, headless, Playwright.

A firm that has never written registers in its WeChat chat by typing and tapping menu items,
reports and confirms; the card reaches the 科技工信 members' WeCom app chats; 王工 claims it on
the card, every member's card changes; he resolves with 办结 and his next text; the firm rates.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.channels.simulator.wecomsim import FIRM_LI, FIRM_ZHANG, WeComSimulator
from bot.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "simulator-wecom"
TIMEOUT = 15_000  # ms, per step

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (make browser installs it)"
)

if CHROMIUM.exists():
    from playwright.async_api import Browser, Locator, Page, async_playwright, expect

    expect.set_options(timeout=TIMEOUT)
else:  # pragma: no cover - skipped above
    Browser = Locator = Page = object  # type: ignore[assignment,misc]


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[WeComSimulator]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_path=tmp_path / "yimi.db",
        simulator_database_path=tmp_path / "simulator.db",
        towns=["城关镇", "大营镇", "尉氏县产业集聚区"],
    )
    sim = WeComSimulator(settings, port=0)
    await sim.start()
    assert sim.health()["ok"], sim.error
    yield sim
    await sim.stop()


@pytest.fixture
async def page(simulator: WeComSimulator) -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        context = await browser.new_context(
            viewport={"width": 1600, "height": 1000}, locale="zh-CN"
        )
        outside: list[str] = []
        missing: list[str] = []
        context.on(
            "request",
            lambda r: None if r.url.startswith(simulator.url[:-1]) else outside.append(r.url),
        )
        context.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        the_page = await context.new_page()
        the_page.set_default_timeout(TIMEOUT)
        await the_page.goto(simulator.url)
        yield the_page
        await context.close()
        await browser.close()
    assert outside == []  # nothing from the internet
    assert missing == []


def column(page: Page, chat: str) -> Locator:
    return page.locator(f'section.chat[data-chat="{chat}"]')


def bot_says(page: Page, chat: str, text: str) -> Locator:
    return column(page, chat).locator(".msg.bot", has_text=text).last


async def say(page: Page, chat: str, text: str) -> None:
    await column(page, chat).locator("input.text").fill(text)
    await column(page, chat).locator("button.send").click()


async def shoot(page: Page, name: str, chat: str | None = None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    if chat is not None:
        await column(page, chat).scroll_into_view_if_needed()
    await page.screenshot(path=SHOTS / name)


async def test_a_wechat_firm_reports_and_a_wecom_team_handles_it(page: Page) -> None:
    firm = FIRM_LI
    await expect(column(page, FIRM_ZHANG).locator(".msg.bot").last).to_contain_text("登记完成")
    await expect(column(page, firm)).to_have_attribute("data-kind", "wechat")
    await expect(column(page, "wanggong")).to_have_attribute("data-kind", "wecom")
    await expect(column(page, firm).locator(".chat-head")).to_contain_text("微信")

    # Registration in WeChat: typed answers, then menu items for the town and 跳过.
    await page.locator("button.persona", has_text="李经理").click()
    await expect(column(page, firm)).to_have_class(re.compile("focused"))
    await say(page, firm, "厂里变压器老是跳闸，生产线停了")
    await expect(bot_says(page, firm, "企业名称")).to_be_visible()
    await say(page, firm, "绿源食品有限公司")
    await expect(bot_says(page, firm, "联系人姓名")).to_be_visible()
    await say(page, firm, "李娜")
    await expect(bot_says(page, firm, "手机号")).to_be_visible()
    await say(page, firm, "13987654321")
    await bot_says(page, firm, "乡镇/园区").locator("button.mi", has_text="城关镇").click()
    await bot_says(page, firm, "信用代码").locator("button.mi", has_text="跳过").click()
    proposal = bot_says(page, firm, "科技工信服务一米团")
    await expect(proposal.locator("button.mi")).to_contain_text(["确认提交", "换个团队", "取消"])
    await shoot(page, "01-proposal-in-wechat.png", firm)
    await proposal.locator("button.mi", has_text="确认提交").click()
    receipt = bot_says(page, firm, "已提交")
    await expect(receipt).to_contain_text("YM-")
    found = re.search(r"YM-[0-9-]+", await receipt.inner_text())
    assert found
    number = found.group(0)

    # The card in each 科技工信 member's WeCom app chat: masked phone, 签收 and 退回.
    cards = {}
    for userid in ("wanggong", "zhaotuanzhang"):
        card = column(page, userid).locator(".msg.card", has_text=number).first
        await expect(card.locator("button.cb")).to_have_text(["签收", "退回"])
        await expect(card).to_contain_text("139****4321")
        await expect(card).not_to_contain_text("13987654321")
        cards[userid] = card
    await expect(column(page, "liugong").locator(".msg.card", has_text=number)).to_have_count(0)
    await shoot(page, "02-card-in-wecom.png", "wanggong")

    # 王工 claims it: both members' cards show who has it; he gets the details and 办结.
    await cards["wanggong"].locator("button.cb", has_text="签收").click()
    for card in cards.values():
        await expect(card).to_contain_text("王工")
        await expect(card.locator("button.cb", has_text="签收")).to_have_count(0)
    details = column(page, "wanggong").locator(".msg.card", has_text="13987654321").last
    await expect(details.locator("button.cb", has_text="办结")).to_be_visible()
    await expect(bot_says(page, firm, "王工")).to_be_visible()
    await shoot(page, "03-claimed.png", "zhaotuanzhang")

    # /reply from the app chat reaches the firm; the firm answers in WeChat.
    await say(page, "wanggong", f"/reply {number} 明天上午到厂里看线路")
    await expect(bot_says(page, firm, "明天上午到厂里看线路")).to_be_visible()
    await say(page, firm, "好的，我们在厂里等")
    await expect(bot_says(page, "wanggong", "我们在厂里等")).to_be_visible()

    # 办结, then the result as his next text; the firm rates 满意 from the menu.
    await details.locator("button.cb", has_text="办结").click()
    await expect(bot_says(page, "wanggong", "结果")).to_be_visible()
    await say(page, "wanggong", "已协调供电公司更换变压器，线路恢复正常")
    rating = bot_says(page, firm, "更换变压器")
    await expect(rating.locator("button.mi", has_text="未解决")).to_be_visible()
    await shoot(page, "04-rating-in-wechat.png", firm)
    await rating.locator("button.mi", has_text="满意").first.click()
    await expect(bot_says(page, firm, "已销号")).to_be_visible()
    await shoot(page, "05-closed.png", firm)


async def test_blank_input_is_not_sent_and_a_stale_menu_item_is_answered(page: Page) -> None:
    chat = column(page, FIRM_ZHANG)
    await expect(chat.locator(".msg.bot").last).to_contain_text("登记完成")
    mine = await chat.locator(".msg.mine").count()
    await say(page, FIRM_ZHANG, "   ")  # nothing to send: the page does not post it
    await chat.locator(".msg.bot").last.wait_for()
    assert await chat.locator(".msg.mine").count() == mine
    # The town menu of the registration, long done, tapped again.
    bots = await chat.locator(".msg.bot").count()
    await chat.locator("button.mi", has_text="城关镇").first.click()
    await expect(chat.locator(".msg.mine")).to_have_count(mine + 1)
    await expect(chat.locator(".msg.bot")).to_have_count(bots + 1)
    await expect(chat.locator(".msg.bot").last).to_contain_text("已失效")


async def test_the_banner_names_a_stopped_bot(page: Page, simulator: WeComSimulator) -> None:
    await expect(column(page, FIRM_ZHANG)).to_be_visible()
    assert simulator.runtime is not None
    await simulator.runtime.channel.stop()
    banner = page.locator("#banner")
    await expect(banner).to_contain_text("企业微信回调处理已停止")
    await expect(column(page, FIRM_ZHANG)).to_be_visible()
    await shoot(page, "bot-stopped.png")
