"""The local chat simulator: the fake Bot API, the real bot against it, and a page to play users.

``run_simulator(settings)`` starts :class:`~bot.channels.simulator.fakeapi.FakeBotAPI` on a free loopback port,
the real bot (``build_application`` with polling, as on Telegram: handlers, outbox, database) and
an aiohttp web app serving ``bot/channels/simulator/static/``. The page plays the personas below through the
fake's user side and shows every chat live over a WebSocket fed by the fake's event hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import SecretStr
from telegram.error import TelegramError
from telegram.ext import Application

from bot.channels.simulator.fakeapi import FakeBotAPI
from bot.channels.simulator.fakerules import JSON
from bot.channels.simulator.fakeworld import FakeEvent
from bot.channels.telegram.app import build_application
from bot.config import Settings
from bot.core.ports import SystemClock
from bot.reporting.monitor import Monitor
from bot.reporting.web import add_monitor_routes
from bot.services import Services
from bot.storage.db import Database

__all__ = ["GROUPS", "PERSONAS", "Group", "Persona", "Simulator", "run_simulator"]

logger = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
SIM_TOKEN = "700000001:SIMULATOR-LOCAL-TOKEN"
DEFAULT_PORT = 8080
# A spot in 尉氏县 for "share location".
LOCATION = (34.4117, 114.1930)
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


@dataclass(frozen=True)
class Persona:
    """Someone the page can act as."""

    id: int
    name: str
    role: str
    phone: str
    started: bool = True


@dataclass(frozen=True)
class Group:
    """A group chat and the team it is bound to on first start."""

    id: int
    title: str
    team: str
    members: tuple[int, ...]


FIRM_ZHANG, FIRM_LI, COORD_CHEN = 1001, 1002, 3001
MEMBER_WANG, LEAD_ZHAO, MEMBER_LIU, MEMBER_SUN = 2001, 2002, 2003, 2004
PERSONAS = (
    Persona(FIRM_ZHANG, "张厂长", "恒达机械 · 已登记企业", "13812345678"),
    Persona(FIRM_LI, "李经理", "绿源食品 · 未登记企业", "13987654321", started=False),
    Persona(MEMBER_WANG, "王工", "科技工信、金融 团员", "13700001111"),
    Persona(LEAD_ZHAO, "赵团长", "科技工信 团长", "13700002222"),
    Persona(MEMBER_LIU, "刘工", "环保、人社、土地 团员", "13700004444"),
    Persona(MEMBER_SUN, "孙工", "农业、乡村振兴、新闻宣传 团员", "13700005555"),
    Persona(COORD_CHEN, "陈调度", "专班调度员 · 管理员", "13700003333"),
)
# Every team group has a member persona besides the coordinator, so that every story in the
# README (排污许可证 → 环保 as well as 变压器 → 科技工信) can be played by a team member.
GROUPS = (
    Group(-1001, "科技工信服务一米团", "tech_industry", (MEMBER_WANG, LEAD_ZHAO, COORD_CHEN)),
    Group(-1002, "金融服务一米团", "finance", (MEMBER_WANG, COORD_CHEN)),
    Group(-1009, "一米团专班（调度）", "coordinator", (COORD_CHEN, LEAD_ZHAO)),
    Group(-1003, "环保服务一米团", "environment", (MEMBER_LIU, COORD_CHEN)),
    Group(-1004, "人社服务一米团", "hr_social", (MEMBER_LIU, COORD_CHEN)),
    Group(-1005, "土地服务一米团", "land", (MEMBER_LIU, COORD_CHEN)),
    Group(-1006, "农业发展一米团", "agriculture", (MEMBER_SUN, COORD_CHEN)),
    Group(-1007, "乡村振兴一米团", "rural", (MEMBER_SUN, COORD_CHEN)),
    Group(-1008, "新闻宣传一米团", "publicity", (MEMBER_SUN, COORD_CHEN)),
)


class Simulator:
    """The fake Telegram, the real bot polling it, and the web page; ``reset()`` starts afresh."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        self.settings = settings
        self.host = host
        self.requested_port = port
        self.api: FakeBotAPI | None = None
        self.app: Application | None = None  # type: ignore[type-arg]
        self.bot_task: asyncio.Task[None] | None = None
        self.phase = "starting"
        self.error: str | None = None
        self._stop_bot = asyncio.Event()
        self._poll_error: tuple[float, str] | None = None
        self._lock = asyncio.Lock()
        self._clients: set[asyncio.Queue[JSON]] = set()
        self._unsubscribe: Any = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The page's address."""
        if self._port is None:
            raise RuntimeError("Simulator is not started")
        return f"http://{self.host}:{self._port}/"

    async def start(self) -> None:
        """Serve the page, then start the fake and the bot (first start: bind and register)."""
        await self._serve()
        async with self._lock:
            await self._start_world()

    async def stop(self) -> None:
        """Stop the bot, the fake and the page."""
        async with self._lock:
            await self._stop_world()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def reset(self) -> None:
        """Stop everything, delete the database and start again with a fresh one."""
        async with self._lock:
            self.phase, self.error = "resetting", None
            self._broadcast({"kind": "reset", "phase": self.phase})
            await self._stop_world()
            for suffix in ("", "-wal", "-shm"):
                path = Path(f"{self.database_path}{suffix}")
                path.unlink(missing_ok=True)
            await self._start_world()
            self._broadcast({"kind": "reset", "phase": self.phase})

    @property
    def database_path(self) -> Path:
        """The simulator's own database (SIMULATOR_DATABASE_PATH), never the bot's."""
        return Path(self.settings.simulator_database_path)

    def _bot_settings(self, api: FakeBotAPI) -> Settings:
        admins = sorted({*self.settings.admin_ids, COORD_CHEN})
        return self.settings.model_copy(
            update={
                "database_path": self.database_path,
                "bot_token": SecretStr(api.token),
                "telegram_base_url": api.base_url,
                "telegram_base_file_url": api.base_file_url,
                "admin_ids": admins,
            }
        )

    async def _start_world(self) -> None:
        self.phase, self.error, self._poll_error = "starting", None, None
        first_start = not self.database_path.exists()
        refusal = await _claim_database(self.database_path, first_start)
        if refusal is not None:
            logger.error("simulator not started: %s", refusal)
            self.phase, self.error = "failed", refusal
            return
        api = FakeBotAPI(token=SIM_TOKEN, bot_username="yimi_sim_bot", bot_name="一米团机器人")
        for persona in PERSONAS:
            api.add_user(persona.id, persona.name, started=persona.started)
        for group in GROUPS:
            api.add_group(group.id, group.title, list(group.members), admins=[COORD_CHEN])
        await api.start()
        self.api = api
        self._unsubscribe = api.subscribe(self._on_event)
        app = build_application(self._bot_settings(api))
        self.app = app
        self._stop_bot = asyncio.Event()
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.bot_task = asyncio.create_task(self._run_bot(app, ready), name="simulated-bot")
        try:
            await asyncio.wait_for(asyncio.shield(ready), 30)
            if first_start:
                await self._first_start(api)
        except Exception as exc:
            logger.exception("simulator start failed")
            self.phase, self.error = "failed", _describe(exc)
            return
        self.phase = "running"
        logger.info("simulator: bot running against the fake Bot API on port %s", api.port)

    async def _stop_world(self) -> None:
        self._stop_bot.set()
        task, self.bot_task = self.bot_task, None
        if task is not None:
            if not task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 15)
            elif not task.cancelled():
                task.exception()  # retrieved: reported on the page already
        self.app = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.api is not None:
            await self.api.stop()
            self.api = None

    async def _run_bot(self, app: Application, ready: asyncio.Future[None]) -> None:  # type: ignore[type-arg]
        """What ``run_polling`` does, without taking over the event loop."""
        await app.initialize()
        try:
            if app.post_init is not None:
                await app.post_init(app)
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=0.0,
                timeout=10,
                allowed_updates=ALLOWED_UPDATES,
                error_callback=self._on_poll_error,
            )
            await app.start()
            ready.set_result(None)
            await self._stop_bot.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError("已取消"))
            raise
        finally:
            await self._shutdown_bot(app)

    async def _shutdown_bot(self, app: Application) -> None:  # type: ignore[type-arg]
        with contextlib.suppress(Exception):
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
        with contextlib.suppress(Exception):
            if app.post_shutdown is not None:
                await app.post_shutdown(app)
        with contextlib.suppress(Exception):
            await app.shutdown()

    def _on_poll_error(self, exc: TelegramError) -> None:
        self._poll_error = (time.monotonic(), _describe(exc))
        logger.warning("simulator: polling failed: %s", exc)

    async def _first_start(self, api: FakeBotAPI) -> None:
        """Bind every group (the admin sends /bind) and register 张厂长, through the fake."""
        for group in GROUPS:
            sent = api.send_text(group.id, COORD_CHEN, f"/bind {group.team}")
            await api.wait_for_message(group.id, after=sent["message_id"], timeout=10)
        await self._register(api, FIRM_ZHANG, "恒达机械有限公司", "张建国")

    async def _register(self, api: FakeBotAPI, user: int, enterprise: str, contact: str) -> None:
        persona = next(p for p in PERSONAS if p.id == user)
        last = api.start_private(user)["message_id"]

        async def answer(text: str | None, expect: str) -> JSON:
            nonlocal last
            if text is not None:
                last = api.send_text(user, user, text)["message_id"]
            message = await api.wait_for_message(user, expect, after=last, timeout=10)
            last = message["message_id"]
            return message

        await answer(None, "企业名称")
        await answer(enterprise, "联系人")
        await answer(contact, "手机号")
        last = api.send_contact(user, user, persona.phone, persona.name, user)["message_id"]
        towns = await answer(None, "乡镇")
        api.press_button(user, user, towns["message_id"], _button_data(towns, "城关镇"))
        code = await answer(None, "信用代码")
        api.press_button(user, user, code["message_id"], _button_data(code, "跳过"))
        await answer(None, "登记完成")

    # -- health and events ----------------------------------------------------------------

    def health(self) -> JSON:
        """Whether the bot is alive, and if not, why (in Chinese, for the page's banner)."""
        if self.phase != "running":
            return {"ok": self.phase != "failed", "phase": self.phase, "error": self.error}
        problem = self._problem()
        if problem is not None:
            self.error = problem
        return {
            "ok": problem is None,
            "phase": "failed" if problem else "running",
            "error": problem,
        }

    def _problem(self) -> str | None:
        task, app, api = self.bot_task, self.app, self.api
        if task is None or app is None or api is None:
            return "机器人未启动"
        if task.done():
            if task.cancelled():
                return "机器人任务被取消"
            exc = task.exception()
            return f"机器人任务异常退出：{_describe(exc)}" if exc else "机器人任务已退出"
        if app.updater is None or not app.updater.running:
            return "机器人已停止接收消息（轮询已停止）"
        if self._poll_error is not None:
            failed_at, reason = self._poll_error
            polls = (c for c in reversed(api.calls) if c.method.lower() == "getupdates")
            recovered = any(c.time > failed_at and c.status in (None, 200) for c in polls)
            if not recovered:
                return f"无法连接 Telegram 接口：{reason}"
        return None

    def _on_event(self, event: FakeEvent) -> None:
        if event.kind != "update":
            self._broadcast(event.to_dict())

    def _broadcast(self, payload: JSON) -> None:
        for queue in list(self._clients):
            queue.put_nowait(payload)

    def state(self) -> JSON:
        """Everything the page shows: personas, chats with their messages and keyboards."""
        chats: list[JSON] = []
        if self.api is not None:
            for chat in self.api.chats.values():
                chats.append(
                    {
                        "id": chat.id,
                        "type": chat.type,
                        "title": chat.title,
                        "members": sorted(chat.members),
                        "messages": self.api.chat_messages(chat.id),
                        "keyboard": chat.keyboard,
                    }
                )
        return {
            "bot": {"id": SIM_TOKEN.split(":")[0], "username": "yimi_sim_bot"},
            # The page shows times in the bot's timezone (deadlines, ticket numbers), not the
            # browser's: on a machine set to UTC they would disagree by eight hours.
            "timezone": self.settings.timezone,
            "personas": [p.__dict__ for p in PERSONAS],
            "groups": [{"id": g.id, "title": g.title, "team": g.team} for g in GROUPS],
            "chats": chats,
            "health": self.health(),
        }

    # -- the web app ----------------------------------------------------------------------

    async def _serve(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.ico", self._favicon)
        app.router.add_get("/api/state", self._get_state)
        app.router.add_get("/api/health", self._get_health)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/file/{file_id}", self._file)
        app.router.add_post("/api/send", self._send)
        app.router.add_post("/api/press", self._press)
        app.router.add_post("/api/contact", self._contact)
        app.router.add_post("/api/location", self._location)
        app.router.add_post("/api/photo", self._photo)
        app.router.add_post("/api/reset", self._reset)
        add_monitor_routes(app, self._monitor, lambda: SystemClock(self.settings.timezone).now())
        app.router.add_static("/static/", STATIC)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.requested_port).start()
        self._port = int(self._runner.addresses[0][1])

    def _monitor(self) -> Monitor | None:
        """The running bot's monitor (None while it starts or after it stopped)."""
        services = self.app.bot_data.get("services") if self.app is not None else None
        return services.monitor if isinstance(services, Services) else None

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _favicon(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            STATIC / "favicon.ico", headers={"Content-Type": "image/vnd.microsoft.icon"}
        )

    async def _get_state(self, request: web.Request) -> web.StreamResponse:
        return _json(self.state())

    async def _get_health(self, request: web.Request) -> web.StreamResponse:
        return _json(self.health())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        queue: asyncio.Queue[JSON] = asyncio.Queue()
        self._clients.add(queue)
        reader = asyncio.create_task(self._drain(ws))
        try:
            while not ws.closed:
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await ws.send_str(json.dumps(getter.result(), ensure_ascii=False))
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            self._clients.discard(queue)
            reader.cancel()
            await ws.close()
        return ws

    @staticmethod
    async def _drain(ws: web.WebSocketResponse) -> None:
        async for message in ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break

    async def _file(self, request: web.Request) -> web.StreamResponse:
        stored = self.api.files.get(request.match_info["file_id"]) if self.api else None
        if stored is None:
            return web.Response(status=404, text="文件不存在")
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    def _world(self) -> FakeBotAPI:
        if self.api is None or self.phase == "resetting":
            raise web.HTTPServiceUnavailable(text="模拟器正在重启，请稍候")
        return self.api

    async def _send(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        text = str(body.get("text") or "").strip()
        if not text:
            raise web.HTTPBadRequest(text="消息不能为空")
        chat, user = int(body["chat_id"]), int(body["user_id"])
        reply_to = int(body["reply_to"]) if body.get("reply_to") else None
        return _act(lambda: self._world().send_text(chat, user, text, reply_to))

    async def _press(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        chat, user, message = int(body["chat_id"]), int(body["user_id"]), int(body["message_id"])
        data = str(body["data"])
        return _act(lambda: {"query_id": self._world().press_button(chat, user, message, data)})

    async def _contact(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        user = int(body["user_id"])
        persona = next((p for p in PERSONAS if p.id == user), None)
        if persona is None:
            raise web.HTTPBadRequest(text="未知身份")
        return _act(
            lambda: self._world().send_contact(user, user, persona.phone, persona.name, user)
        )

    async def _location(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        chat, user = int(body["chat_id"]), int(body["user_id"])
        lat = float(body.get("latitude") or LOCATION[0])
        lon = float(body.get("longitude") or LOCATION[1])
        return _act(lambda: self._world().send_location(chat, user, lat, lon))

    async def _photo(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        upload = form.get("photo")
        if not isinstance(upload, web.FileField):
            raise web.HTTPBadRequest(text="请选择图片")
        data = upload.file.read()
        chat, user = int(str(form["chat_id"])), int(str(form["user_id"]))
        caption = str(form.get("caption") or "").strip() or None
        reply_to = int(str(form["reply_to"])) if form.get("reply_to") else None
        return _act(lambda: self._world().send_photo(chat, user, data, caption, reply_to))

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        await self.reset()
        return _json(self.health())


async def _claim_database(path: Path, first_start: bool) -> str | None:
    """Mark a new database as the simulator's; refuse one it did not make (重置 deletes it)."""
    db = await Database.open(path)
    try:
        if first_start:
            await db.mark_simulator()
        elif not await db.is_simulator():
            return (
                f"{path} 不是模拟器的数据库（可能是正式数据），模拟器不会使用或重置它；"
                "请把 SIMULATOR_DATABASE_PATH 指向另一个文件（默认 data/simulator.db）"
            )
    finally:
        await db.close()
    return None


def _button_data(message: JSON, label: str) -> str:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    for row in rows:
        for button in row:
            if label in button.get("text", "") and "callback_data" in button:
                return str(button["callback_data"])
    raise LookupError(f"no button {label!r} in message {message.get('message_id')}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _act(action: Any) -> web.Response:
    """Run a user action on the fake; refusals (not a member, no such button) become 400s."""
    try:
        result = action()
    except (ValueError, KeyError) as exc:
        raise web.HTTPBadRequest(text=f"无法执行：{exc}") from exc
    return _json(result)


def _json(payload: Any) -> web.Response:
    return web.json_response(payload, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def run_simulator(
    settings: Settings, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> None:
    """Run the simulator until cancelled (Ctrl+C)."""
    simulator = Simulator(settings, host, port)
    await simulator.start()
    print(f"本地模拟器已启动：{simulator.url}（按 Ctrl+C 停止）", flush=True)
    if simulator.error:
        print(f"注意：机器人启动失败：{simulator.error}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()
