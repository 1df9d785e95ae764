// 一米团机器人本地模拟器（微信 / 企业微信）：每人一列。企业的列是微信里和“一米团企业服务”微信客服的聊天，
// 团员的列是企业微信“一米团”应用；页面上的操作变成企业微信发给机器人的加密回调。
"use strict";

const state = { personas: [], chats: [], timezone: undefined, columns: new Map() };

async function api(path, body) {
  const options = body instanceof FormData
    ? { method: "POST", body }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    toast("无法连接模拟器服务", true);
    return null;
  }
  if (!response.ok) {
    toast(await response.text() || "操作失败", true);
    return null;
  }
  return response.json();
}

let loading = null;
let again = false;
async function loadState() {
  if (loading) { again = true; return loading; }
  loading = (async () => {
    do {
      again = false;
      const response = await fetch("/api/state");
      const data = await response.json();
      state.personas = data.personas;
      state.chats = data.chats;
      state.timezone = data.timezone || undefined;
      showHealth(data.health);
      render();
    } while (again);
  })();
  try { await loading; } finally { loading = null; }
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/events`);
  ws.onopen = () => loadState();
  ws.onmessage = () => loadState();
  ws.onclose = () => setTimeout(connect, 1000);
}

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

function render() {
  renderPersonas();
  const container = document.getElementById("chats");
  for (const chat of state.chats) {
    let column = state.columns.get(chat.id);
    if (!column) {
      column = buildColumn(chat);
      state.columns.set(chat.id, column);
      container.append(column);
    }
    renderMessages(column, chat);
  }
}

function renderPersonas() {
  const bar = document.getElementById("personas");
  if (bar.childElementCount === state.personas.length) return;
  bar.replaceChildren();
  for (const p of state.personas) {
    const button = document.createElement("button");
    button.className = "persona";
    button.dataset.persona = p.id;
    button.title = p.kind === "firm" ? "微信（企业）" : "企业微信（团员）";
    button.innerHTML = "<span></span><small></small>";
    button.querySelector("span").textContent = `${p.kind === "firm" ? "微信" : "企微"} · ${p.name}`;
    button.querySelector("small").textContent = p.role;
    button.addEventListener("click", () => focusChat(p.id));
    bar.append(button);
  }
}

function focusChat(id) {
  for (const [chatId, column] of state.columns) column.classList.toggle("focused", chatId === id);
  for (const button of document.querySelectorAll("button.persona")) {
    button.classList.toggle("active", button.dataset.persona === id);
  }
  const column = state.columns.get(id);
  if (column) {
    column.scrollIntoView({ inline: "nearest", block: "nearest" });
    column.querySelector("input.text").focus();
  }
}

function personaOf(id) {
  return state.personas.find((p) => p.id === id);
}

function buildColumn(chat) {
  const column = document.getElementById("chat-template").content.firstElementChild.cloneNode(true);
  const who = personaOf(chat.id);
  column.dataset.chat = chat.id;
  column.dataset.kind = chat.kind;
  column.querySelector(".title").textContent = chat.kind === "wechat"
    ? `微信 · 一米团企业服务（客服）`
    : `企业微信 · 一米团`;
  column.querySelector(".sub").textContent = `${who.name} · ${who.role}`;
  const input = column.querySelector("input.text");
  input.placeholder = chat.kind === "wechat" ? `以${who.name}的身份在微信里发消息…` : `以${who.name}的身份在应用里发消息…`;
  const send = async () => {
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    const path = chat.kind === "wechat" ? "/api/wx/send" : "/api/wecom/send";
    if (!(await api(path, { user: chat.id, text }))) input.value = text;
  };
  column.querySelector("button.send").addEventListener("click", send);
  input.addEventListener("keydown", (event) => { if (event.key === "Enter" && !event.isComposing) send(); });
  const photo = column.querySelector("input.photo-input");
  photo.addEventListener("change", async () => {
    const file = photo.files[0];
    photo.value = "";
    if (!file) return;
    const form = new FormData();
    form.append("user", chat.id);
    form.append("photo", file, file.name);
    await api("/api/photo", form);
  });
  return column;
}

function renderMessages(column, chat) {
  const box = column.querySelector(".messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const fingerprint = JSON.stringify(chat.messages);
  if (box.dataset.fingerprint === fingerprint) return;
  box.dataset.fingerprint = fingerprint;
  box.replaceChildren(...chat.messages.map((m) => renderMessage(chat, m)));
  if (atBottom || !box.dataset.scrolled) {
    box.scrollTop = box.scrollHeight;
    box.dataset.scrolled = "1";
  }
}

function renderMessage(chat, message) {
  const item = document.createElement("div");
  item.className = "msg";
  item.dataset.seq = message.seq;
  if (message.from === "me") {
    if (message.msgtype === "click") {
      item.classList.add("click");
      item.textContent = message.text;
      return item;
    }
    item.classList.add("mine");
  } else {
    item.classList.add("bot");
  }
  if (message.card) {
    item.classList.add("card");
    item.append(renderCard(chat, message.card));
  } else {
    if (message.from === "bot") {
      const who = document.createElement("div");
      who.className = "who";
      who.textContent = chat.kind === "wechat" ? "一米团企业服务" : "一米团";
      item.append(who);
    }
    item.append(renderBody(message));
    if (message.menu) item.append(renderMenu(chat, message));
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = formatTime(new Date(message.time * 1000));
  item.append(meta);
  return item;
}

function renderBody(message) {
  if (message.media_id && message.msgtype === "image") {
    const img = document.createElement("img");
    img.className = "photo";
    img.alt = "图片";
    img.src = `/api/media/${encodeURIComponent(message.media_id)}`;
    return img;
  }
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = message.media_id ? `[${message.msgtype === "file" ? "文件" : message.msgtype === "voice" ? "语音" : "附件"}]` : (message.text || "");
  return body;
}

function renderMenu(chat, message) {
  const menu = document.createElement("div");
  menu.className = "menu";
  for (const choice of message.menu) {
    const button = document.createElement("button");
    button.className = "mi";
    button.textContent = choice.content;
    button.addEventListener("click", () => api("/api/wx/menu", { user: chat.id, id: choice.id }));
    menu.append(button);
  }
  const fragment = document.createDocumentFragment();
  fragment.append(menu);
  if (message.tail) {
    const tail = document.createElement("div");
    tail.className = "tail";
    tail.textContent = message.tail;
    fragment.append(tail);
  }
  return fragment;
}

function renderCard(chat, card) {
  const fragment = document.createDocumentFragment();
  const source = document.createElement("div");
  source.className = "source";
  source.textContent = "一米团 · 模板卡片";
  const title = document.createElement("div");
  title.className = "card-title";
  title.textContent = card.title;
  fragment.append(source, title);
  if (card.sub) {
    const sub = document.createElement("div");
    sub.className = "card-sub";
    sub.textContent = card.sub;
    fragment.append(sub);
  }
  if (card.buttons.length) {
    const row = document.createElement("div");
    row.className = "card-buttons";
    for (const b of card.buttons) {
      const button = document.createElement("button");
      button.className = "cb";
      button.textContent = b.text;
      button.addEventListener("click", async () => {
        button.disabled = true;
        await api("/api/wecom/click", { user: chat.id, task_id: card.task_id, key: b.key });
        button.disabled = false;
      });
      row.append(button);
    }
    fragment.append(row);
  } else if (card.label) {
    const label = document.createElement("div");
    label.className = "card-label";
    label.textContent = card.label;
    fragment.append(label);
  }
  return fragment;
}

function formatTime(time) {
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  try {
    return time.toLocaleTimeString("zh-CN", { ...options, timeZone: state.timezone });
  } catch (error) {
    return time.toLocaleTimeString("zh-CN", options);
  }
}

let toastTimer = 0;
function toast(text, alert) {
  const element = document.getElementById("toast");
  element.textContent = text;
  element.classList.toggle("alert", Boolean(alert));
  element.classList.remove("hidden");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => element.classList.add("hidden"), alert ? 6000 : 3000);
}

document.getElementById("reset").addEventListener("click", async () => {
  if (!confirm("重置会删除模拟器（微信 / 企业微信）的数据库并重新开始，确定吗？")) return;
  for (const column of state.columns.values()) column.remove();
  state.columns.clear();
  await api("/api/reset", {});
  await loadState();
});

connect();
setInterval(pollHealth, 3000);
