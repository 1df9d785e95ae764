"""The simulator's WeChat/WeCom mode: the fake WeCom server, the real WeCom edge, and a page.

``WeComSimulator`` starts :class:`~bot.channels.simulator.fakewecom.FakeWeCom` on a free loopback
port with the county's organisation (one department per team and one for the coordinators), the
bot's services on a SQLite file of their own, the real WeCom channel (``start_wecom``: the
callback route, the inbox worker, the Sender) and the delivery loop. What a person does on the
page becomes what WeCom does: an encrypted, signed callback posted to the bot's /wecom/callback
(a member's text or a click on a card) or a 微信客服 message announced by ``kf_msg_or_event`` and
pulled with kf/sync_msg. What the bot sends through message/send, kf/send_msg and
update_template_card reaches the page over a WebSocket, fed by the fake's event hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from bot.channels.simulator import wecomviews as views
from bot.channels.simulator.fakewecom import CallbackAnswer, FakeWeCom
from bot.channels.simulator.fakewecomstate import JSON
from bot.channels.simulator.server import STATIC, _claim_database, _describe, _json
from bot.channels.wecom.app import WeComRuntime, start_wecom
from bot.classify.classifier import get_classifier
from bot.config import Settings
from bot.core.ports import SystemClock
from bot.reporting.monitor import Monitor
from bot.reporting.web import add_monitor_routes
from bot.schedule import run_jobs
from bot.services import Services, close_services, open_services

__all__ = ["DEPARTMENTS", "WX_PERSONAS", "WeComSimulator", "WxPersona", "wecom_database_path"]

logger = logging.getLogger(__name__)

WAIT_SECONDS = 15.0


@dataclass(frozen=True)
class WxPersona:
    """Someone on the WeChat side: a firm in personal WeChat, or a member in the WeCom app."""

    id: str  # external_userid (firm) or WeCom userid (member)
    name: str
    role: str
    kind: str  # "firm" or "member"
    phone: str = ""
    departments: tuple[int, ...] = ()


# One WeCom department per team, bound on first start with `/bind <team> dept:<id>`.
DEPARTMENTS = (
    (2, "科技工信服务一米团", "tech_industry"),
    (3, "金融服务一米团", "finance"),
    (4, "环保服务一米团", "environment"),
    (5, "人社服务一米团", "hr_social"),
    (6, "土地服务一米团", "land"),
    (7, "农业发展一米团", "agriculture"),
    (8, "乡村振兴一米团", "rural"),
    (9, "新闻宣传一米团", "publicity"),
    (10, "一米团专班（调度）", "coordinator"),
)
FIRM_ZHANG, FIRM_LI = "wmZhangChangzhang", "wmLiJingli"
ADMIN = "chendiaodu"
WX_PERSONAS = (
    WxPersona(FIRM_ZHANG, "张厂长", "恒达机械 · 已登记企业（微信）", "firm", "13812345678"),
    WxPersona(FIRM_LI, "李经理", "绿源食品 · 未登记企业（微信）", "firm", "13987654321"),
    WxPersona("wanggong", "王工", "科技工信、金融 团员", "member", departments=(2, 3)),
    WxPersona("zhaotuanzhang", "赵团长", "科技工信 团长 · 专班", "member", departments=(2, 10)),
    WxPersona("liugong", "刘工", "环保、人社、土地 团员", "member", departments=(4, 5, 6)),
    WxPersona("sungong", "孙工", "农业、乡村振兴、新闻宣传 团员", "member", departments=(7, 8, 9)),
    WxPersona(ADMIN, "陈调度", "专班调度员 · 管理员", "member", departments=(10,)),
)


def wecom_database_path(settings: Settings) -> Path:
    """This mode's own database beside the Telegram simulator's (data/simulator-wecom.db)."""
    path = Path(settings.simulator_database_path)
    return path.with_name(f"{path.stem}-wecom{path.suffix or '.db'}")


class WeComSimulator:
    """The fake WeCom, the real WeCom edge against it, and the page; ``reset()`` starts afresh."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 8080):
        self.settings = settings
        self.host = host
        self.requested_port = port
        self.fake: FakeWeCom | None = None
        self.services: Services | None = None
        self.runtime: WeComRuntime | None = None
        self.phase = "starting"
        self.error: str | None = None
        self._jobs: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._clients: set[asyncio.Queue[JSON]] = set()
        self._changed = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        # Each person's chat, oldest first: what they did, and what the app sent them.
        self.log: dict[str, list[JSON]] = {}
        self._seq = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The page's address."""
        if self._port is None:
            raise RuntimeError("WeComSimulator is not started")
        return f"http://{self.host}:{self._port}/"

    @property
    def database_path(self) -> Path:
        """The mode's own database, never the bot's nor the Telegram simulator's."""
        return wecom_database_path(self.settings)

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
                Path(f"{self.database_path}{suffix}").unlink(missing_ok=True)
            await self._start_world()
            self._broadcast({"kind": "reset", "phase": self.phase})

    def _bot_settings(self, fake: FakeWeCom) -> Settings:
        return self.settings.model_copy(
            update={
                "database_path": self.database_path,
                "database_url": None,
                "bot_token": None,
                "wecom_corp_id": fake.corp_id,
                "wecom_agent_id": fake.agent_id,
                "wecom_secret": SecretStr(fake.secret),
                "wecom_token": SecretStr(fake.token),
                "wecom_aes_key": SecretStr(fake.aes_key),
                "wecom_kf_id": fake.open_kfid,
                "wecom_admin_ids": sorted({*self.settings.wecom_admin_ids, ADMIN}),
                "wecom_api_base": fake.base_url,
            }
        )

    async def _start_world(self) -> None:
        self.phase, self.error = "starting", None
        self.log = {p.id: [] for p in WX_PERSONAS}
        first_start = not self.database_path.exists()
        refusal = await _claim_database(self.database_path, first_start)
        if refusal is not None:
            logger.error("simulator not started: %s", refusal)
            self.phase, self.error = "failed", refusal
            return
        try:
            await self._open(first_start)
        except Exception as exc:
            logger.exception("simulator start failed")
            self.phase, self.error = "failed", _describe(exc)
            return
        self.phase = "running"
        assert self.fake is not None
        logger.info("simulator: bot running against the fake WeCom on port %s", self.fake.port)

    async def _open(self, first_start: bool) -> None:
        fake = FakeWeCom()
        for dept_id, name, _ in DEPARTMENTS:
            fake.add_department(dept_id, name)
        for persona in WX_PERSONAS:
            if persona.kind == "member":
                fake.add_member(persona.id, persona.name, list(persona.departments))
            else:
                fake.add_customer(persona.id, persona.name)
        await fake.start()
        self.fake = fake
        self._unsubscribe = fake.subscribe(self._on_sent)
        settings = self._bot_settings(fake)
        wecom = settings.wecom()
        assert wecom is not None
        clock = SystemClock(settings.timezone)
        self.services = await open_services(settings, clock, get_classifier(), {}, {})
        self.runtime = await start_wecom(self.services, wecom, host="127.0.0.1", port=0)
        fake.callback_url = self.runtime.url
        self.services.delivery.start()
        self._jobs = asyncio.create_task(run_jobs(self.services), name="simulated jobs")
        if first_start:
            await self._first_start()

    async def _stop_world(self) -> None:
        if self._jobs is not None:
            self._jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._jobs
            self._jobs = None
        if self.runtime is not None:
            with contextlib.suppress(Exception):
                await self.runtime.stop()
            self.runtime = None
        if self.services is not None:
            with contextlib.suppress(Exception):
                await close_services(self.services)
            self.services = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.fake is not None:
            await self.fake.stop()
            self.fake = None

    async def _first_start(self) -> None:
        """The admin binds every department in the app chat; 张厂长 registers in WeChat."""
        for dept_id, _, team in DEPARTMENTS:
            await self.member_writes(ADMIN, f"/bind {team} dept:{dept_id}")
            await self.wait_for(ADMIN, "已绑定")
        zhang = next(p for p in WX_PERSONAS if p.id == FIRM_ZHANG)
        await self.customer_writes(FIRM_ZHANG, "/start")
        await self.wait_for(FIRM_ZHANG, "企业名称")
        for text, expect in (
            ("恒达机械有限公司", "联系人"),
            ("张建国", "手机号"),
            (zhang.phone, "乡镇"),
        ):
            await self.customer_writes(FIRM_ZHANG, text)
            await self.wait_for(FIRM_ZHANG, expect)
        await self.tap_menu(FIRM_ZHANG, self.settings.towns[0])
        await self.wait_for(FIRM_ZHANG, "信用代码")
        await self.tap_menu(FIRM_ZHANG, "跳过")
        await self.wait_for(FIRM_ZHANG, "登记完成")

    # -- what people do: callbacks as WeCom posts them ------------------------------------

    def _world(self) -> FakeWeCom:
        if self.fake is None or self.phase == "resetting":
            raise web.HTTPServiceUnavailable(text="模拟器正在重启，请稍候")
        return self.fake

    def _persona(self, pid: str, kind: str) -> WxPersona:
        persona = next((p for p in WX_PERSONAS if p.id == pid), None)
        if persona is None or persona.kind != kind:
            raise ValueError(f"未知身份 {pid}")
        return persona

    def _mine(self, pid: str, entry: JSON) -> None:
        self.log.setdefault(pid, []).append(
            {"seq": next(self._seq), "time": time.time(), "from": "me", **entry}
        )
        self._changed_now()

    async def customer_writes(self, firm: str, text: str) -> CallbackAnswer:
        """A firm writes in WeChat (kf_msg_or_event posted, the message served by sync_msg)."""
        self._persona(firm, "firm")
        self._mine(firm, {"msgtype": "text", "text": text})
        return views.checked(await self._world().customer_writes(firm, text))

    async def tap_menu(self, firm: str, label: str, menu_id: str | None = None) -> CallbackAnswer:
        """A firm taps a msgmenu item (by its id, or the latest item whose text has `label`)."""
        self._persona(firm, "firm")
        item = self._menu_item(firm, label, menu_id)
        self._mine(firm, {"msgtype": "text", "text": item["content"], "tapped": True})
        world = self._world()
        return views.checked(await world.customer_writes(firm, item["content"], menu_id=item["id"]))

    def _menu_item(self, firm: str, label: str, menu_id: str | None) -> dict[str, str]:
        fake = self._world()
        for sent in reversed(fake.customers[firm].received):
            if sent["msgtype"] != "msgmenu":
                continue
            for item in sent["msgmenu"].get("list", []):
                click = item.get("click", {})
                if (menu_id and click.get("id") == menu_id) or (
                    not menu_id and label and label in click.get("content", "")
                ):
                    return {"id": str(click["id"]), "content": str(click.get("content", ""))}
        raise ValueError(f"没有这个菜单项：{label or menu_id}")

    async def member_writes(self, userid: str, text: str) -> CallbackAnswer:
        """A member's text in the 一米团 app chat."""
        self._persona(userid, "member")
        self._mine(userid, {"msgtype": "text", "text": text})
        return views.checked(await self._world().member_writes(userid, text))

    async def click(self, userid: str, task_id: str, key: str) -> CallbackAnswer:
        """A member taps a card's button (template_card_event)."""
        self._persona(userid, "member")
        fake = self._world()
        try:
            view = fake.card_of(userid, task_id)
        except LookupError as exc:
            raise ValueError("没有这张卡片") from exc
        label = next(
            (b.get("text", "") for b in view.content.get("button_list", []) if b["key"] == key),
            None,
        )
        if label is None:
            raise ValueError("这张卡片上已没有这个按钮")
        self._mine(userid, {"msgtype": "click", "text": f"点击了「{label}」"})
        return views.checked(await fake.click(userid, task_id, key))

    async def send_picture(self, pid: str, name: str, mime: str, data: bytes) -> CallbackAnswer:
        """A picture from a firm (微信客服 image) or from a member (app image message)."""
        persona = next((p for p in WX_PERSONAS if p.id == pid), None)
        if persona is None:
            raise ValueError(f"未知身份 {pid}")
        fake = self._world()
        media_id = fake.store_media(name or "photo.jpg", mime or "image/jpeg", data)
        self._mine(pid, {"msgtype": "image", "media_id": media_id})
        if persona.kind == "firm":
            return views.checked(await fake.customer_writes(pid, media=("image", media_id)))
        return views.checked(await fake.member_sends_media(pid, "image", media_id))

    async def wait_for(self, pid: str, contains: str, timeout: float = WAIT_SECONDS) -> JSON:
        """The first message the app sent `pid` whose text contains `contains`, once it came."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages(pid):
                if message["from"] == "bot" and contains in message.get("text", ""):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{pid} got no message with {contains!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    # -- what the app sent ----------------------------------------------------------------

    def _on_sent(self, event: JSON) -> None:
        if event["kind"] == "kf":
            self._bot(str(event["touser"]), {"kf": str(event["msgid"])})
        elif event["kind"] == "app":
            for userid in event["userids"]:
                self._bot(str(userid), {"app": str(event["msgid"])})
        self._changed_now()

    def _bot(self, pid: str, ref: JSON) -> None:
        self.log.setdefault(pid, []).append(
            {"seq": next(self._seq), "time": time.time(), "from": "bot", **ref}
        )

    def _changed_now(self) -> None:
        self._changed.set()
        self._broadcast({"kind": "changed"})

    def messages(self, pid: str) -> list[JSON]:
        """The chat of one person as the page shows it (cards as they look now)."""
        fake = self.fake
        if fake is None:
            return []
        out = []
        for entry in self.log.get(pid, []):
            if entry["from"] == "me":
                out.append(dict(entry))
            elif "kf" in entry:
                out.append(views.kf_view(entry, fake, pid))
            else:
                out.append(views.app_view(entry, fake, pid))
        return out

    # -- health and state -----------------------------------------------------------------

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
        runtime, services = self.runtime, self.services
        if runtime is None or services is None or self.fake is None:
            return "机器人未启动"
        if not runtime.channel.running:
            return "企业微信回调处理已停止"
        if not services.delivery.running:
            return "消息发送（发件箱）已停止"
        if not self.fake.serving:
            return "无法连接企业微信接口：模拟的企业微信服务器已停止"
        return None

    def state(self) -> JSON:
        """Everything the page shows: the people and their chats."""
        chats = []
        for persona in WX_PERSONAS:
            chats.append(
                {
                    "id": persona.id,
                    "kind": "wechat" if persona.kind == "firm" else "wecom",
                    "title": persona.name,
                    "messages": self.messages(persona.id),
                }
            )
        return {
            "mode": "wecom",
            "timezone": self.settings.timezone,
            "personas": [asdict(p) for p in WX_PERSONAS],
            "chats": chats,
            "health": self.health(),
        }

    def _broadcast(self, payload: JSON) -> None:
        for queue in list(self._clients):
            queue.put_nowait(payload)

    # -- the web app ----------------------------------------------------------------------

    async def _serve(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.ico", self._favicon)
        app.router.add_get("/api/state", self._get_state)
        app.router.add_get("/api/health", self._get_health)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/media/{media_id}", self._media)
        app.router.add_post("/api/wx/send", self._wx_send)
        app.router.add_post("/api/wx/menu", self._wx_menu)
        app.router.add_post("/api/wecom/send", self._wecom_send)
        app.router.add_post("/api/wecom/click", self._wecom_click)
        app.router.add_post("/api/photo", self._photo)
        app.router.add_post("/api/reset", self._reset)
        add_monitor_routes(app, self._monitor, lambda: SystemClock(self.settings.timezone).now())
        app.router.add_static("/static/", STATIC)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.requested_port).start()
        self._port = int(self._runner.addresses[0][1])

    def _monitor(self) -> Monitor | None:
        return self.services.monitor if self.services is not None else None

    async def _get_state(self, request: web.Request) -> web.StreamResponse:
        return _json(self.state())

    async def _get_health(self, request: web.Request) -> web.StreamResponse:
        return _json(self.health())

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "wecom.html")

    async def _favicon(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            STATIC / "favicon.ico", headers={"Content-Type": "image/vnd.microsoft.icon"}
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        queue: asyncio.Queue[JSON] = asyncio.Queue()
        self._clients.add(queue)
        reader = asyncio.create_task(views.drain(ws))
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

    async def _media(self, request: web.Request) -> web.StreamResponse:
        stored = self.fake.media.get(request.match_info["media_id"]) if self.fake else None
        if stored is None:
            return web.Response(status=404, text="文件不存在")
        _, content_type, data = stored
        return web.Response(body=data, content_type=content_type or "application/octet-stream")

    async def _wx_send(self, request: web.Request) -> web.StreamResponse:
        body = await views.body_of(request)
        text = views.text_of(body)
        return await views.act(self.customer_writes(str(body.get("user", "")), text))

    async def _wx_menu(self, request: web.Request) -> web.StreamResponse:
        body = await views.body_of(request)
        user, menu_id = str(body.get("user", "")), str(body.get("id", ""))
        if not menu_id:
            raise web.HTTPBadRequest(text="缺少菜单项")
        return await views.act(self.tap_menu(user, "", menu_id))

    async def _wecom_send(self, request: web.Request) -> web.StreamResponse:
        body = await views.body_of(request)
        text = views.text_of(body)
        return await views.act(self.member_writes(str(body.get("user", "")), text))

    async def _wecom_click(self, request: web.Request) -> web.StreamResponse:
        body = await views.body_of(request)
        user, task_id, key = (str(body.get(k, "")) for k in ("user", "task_id", "key"))
        return await views.act(self.click(user, task_id, key))

    async def _photo(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        upload = form.get("photo")
        if not isinstance(upload, web.FileField):
            raise web.HTTPBadRequest(text="请选择图片")
        data = upload.file.read()
        if not data:
            raise web.HTTPBadRequest(text="图片是空的")
        user = str(form.get("user") or "")
        return await views.act(self.send_picture(user, upload.filename, upload.content_type, data))

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        await self.reset()
        return _json(self.health())


async def run_wecom_simulator(
    settings: Settings, host: str = "127.0.0.1", port: int = 8080
) -> None:
    """Run the WeChat/WeCom simulator until cancelled (Ctrl+C)."""
    simulator = WeComSimulator(settings, host, port)
    await simulator.start()
    print(f"本地模拟器（微信 / 企业微信）已启动：{simulator.url}（按 Ctrl+C 停止）", flush=True)
    if simulator.error:
        print(f"注意：机器人启动失败：{simulator.error}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()
