"""The fake Bot API server, driven by the real python-telegram-bot over a real socket."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.channels.simulator.fakeapi import FakeBotAPI
from bot.channels.simulator.fakerules import parse_html

FIRM = 1001  # an enterprise user who started the bot
STRANGER = 1002  # knows nothing of the bot
MEMBER = 2001  # a team member
TEAM = -4001  # the team's group


@pytest.fixture(autouse=True)
def _timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns when RetryAfter.retry_after is read as int; opt in to timedelta.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(group_limit=(3, 1.0), global_limit=(30, 1.0)) as fake:
        fake.add_user(FIRM, "王", "经理", username="wang")
        fake.add_user(STRANGER, "陌生人", started=False)
        fake.add_user(MEMBER, "李", username="li")
        fake.add_group(TEAM, "科技工信", [MEMBER])
        yield fake


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    request = HTTPXRequest(read_timeout=1.0)
    async with Bot(
        api.token, base_url=api.base_url, base_file_url=api.base_file_url, request=request
    ) as tg_bot:
        yield tg_bot


def build_app(api: FakeBotAPI, *, rate_limiter: AIORateLimiter | None = None) -> Application:
    builder = ApplicationBuilder().token(api.token).base_url(api.base_url)
    builder = builder.base_file_url(api.base_file_url)
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    return builder.build()


async def run_polling(app: Application) -> None:
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=5)


async def stop_polling(app: Application) -> None:
    assert app.updater is not None
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


# -- a real Application over long polling ------------------------------------------------------


async def test_echo_bot_over_long_polling_replies_in_the_chat(api: FakeBotAPI) -> None:
    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            f"收到：{update.effective_message.text}", do_quote=True
        )

    app = build_app(api)
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    await run_polling(app)
    try:
        sent = api.send_text(FIRM, FIRM, "停电了")
        reply = await api.wait_for_message(FIRM, contains="收到：停电了")
        await api.wait_for(lambda: api.updates_pending() == 0)
    finally:
        await stop_polling(app)

    assert reply["reply_to_message"]["message_id"] == sent["message_id"]
    shown = [(m["from"]["id"], m["text"]) for m in api.chat_messages(FIRM)]
    assert shown == [(FIRM, "停电了"), (api.bot_id, "收到：停电了")]
    assert reply["message_id"] == sent["message_id"] + 1


async def test_commands_get_entities_and_reach_command_handlers(api: FakeBotAPI) -> None:
    seen: list[tuple[int, list[str]]] = []

    async def on_bind(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        seen.append((update.effective_chat.id, list(context.args or [])))

    app = build_app(api)
    app.add_handler(CommandHandler("bind", on_bind))
    await run_polling(app)
    try:
        api.send_text(TEAM, MEMBER, f"/bind@{api.bot_username} power")
        api.start_private(FIRM, "invite42")
        api.send_text(FIRM, FIRM, "/bind x")
        await api.wait_for(lambda: len(seen) == 2)
    finally:
        await stop_polling(app)
    assert seen == [(TEAM, ["power"]), (FIRM, ["x"])]


async def test_a_button_press_round_trip(api: FakeBotAPI, bot: Bot) -> None:
    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("已签收")
        await query.edit_message_text(f"已签收：{query.from_user.first_name}")

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("签收", callback_data="v1:claim:7")]])
    card = await bot.send_message(TEAM, "新工单 #7", reply_markup=keyboard)
    app = build_app(api)
    app.add_handler(CallbackQueryHandler(on_press))
    await run_polling(app)
    try:
        query_id = api.press_button(TEAM, MEMBER, card.message_id, "v1:claim:7")
        edited = await api.wait_for_message(TEAM, contains="已签收")
    finally:
        await stop_polling(app)

    assert api.callback_answer(query_id) == {"text": "已签收"}
    assert edited["message_id"] == card.message_id
    assert "reply_markup" not in edited  # editMessageText without markup drops the keyboard
    with pytest.raises(ValueError, match="no button"):
        api.press_button(TEAM, MEMBER, card.message_id, "v1:claim:7")


# -- Telegram's refusals as PTB exceptions -----------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("<b>unclosed", 'can\'t find end tag corresponding to start tag "b"'),
        ("1 < 2", 'unsupported start tag "" at byte offset 2'),
        ("a<br>b", 'unsupported start tag "br" at byte offset 1'),
        ("<b>x</i>", 'unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_malformed_html_is_a_bad_request(bot: Bot, markup: str, error: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(FIRM, markup, parse_mode="HTML")
    assert caught.value.message.lower() == f"can't parse entities: {error}".lower()


async def test_valid_html_becomes_text_and_entities(bot: Bot) -> None:
    markup = '<b>停电</b> &amp; <a href="https://gov.example/t/1">工单</a> &lt;1&gt; 🏭<i>x</i>'
    message = await bot.send_message(FIRM, markup, parse_mode="HTML")
    assert message.text == "停电 & 工单 <1> 🏭x"
    assert (
        message.text_html
        == '<b>停电</b> &amp; <a href="https://gov.example/t/1">工单</a> &lt;1&gt; 🏭<i>x</i>'
    )
    assert [e.offset for e in message.entities] == [0, 5, 14]  # 🏭 is two UTF-16 units


def test_parse_html_keeps_unknown_entities_and_bare_ampersands() -> None:
    assert parse_html("A & B &copy; &#20013;") == ("A & B &copy; 中", [])


async def test_text_limits(bot: Bot) -> None:
    assert (await bot.send_message(FIRM, "字" * 4096)).text == "字" * 4096
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(FIRM, "字" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(FIRM, " \n ")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(FIRM, "<b></b>", parse_mode="HTML")


async def test_callback_data_over_64_bytes_is_refused(bot: Bot) -> None:
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("签收", callback_data="签" * 22)]])
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(TEAM, "card", reply_markup=too_long)


async def test_who_the_bot_may_write_to(api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await bot.send_message(STRANGER, "hello")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "hello")
    api.block_bot(FIRM)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(FIRM, "hello")
    api.start_private(FIRM)
    assert (await bot.send_message(FIRM, "欢迎回来")).text == "欢迎回来"
    kinds = [next(k for k in u if k != "update_id") for u in api._updates]
    assert kinds == ["my_chat_member", "my_chat_member", "message"]


async def test_members_and_leaving(api: FakeBotAPI, bot: Bot) -> None:
    assert (await bot.get_chat_member(TEAM, MEMBER)).status == "creator"
    assert (await bot.get_chat_member(TEAM, FIRM)).status == "left"
    assert (await bot.get_chat(TEAM)).title == "科技工信"
    assert await bot.leave_chat(TEAM)
    with pytest.raises(Forbidden, match="not a member of the group chat"):
        await bot.send_message(TEAM, "card")


async def test_edits_and_deletes(api: FakeBotAPI, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("签收", callback_data="v1:claim:1")]])
    card = await bot.send_message(TEAM, "工单 #1", reply_markup=keyboard)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("工单 #1", TEAM, card.message_id, reply_markup=keyboard)
    await bot.edit_message_text("工单 #1 已签收", TEAM, card.message_id, reply_markup=keyboard)
    await bot.edit_message_reply_markup(TEAM, card.message_id, reply_markup=None)
    (shown,) = api.chat_messages(TEAM)
    assert shown["text"] == "工单 #1 已签收"
    assert "reply_markup" not in shown
    assert "edit_date" in shown

    user_message = api.send_text(TEAM, MEMBER, "我来处理")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", TEAM, user_message["message_id"])
    with pytest.raises(BadRequest, match="Message can't be deleted"):
        await bot.delete_message(TEAM, user_message["message_id"])
    assert await bot.delete_message(TEAM, card.message_id)
    assert [m["text"] for m in api.chat_messages(TEAM)] == ["我来处理"]
    edited = api.edit_text(TEAM, user_message["message_id"], "我来处理，明天到")
    assert edited["text"] == "我来处理，明天到"
    assert api._updates[-1]["edited_message"]["text"] == "我来处理，明天到"


async def test_uploaded_photo_downloads_through_get_file(api: FakeBotAPI, bot: Bot) -> None:
    picture = b"\x89PNG\r\n\x1a\n fake picture"
    incoming = api.send_photo(FIRM, FIRM, picture, caption="现场照片")
    file = await bot.get_file(incoming["photo"][-1]["file_id"])
    assert bytes(await file.download_as_bytearray()) == picture

    sent = await bot.send_photo(TEAM, picture, caption="<b>现场</b>", parse_mode="HTML")
    assert sent.caption == "现场"
    again = await bot.get_file(sent.photo[-1].file_id)
    assert bytes(await again.download_as_bytearray()) == picture


async def test_group_migration(api: FakeBotAPI, bot: Bot) -> None:
    new_id = api.migrate_group_to_supergroup(TEAM)
    old_view = api.chat_messages(TEAM)[-1]
    new_view = api.chat_messages(new_id)[-1]
    assert old_view["migrate_to_chat_id"] == new_id
    assert new_view["migrate_from_chat_id"] == TEAM
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(TEAM, "card")
    assert caught.value.new_chat_id == new_id
    assert (await bot.send_message(new_id, "card")).chat.type == "supergroup"


async def test_unknown_method_is_404(api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendNothing")
    (call,) = api.calls_to("sendNothing")
    assert call.response == {
        "ok": False,
        "error_code": 404,
        "description": "Not Found: method not found",
    }


# -- rate limits and faults --------------------------------------------------------------------


async def test_group_limit_answers_429_with_retry_after(api: FakeBotAPI, bot: Bot) -> None:
    for n in range(3):
        await bot.send_message(TEAM, f"card {n}")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(TEAM, "card 3")
    assert caught.value.retry_after == dtm.timedelta(seconds=1)
    for n in range(5):  # private chats only count toward the global limit
        await bot.send_message(FIRM, f"receipt {n}")
    assert len(api.chat_messages(TEAM)) == 3


async def test_global_limit(api: FakeBotAPI, bot: Bot) -> None:
    api.limits = type(api.limits)(global_limit=(5, 1.0), group_limit=(20, 60.0))
    for n in range(5):
        await bot.send_message(FIRM, f"receipt {n}")
    with pytest.raises(RetryAfter):
        await bot.send_message(MEMBER, "hello")
    api.enforce_limits = False
    await bot.send_message(MEMBER, "hello")


async def test_aioratelimiter_retries_through_the_sliding_window(api: FakeBotAPI) -> None:
    # AIORateLimiter is a leaky bucket: after a burst of 3 it lets the 4th through at ~0.33 s,
    # which a sliding window of 3 per second refuses; its retry then delivers it.
    limiter = AIORateLimiter(group_max_rate=3, group_time_period=1.0, max_retries=3)
    app = build_app(api, rate_limiter=limiter)
    async with app:
        await asyncio.gather(*(app.bot.send_message(TEAM, f"card {n}") for n in range(5)))
    assert len(api.chat_messages(TEAM)) == 5
    assert any(call.status == 429 for call in api.calls_to("sendMessage"))


async def test_injected_faults(api: FakeBotAPI, bot: Bot) -> None:
    api.faults.inject("sendMessage", "429", retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(FIRM, "x")
    assert caught.value.retry_after == dtm.timedelta(seconds=7)

    api.faults.inject(None, "500", times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(FIRM, "x")
    api.faults.inject("sendMessage", "403")
    with pytest.raises(Forbidden):
        await bot.send_message(FIRM, "x")
    api.faults.inject("sendMessage", "network")
    with pytest.raises(NetworkError):
        await bot.send_message(FIRM, "x")
    api.faults.inject("sendMessage", "timeout", hang=5.0)
    with pytest.raises(TimedOut):
        await bot.send_message(FIRM, "x", read_timeout=0.2)
    assert api.chat_messages(FIRM) == []  # no fault let a message through

    api.faults.inject("sendMessage", "timeout", hang=5.0, after_effect=True)
    with pytest.raises(TimedOut):
        await bot.send_message(FIRM, "sent, but the answer was lost", read_timeout=0.2)
    assert [m["text"] for m in api.chat_messages(FIRM)] == ["sent, but the answer was lost"]
    assert (await bot.send_message(FIRM, "ok")).text == "ok"
    assert api.faults.pending == []


async def test_latency_and_events(api: FakeBotAPI, bot: Bot) -> None:
    events = []
    unsubscribe = api.subscribe(events.append)
    api.latency = 0.05
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bot.send_chat_action(FIRM, "typing")
    message = await bot.send_message(FIRM, "hi")
    assert loop.time() - started >= 0.1
    await bot.delete_message(FIRM, message.message_id)
    unsubscribe()
    assert [e.kind for e in events] == ["chat_action", "message", "delete"]
    assert events[1].to_dict()["message"]["text"] == "hi"


async def test_long_poll_returns_as_soon_as_an_update_arrives(api: FakeBotAPI, bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=10, read_timeout=12))
    await asyncio.sleep(0.05)
    api.send_text(FIRM, FIRM, "hello")
    (update,) = await poll
    assert loop.time() - started < 1.0
    assert update.message is not None and update.message.text == "hello"
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert api.updates_pending() == 0
