"""What the WeChat/WeCom simulator's page shows of a message (a 微信客服 message as the firm sees
it, an app message or card as the member sees it now) and the small HTTP helpers of its routes."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSMsgType, web

from bot.channels.simulator.fakewecom import CallbackAnswer, FakeWeCom
from bot.channels.simulator.fakewecomstate import JSON, AppMessage
from bot.channels.simulator.server import _json

logger = logging.getLogger(__name__)


def kf_view(entry: JSON, fake: FakeWeCom, firm: str) -> JSON:
    """A 微信客服 message as the firm sees it: text, a menu with tappable items, or media."""
    customer = fake.customers.get(firm)
    sent = (
        next((m for m in customer.received if m["msgid"] == entry["kf"]), None)
        if customer
        else None
    )
    view: JSON = {"seq": entry["seq"], "time": entry["time"], "from": "bot"}
    if sent is None:
        return view | {"msgtype": "text", "text": ""}
    kind = str(sent["msgtype"])
    content = sent.get(kind, {})
    view["msgtype"] = kind
    if kind == "text":
        view["text"] = str(content.get("content", ""))
    elif kind == "msgmenu":
        items = [i.get("click", {}) for i in content.get("list", []) if i.get("type") == "click"]
        view |= {
            "text": str(content.get("head_content", "")),
            "tail": str(content.get("tail_content", "")),
            "menu": [
                {"id": str(i.get("id", "")), "content": str(i.get("content", ""))} for i in items
            ],
        }
    else:
        view |= {"text": f"[{kind}]", "media_id": str(content.get("media_id", ""))}
    return view


def app_view(entry: JSON, fake: FakeWeCom, userid: str) -> JSON:
    """An app message as the member sees it now (a card with its latest update)."""
    msgid = str(entry["app"])
    view: JSON = {"seq": entry["seq"], "time": entry["time"], "from": "bot"}
    card = fake.cards.get(msgid)
    message: AppMessage | None = card.views.get(userid) if card is not None else None
    if message is None:
        message = next((m for m in fake.chats.get(userid, []) if m.msgid == msgid), None)
    if message is None:
        return view | {"msgtype": "text", "text": ""}
    view |= {"msgtype": message.msgtype, "text": message.text}
    if message.msgtype == "template_card":
        content = message.content
        view["card"] = {
            "task_id": str(content.get("task_id", "")),
            "title": str(content.get("main_title", {}).get("title", "")),
            "sub": str(content.get("sub_title_text", "")),
            "buttons": [
                {"text": str(b.get("text", "")), "key": str(b.get("key", ""))}
                for b in content.get("button_list", [])
            ],
            "label": str(content.get("replace_button", {}).get("text", "")),
        }
    elif message.msgtype not in ("text", "markdown"):
        view["media_id"] = str(message.content.get("media_id", ""))
    return view


def checked(answer: CallbackAnswer) -> CallbackAnswer:
    """A callback the bot did not take (not 200) is said on the page, not dropped silently."""
    if answer.status != 200:
        raise RuntimeError(f"机器人的回调地址拒绝了这条消息（HTTP {answer.status}）")
    return answer


async def body_of(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="请求格式不对") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="请求格式不对")
    return body


def text_of(body: JSON) -> str:
    text = str(body.get("text") or "").strip()
    if not text:
        raise web.HTTPBadRequest(text="消息不能为空")
    return text


async def act(action: Any) -> web.Response:
    """Run a person's action; refusals (unknown person, no such button) become 400s, a callback
    the bot did not answer a 502 — each with a Chinese text the page shows."""
    try:
        answer: CallbackAnswer = await action
    except (ValueError, KeyError, LookupError) as exc:
        raise web.HTTPBadRequest(text=f"无法执行：{exc}") from exc
    except (RuntimeError, OSError) as exc:
        raise web.HTTPBadGateway(text=f"消息没有送到机器人：{exc}") from exc
    return _json({"status": answer.status, "seconds": round(answer.seconds, 4)})


async def drain(ws: web.WebSocketResponse) -> None:
    async for message in ws:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
