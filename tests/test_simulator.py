"""The local chat simulator in a real browser: Debian's chromium, headless, driven by Playwright."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from bot.channels.simulator.server import Simulator
from bot.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "simulator"
TECH_GROUP = "-1001"
TIMEOUT = 15_000  # ms, per step

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (make browser installs it)"
)

if CHROMIUM.exists():
    from playwright.async_api import Browser, Page, async_playwright, expect

    expect.set_options(timeout=TIMEOUT)
else:  # pragma: no cover - skipped above
    Browser = Page = object  # type: ignore[assignment,misc]


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_path=tmp_path / "yimi.db",
        simulator_database_path=tmp_path / "simulator.db",
        towns=["城关镇", "大营镇", "尉氏县产业集聚区"],
    )
    sim = Simulator(settings, port=0)
    await sim.start()
    assert sim.health()["ok"], sim.error
    yield sim
    await sim.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser, simulator: Simulator) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1600, "height": 900}, locale="zh-CN")
    # Nothing may come from the internet: every request goes to the simulator itself.
    outside: list[str] = []
    context.on(
        "request",
        lambda request: (
            None if request.url.startswith(simulator.url[:-1]) else outside.append(request.url)
        ),
    )
    # Nor may the page ask for anything the simulator does not have (the favicon included).
    missing: list[str] = []
    context.on(
        "response",
        lambda response: missing.append(response.url) if response.status == 404 else None,
    )
    the_page = await context.new_page()
    the_page.set_default_timeout(TIMEOUT)
    await the_page.goto(simulator.url)
    yield the_page
    await context.close()
    assert outside == []
    assert missing == []


async def shoot(page: Page, path: Path) -> None:
    """A screenshot with the row of chats scrolled back to the first ones."""
    await page.locator("#chats").evaluate("element => { element.scrollLeft = 0; }")
    await page.screenshot(path=path)


def shot_dir(name: str) -> Path:
    folder = SHOTS / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def act_as(page: Page, name: str) -> None:
    await page.locator("button.persona", has_text=name).click()
    await expect(page.locator("button.persona.active")).to_contain_text(name)


async def say(page: Page, chat: str, text: str) -> None:
    column = page.locator(f'section.chat[data-chat="{chat}"]')
    await column.locator("input.text").fill(text)
    await column.locator("button.send").click()


def last_bot_message(page: Page, chat: str, contains: str):  # type: ignore[no-untyped-def]
    column = page.locator(f'section.chat[data-chat="{chat}"]')
    return column.locator(".msg.bot", has_text=contains).last


async def test_a_firm_registers_reports_and_rates_in_the_browser(page: Page) -> None:
    shots = shot_dir("story")
    await expect(page.locator('section.chat[data-chat="-1001"] .msg')).to_contain_text(
        ["/bind tech_industry", "本群已绑定为：科技工信服务一米团"]
    )

    # 李经理 of 绿源食品 has never used the bot: START, then registration.
    await act_as(page, "李经理")
    firm = "1002"
    private = page.locator('section.chat[data-kind="private"]')
    await expect(private).to_have_attribute("data-chat", firm)
    await private.locator("button.start").click()
    await expect(last_bot_message(page, firm, "企业名称")).to_be_visible()
    await say(page, firm, "绿源食品有限公司")
    await expect(last_bot_message(page, firm, "联系人姓名")).to_be_visible()
    await say(page, firm, "李娜")
    await expect(last_bot_message(page, firm, "手机号")).to_be_visible()
    await private.locator(".rk button.rb", has_text="分享我的手机号").click()
    await expect(private.locator(".msg.mine", has_text="13987654321")).to_be_visible()
    await last_bot_message(page, firm, "乡镇/园区").locator("button.ib", has_text="城关镇").click()
    await last_bot_message(page, firm, "信用代码").locator("button.ib", has_text="跳过").click()
    await expect(last_bot_message(page, firm, "登记完成")).to_contain_text("绿源食品有限公司")
    await shoot(page, shots / "01-registered.png")

    # The report, confirmed: a receipt with the ticket number.
    await say(page, firm, "厂里变压器老是跳闸，生产线停了")
    proposal = last_bot_message(page, firm, "科技工信服务一米团")
    await proposal.locator("button.ib", has_text="确认提交").click()
    receipt = last_bot_message(page, firm, "工单编号")
    await expect(receipt).to_be_visible()
    number = (await receipt.locator("b").first.inner_text()).strip()
    assert number.startswith("YM-")
    await shoot(page, shots / "02-reported.png")

    # The card in the 科技工信 group: masked phone, 签收 and 退回.
    found = last_bot_message(page, TECH_GROUP, number)
    await expect(found).to_contain_text("绿源食品有限公司")
    card_id = await found.get_attribute("data-message-id")
    card = page.locator(f'section.chat[data-chat="{TECH_GROUP}"] .msg[data-message-id="{card_id}"]')
    await expect(card).to_contain_text("139****4321")
    await expect(card).not_to_contain_text("13987654321")
    await expect(card.locator("button.ib")).to_have_text(["签收", "退回"])
    await card.scroll_into_view_if_needed()
    await shoot(page, shots / "03-card-in-group.png")

    # 王工 claims it; the card is edited in place and he gets the details privately.
    await act_as(page, "王工")
    await card.locator("button.ib", has_text="签收").click()
    await expect(card).to_contain_text("王工")
    await expect(card.locator("button.ib")).to_have_text(["办结"])
    # He has not opened the bot privately yet: the group offers the deep link (/start staff).
    await (
        last_bot_message(page, TECH_GROUP, "私聊")
        .locator("button.ib", has_text="私聊机器人")
        .click()
    )
    await expect(last_bot_message(page, "2001", "13987654321")).to_contain_text("李娜")
    await shoot(page, shots / "04-claimed.png")

    # The firm sees who has it.
    await act_as(page, "李经理")
    await expect(last_bot_message(page, firm, "王工")).to_contain_text("已由")
    await shoot(page, shots / "05-firm-told.png")

    # 王工 resolves: 办结, then the result as a reply to the bot's question.
    await act_as(page, "王工")
    await card.locator("button.ib", has_text="办结").click()
    question = last_bot_message(page, TECH_GROUP, "办理结果")
    await question.locator("button.reply-action").click()
    await expect(page.locator(f'section.chat[data-chat="{TECH_GROUP}"] .replying')).to_be_visible()
    await say(page, TECH_GROUP, "已协调供电公司更换变压器，线路恢复正常")
    await expect(card).to_contain_text("待评价")
    await shoot(page, shots / "06-resolved.png")

    # The firm rates it: closed.
    await act_as(page, "李经理")
    result = last_bot_message(page, firm, "更换变压器")
    await result.locator("button.ib", has_text="已解决·满意").click()
    await expect(last_bot_message(page, firm, "已销号")).to_be_visible()
    await expect(card).to_contain_text("已销号")
    await shoot(page, shots / "07-rated.png")


async def test_the_page_says_so_when_the_bot_has_failed(page: Page, simulator: Simulator) -> None:
    shots = shot_dir("failure")
    banner = page.locator("#banner")
    await expect(page.locator("section.chat").first).to_be_visible()
    await expect(banner).to_be_hidden()
    assert simulator.bot_task is not None
    simulator.bot_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await simulator.bot_task
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("机器人进程已停止：机器人任务被取消")
    await expect(page.locator("section.chat").first).to_be_visible()  # the chats stay
    await shoot(page, shots / "bot-stopped.png")


async def test_the_banner_names_a_lost_bot_api(page: Page, simulator: Simulator) -> None:
    banner = page.locator("#banner")
    await expect(page.locator("section.chat").first).to_be_visible()
    assert simulator.api is not None
    await simulator.api.stop()
    await expect(banner).to_contain_text("无法连接 Telegram 接口", timeout=20_000)
    await shoot(page, shot_dir("failure") / "api-lost.png")


async def test_message_times_are_in_the_bots_timezone_on_a_utc_machine(
    browser: Browser, simulator: Simulator
) -> None:
    # The browser's clock says UTC, as on a server; the page must read like the bot's deadlines.
    context = await browser.new_context(locale="zh-CN", timezone_id="UTC")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(simulator.url)
    first = page.locator(f'section.chat[data-chat="{TECH_GROUP}"] .msg').first
    await expect(first).to_contain_text("/bind tech_industry")
    assert simulator.api is not None
    sent = simulator.api.chat_messages(int(TECH_GROUP))[0]["date"]
    local = datetime.fromtimestamp(sent, ZoneInfo(simulator.settings.timezone))
    utc = datetime.fromtimestamp(sent, UTC)
    assert f"{local:%H:%M}" != f"{utc:%H:%M}"
    await expect(first.locator(".meta")).to_contain_text(f"{local:%H:%M}")
    await context.close()


ENV_GROUP = "-1003"  # 环保服务一米团


async def test_a_permit_report_is_claimed_by_the_environment_teams_member(page: Page) -> None:
    # The README's 排污许可证 story, played as a member of 环保 (not only as the coordinator).
    shots = shot_dir("environment")
    await act_as(page, "张厂长")
    firm = "1001"
    await expect(last_bot_message(page, firm, "登记完成")).to_be_visible()
    await say(page, firm, "我们厂的排污许可证快到期了，不知道怎么办理延续")
    proposal = last_bot_message(page, firm, "环保服务一米团")
    await proposal.locator("button.ib", has_text="确认提交").click()
    receipt = last_bot_message(page, firm, "工单编号")
    number = (await receipt.locator("b").first.inner_text()).strip()
    card = last_bot_message(page, ENV_GROUP, number)
    await expect(card.locator("button.ib")).to_have_text(["签收", "退回"])

    await act_as(page, "刘工")
    column = page.locator(f'section.chat[data-chat="{ENV_GROUP}"]')
    await expect(column).not_to_have_class("chat outsider")
    await card.locator("button.ib", has_text="签收").click()
    await expect(card).to_contain_text("刘工")
    await expect(card.locator("button.ib")).to_have_text(["办结"])
    await card.scroll_into_view_if_needed()
    await page.screenshot(path=shots / "claimed-by-liu.png")


async def test_the_picture_control_is_disabled_where_the_persona_is_not_a_member(
    page: Page,
) -> None:
    await act_as(page, "王工")  # in 科技工信 and 金融, not in 环保
    own = page.locator(f'section.chat[data-chat="{TECH_GROUP}"] label.attach')
    other = page.locator(f'section.chat[data-chat="{ENV_GROUP}"] label.attach')
    await expect(own).to_have_attribute("aria-disabled", "false")
    await expect(other).to_have_attribute("aria-disabled", "true")
    await expect(other).to_have_css("cursor", "not-allowed")
    await expect(own).not_to_have_css("cursor", "not-allowed")
    # It looks like the other disabled controls of that column.
    send = page.locator(f'section.chat[data-chat="{ENV_GROUP}"] button.send')
    colour = await send.evaluate("e => getComputedStyle(e).backgroundColor")
    await expect(other).to_have_css("background-color", colour)


async def test_emoji_render_in_colour(page: Page) -> None:
    await act_as(page, "王工")
    await say(page, TECH_GROUP, "收到 😭🙏")
    bubble = page.locator(f'section.chat[data-chat="{TECH_GROUP}"] .msg.mine', has_text="收到")
    body = bubble.last.locator(".body")
    await expect(body).to_be_visible()
    path = shot_dir("emoji") / "bubble.png"
    await body.screenshot(path=path)
    with Image.open(path) as image:
        data = image.convert("RGB").tobytes()
    pixels = [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]
    # Without an emoji font the two emoji are empty boxes: black outlines on the green bubble
    # (#dcf8c6, max - min = 50). A colour emoji font paints yellow faces and skin tones.
    vivid = sum(1 for r, g, b in pixels if max(r, g, b) - min(r, g, b) > 120)
    assert vivid > 50, f"{vivid} vivid pixels: the emoji are not drawn in colour"


async def test_the_favicon_is_served(page: Page, simulator: Simulator) -> None:
    response = await page.request.get(simulator.url + "favicon.ico")
    assert response.status == 200
    assert response.headers["content-type"] == "image/vnd.microsoft.icon"
    assert (await response.body())[:4] == b"\x00\x00\x01\x00"  # an ICO file
