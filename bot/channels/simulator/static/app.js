// 一米团机器人本地模拟器：每个聊天一列，像手机上的聊天窗口；消息通过 WebSocket 实时更新。
"use strict";

const state = {
  personas: [],
  chats: new Map(), // id -> {id, type, title, members, messages: Map, keyboard}
  groups: [],
  botId: 0,
  botUsername: "",
  timezone: undefined, // the bot's TIMEZONE; undefined = the browser's
  persona: Number(localStorage.getItem("sim-persona")) || 0,
  replyTo: new Map(), // chat id -> message
  columns: new Map(), // chat id -> section element
};

const ENTITY_TAGS = { bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre" };
const SAFE_URL = /^(https?:|tg:)/i;

// ---- server calls ---------------------------------------------------------------------

async function api(path, body) {
  const options = body instanceof FormData
    ? { method: "POST", body }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  if (!response.ok) {
    toast(await response.text() || "操作失败");
    return null;
  }
  return response.json();
}

async function loadState() {
  const response = await fetch("/api/state");
  const data = await response.json();
  state.personas = data.personas;
  state.groups = data.groups;
  state.botId = Number(data.bot.id);
  state.botUsername = data.bot.username;
  state.timezone = data.timezone || undefined;
  state.chats.clear();
  for (const chat of data.chats) {
    state.chats.set(chat.id, {
      ...chat,
      messages: new Map(chat.messages.map((m) => [m.message_id, m])),
    });
  }
  if (!state.personas.some((p) => p.id === state.persona)) state.persona = state.personas[0].id;
  showHealth(data.health);
  renderAll();
}

// ---- live events ----------------------------------------------------------------------

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/events`);
  ws.onopen = () => loadState();
  ws.onmessage = (event) => onEvent(JSON.parse(event.data));
  ws.onclose = () => setTimeout(connect, 1000);
}

function onEvent(event) {
  if (event.kind === "reset") {
    state.replyTo.clear();
    loadState();
    return;
  }
  const chat = state.chats.get(event.chat_id);
  if (!chat) return;
  if (event.kind === "message" || event.kind === "edit") {
    chat.messages.set(event.message.message_id, event.message);
    renderChat(chat.id);
  } else if (event.kind === "delete") {
    chat.messages.delete(event.message_id);
    renderChat(chat.id);
  } else if (event.kind === "keyboard") {
    chat.keyboard = event.keyboard;
    renderChat(chat.id);
  } else if (event.kind === "callback_answer") {
    if (event.text) toast(event.text, event.show_alert);
  } else if (event.kind === "chat_action") {
    showTyping(chat.id);
  }
}

// ---- health ---------------------------------------------------------------------------

function showHealth(health) {
  const banner = document.getElementById("banner");
  banner.classList.remove("hidden", "failed", "starting");
  if (health.ok && health.phase === "running") {
    banner.classList.add("hidden");
    banner.textContent = "";
  } else if (health.ok) {
    banner.classList.add("starting");
    banner.textContent = health.phase === "resetting" ? "正在重置：删除数据库并重新启动机器人…" : "机器人正在启动…";
  } else {
    banner.classList.add("failed");
    banner.textContent = `机器人进程已停止：${health.error || "原因不明"}。请查看终端日志，或点击“重置”重新开始。`;
  }
}

async function pollHealth() {
  try {
    const response = await fetch("/api/health");
    showHealth(await response.json());
  } catch (error) {
    showHealth({ ok: false, phase: "failed", error: "无法连接模拟器服务（终端里的进程可能已退出）" });
  }
}

// ---- rendering ------------------------------------------------------------------------

function persona() {
  return state.personas.find((p) => p.id === state.persona);
}

function visibleChats() {
  const own = state.chats.get(state.persona);
  const groups = state.groups.map((g) => state.chats.get(g.id)).filter(Boolean);
  return own ? [own, ...groups] : groups;
}

function renderAll() {
  renderPersonas();
  const container = document.getElementById("chats");
  container.replaceChildren();
  state.columns.clear();
  for (const chat of visibleChats()) {
    const column = buildColumn(chat);
    state.columns.set(chat.id, column);
    container.append(column);
    renderChat(chat.id);
  }
}

function renderPersonas() {
  const bar = document.getElementById("personas");
  bar.replaceChildren();
  for (const p of state.personas) {
    const button = document.createElement("button");
    button.className = "persona" + (p.id === state.persona ? " active" : "");
    button.dataset.persona = String(p.id);
    const name = document.createElement("b");
    name.textContent = p.name;
    const role = document.createElement("small");
    role.textContent = p.role;
    button.append(name, role);
    button.onclick = () => {
      state.persona = p.id;
      localStorage.setItem("sim-persona", String(p.id));
      renderAll();
    };
    bar.append(button);
  }
}

function isMember(chat) {
  return chat.members.includes(state.persona);
}

function buildColumn(chat) {
  const column = document.getElementById("chat-template").content.firstElementChild.cloneNode(true);
  column.dataset.chat = String(chat.id);
  column.dataset.kind = chat.type === "private" ? "private" : "group";
  column.querySelector(".title").textContent = chat.type === "private" ? "一米团机器人" : chat.title;
  const sub = column.querySelector(".sub");
  if (chat.type === "private") sub.textContent = `${persona().name} 的私聊`;
  else sub.textContent = isMember(chat) ? `${chat.members.length} 位成员 + 机器人` : "旁观（当前身份不在此群）";
  if (chat.type !== "private" && !isMember(chat)) column.classList.add("outsider");

  const input = column.querySelector(".text");
  const send = () => {
    const text = input.value.trim();
    if (!text) return;
    const reply = state.replyTo.get(chat.id);
    input.value = "";
    clearReply(chat.id);
    api("/api/send", { chat_id: chat.id, user_id: state.persona, text, reply_to: reply ? reply.message_id : null });
  };
  column.querySelector(".send").onclick = send;
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) send();
  });
  column.querySelector(".start").onclick = () =>
    api("/api/send", { chat_id: chat.id, user_id: state.persona, text: "/start" });
  column.querySelector(".loc").onclick = () =>
    api("/api/location", { chat_id: chat.id, user_id: state.persona });
  const photo = column.querySelector(".photo-input");
  photo.onchange = () => {
    if (!photo.files.length) return;
    const form = new FormData();
    form.append("chat_id", String(chat.id));
    form.append("user_id", String(state.persona));
    form.append("caption", input.value.trim());
    const reply = state.replyTo.get(chat.id);
    if (reply) form.append("reply_to", String(reply.message_id));
    form.append("photo", photo.files[0]);
    input.value = "";
    photo.value = "";
    clearReply(chat.id);
    api("/api/photo", form);
  };
  column.querySelector(".cancel-reply").onclick = () => clearReply(chat.id);
  const disabled = chat.type !== "private" && !isMember(chat);
  for (const control of column.querySelectorAll(".composer input, .composer button")) control.disabled = disabled;
  // The picture control is a label around a hidden file input: it must look disabled too.
  const attach = column.querySelector(".attach");
  attach.classList.toggle("disabled", disabled);
  attach.setAttribute("aria-disabled", String(disabled));
  attach.title = disabled ? "当前身份不在此群，不能发图片" : "从本地选择图片发送";
  if (disabled) input.placeholder = "当前身份不在此群，不能发言";
  return column;
}

function renderChat(chatId) {
  const column = state.columns.get(chatId);
  const chat = state.chats.get(chatId);
  if (!column || !chat) return;
  const list = column.querySelector(".messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...[...chat.messages.values()].map((m) => renderMessage(chat, m)));
  if (atBottom || list.dataset.seen !== String(chat.messages.size)) list.scrollTop = list.scrollHeight;
  list.dataset.seen = String(chat.messages.size);
  const empty = chat.messages.size === 0 && chat.type === "private";
  column.querySelector(".start").classList.toggle("hidden", !empty);
  renderReplyKeyboard(column, chat);
}

function senderName(user) {
  if (!user) return "";
  if (user.id === state.botId) return "一米团机器人";
  return [user.first_name, user.last_name].filter(Boolean).join(" ");
}

function renderMessage(chat, message) {
  const from = message.from || {};
  const mine = from.id === state.persona;
  const bot = from.id === state.botId;
  const item = document.createElement("div");
  item.className = "msg" + (mine ? " mine" : "") + (bot ? " bot" : "");
  item.dataset.messageId = String(message.message_id);
  if (chat.type !== "private" && !mine) {
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = senderName(from);
    item.append(who);
  }
  if (message.reply_to_message) {
    const quote = document.createElement("div");
    quote.className = "quote";
    const original = message.reply_to_message;
    quote.textContent = `${senderName(original.from)}：${summary(original)}`;
    item.append(quote);
  }
  item.append(...renderContent(message));
  const markup = message.reply_markup && message.reply_markup.inline_keyboard;
  if (markup && markup.length) item.append(renderInlineKeyboard(chat, message, markup));
  const meta = document.createElement("div");
  meta.className = "meta";
  const time = new Date((message.edit_date || message.date) * 1000);
  meta.textContent = (message.edit_date ? "已编辑 " : "") + formatTime(time);
  if (chat.type === "private" || isMember(chat)) {
    const reply = document.createElement("button");
    reply.className = "reply-action";
    reply.textContent = "回复";
    reply.onclick = () => setReply(chat.id, message);
    meta.append(reply);
  }
  item.append(meta);
  return item;
}

function formatTime(time) {
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  try {
    return time.toLocaleTimeString("zh-CN", { ...options, timeZone: state.timezone });
  } catch (error) { // a timezone name this browser does not know
    return time.toLocaleTimeString("zh-CN", options);
  }
}

function summary(message) {
  const body = message.text || message.caption || "";
  if (body) return body.length > 40 ? body.slice(0, 40) + "…" : body;
  if (message.photo) return "[图片]";
  if (message.location) return "[位置]";
  if (message.contact) return "[联系人]";
  if (message.document) return "[文件]";
  if (message.voice) return "[语音]";
  return "[消息]";
}

function renderContent(message) {
  const parts = [];
  if (message.photo && message.photo.length) {
    const img = document.createElement("img");
    img.className = "photo";
    img.alt = "图片";
    img.src = `/api/file/${encodeURIComponent(message.photo[message.photo.length - 1].file_id)}`;
    parts.push(img);
  }
  const extra = (text) => {
    const line = document.createElement("div");
    line.className = "attachment";
    line.textContent = text;
    parts.push(line);
  };
  if (message.location) extra(`📍 位置：${message.location.latitude}, ${message.location.longitude}`);
  if (message.contact) extra(`📇 联系人：${message.contact.first_name} ${message.contact.phone_number}`);
  if (message.document) extra(`📄 文件：${message.document.file_name || "未命名"}`);
  if (message.voice) extra(`🎤 语音 ${message.voice.duration || 0} 秒`);
  if (message.sticker) extra(message.sticker.emoji || "[贴纸]");
  if (message.new_chat_members) extra(`${message.new_chat_members.map(senderName).join("、")} 加入了群聊`);
  if (message.left_chat_member) extra(`${senderName(message.left_chat_member)} 离开了群聊`);
  const text = message.text !== undefined ? message.text : message.caption;
  if (text) {
    const body = document.createElement("div");
    body.className = "body";
    body.append(renderEntities(text, message.text !== undefined ? message.entities : message.caption_entities));
    parts.push(body);
  }
  return parts;
}

// Telegram sends formatting as entities (offsets in UTF-16 units, as JavaScript strings are).
// Only b/i/u/s/code/pre/a are ever created; all text goes in as text nodes, never as HTML.
function renderEntities(text, entities) {
  const fragment = document.createDocumentFragment();
  const usable = (entities || []).filter((e) => ENTITY_TAGS[e.type] || e.type === "text_link" || e.type === "url");
  if (!usable.length) {
    fragment.append(text);
    return fragment;
  }
  const cuts = new Set([0, text.length]);
  for (const e of usable) {
    cuts.add(Math.min(e.offset, text.length));
    cuts.add(Math.min(e.offset + e.length, text.length));
  }
  const points = [...cuts].sort((a, b) => a - b);
  for (let i = 0; i < points.length - 1; i++) {
    const [start, end] = [points[i], points[i + 1]];
    let node = document.createTextNode(text.slice(start, end));
    const active = usable.filter((e) => e.offset <= start && e.offset + e.length >= end);
    for (const entity of active.reverse()) {
      const element = entityElement(entity, text);
      element.append(node);
      node = element;
    }
    fragment.append(node);
  }
  return fragment;
}

function entityElement(entity, text) {
  if (ENTITY_TAGS[entity.type]) return document.createElement(ENTITY_TAGS[entity.type]);
  const link = document.createElement("a");
  const href = entity.type === "text_link" ? entity.url : text.slice(entity.offset, entity.offset + entity.length);
  if (href && SAFE_URL.test(href)) {
    link.href = href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  }
  return link;
}

function renderInlineKeyboard(chat, message, rows) {
  const keyboard = document.createElement("div");
  keyboard.className = "ik";
  const canPress = chat.type === "private" || isMember(chat);
  for (const row of rows) {
    const line = document.createElement("div");
    line.className = "ik-row";
    for (const button of row) {
      const element = document.createElement("button");
      element.className = "ib";
      element.textContent = button.text;
      element.disabled = !canPress;
      if (button.callback_data !== undefined) {
        element.onclick = () =>
          api("/api/press", { chat_id: chat.id, user_id: state.persona, message_id: message.message_id, data: button.callback_data });
      } else if (button.url) {
        element.onclick = () => openUrl(button.url);
      }
      line.append(element);
    }
    keyboard.append(line);
  }
  return keyboard;
}

// A deep link to the bot (t.me/<bot>?start=x) opens the persona's private chat with /start x.
function openUrl(url) {
  const match = /^https?:\/\/t\.me\/([A-Za-z0-9_]+)\?start=([A-Za-z0-9_-]+)/.exec(url);
  if (match && match[1].toLowerCase() === state.botUsername.toLowerCase()) {
    api("/api/send", { chat_id: state.persona, user_id: state.persona, text: `/start ${match[2]}` });
    toast("已在私聊中向机器人发送 /start " + match[2]);
    return;
  }
  toast(`外部链接（模拟器不打开）：${url}`);
}

function renderReplyKeyboard(column, chat) {
  const area = column.querySelector(".rk");
  area.replaceChildren();
  const rows = chat.keyboard && chat.keyboard.keyboard;
  if (!rows || (chat.type !== "private" && !isMember(chat))) return;
  for (const row of rows) {
    const line = document.createElement("div");
    line.className = "rk-row";
    for (const raw of row) {
      const button = typeof raw === "string" ? { text: raw } : raw;
      const element = document.createElement("button");
      element.className = "rb";
      element.textContent = button.text;
      element.onclick = () => {
        if (button.request_contact) api("/api/contact", { chat_id: chat.id, user_id: state.persona });
        else if (button.request_location) api("/api/location", { chat_id: chat.id, user_id: state.persona });
        else api("/api/send", { chat_id: chat.id, user_id: state.persona, text: button.text });
      };
      line.append(element);
    }
    area.append(line);
  }
}

function setReply(chatId, message) {
  state.replyTo.set(chatId, message);
  const column = state.columns.get(chatId);
  column.querySelector(".replying").classList.remove("hidden");
  column.querySelector(".replying-text").textContent = `回复 ${senderName(message.from)}：${summary(message)}`;
  column.querySelector(".text").focus();
}

function clearReply(chatId) {
  state.replyTo.delete(chatId);
  const column = state.columns.get(chatId);
  if (column) column.querySelector(".replying").classList.add("hidden");
}

function showTyping(chatId) {
  const column = state.columns.get(chatId);
  if (!column) return;
  const typing = column.querySelector(".typing");
  typing.classList.remove("hidden");
  clearTimeout(typing._timer);
  typing._timer = setTimeout(() => typing.classList.add("hidden"), 1500);
}

let toastTimer = 0;
function toast(text, alert) {
  const element = document.getElementById("toast");
  element.textContent = text;
  element.classList.remove("hidden");
  element.classList.toggle("alert", Boolean(alert));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => element.classList.add("hidden"), alert ? 6000 : 3000);
}

document.getElementById("reset").onclick = async () => {
  if (!confirm("重置会删除本地数据库并重新开始，确定吗？")) return;
  showHealth({ ok: true, phase: "resetting" });
  await api("/api/reset", {});
  await loadState();
};

connect();
setInterval(pollHealth, 1500);
