// asi1d playground: a chat page for the server that serves it. Plain
// JavaScript modules, no dependencies, nothing loaded from another host.
// Model output is only ever put into the page as text nodes (textContent /
// createTextNode): markdown.js builds DOM elements and never assigns HTML
// strings. Conversations live in this browser (localStorage); the API key
// only in this tab (sessionStorage).
import { el, markdown } from "./markdown.js";
import { Calibration, defaultMaxTokens, fit } from "./context.js";
import { Conversations } from "./conversations.js";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "asi1d.apiKey";           // sessionStorage
const SETTINGS_STORE = "asi1d.settings";    // localStorage: temperature, answer length, tools
const THEME_STORE = "asi1d.theme";          // localStorage: "light", "dark" or absent (the system's)

const state = {
  controller: null,   // AbortController of the answer being written
  models: {},         // id -> model object of /v1/models
  settings: loadSettings(),
  calib: new Calibration("asi1d.calibration"),
  convs: null,        // Conversations
  live: null,         // {conv, index} of the answer being written
};

function isLive(conv, i) { return !!state.live && state.live.conv === conv && state.live.index === i; }

function loadSettings() {
  try { return JSON.parse(localStorage.getItem(SETTINGS_STORE) || "{}") || {}; } catch (_) { return {}; }
}

function saveSettings() {
  try { localStorage.setItem(SETTINGS_STORE, JSON.stringify(state.settings)); } catch (_) { /* full */ }
}

function apiKey() { return sessionStorage.getItem(KEY_STORE) || ""; }

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const k = apiKey();
  if (k) h["Authorization"] = "Bearer " + k;
  return h;
}

// errorBody reads the contract's error body: {"error":{"message",...}}.
async function errorBody(resp) {
  let msg = resp.status + " " + resp.statusText, code = "";
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) {
      code = body.error.code || "";
      msg = resp.status + " " + (code ? code + ": " : "") + body.error.message;
    }
  } catch (_) { /* not JSON: keep the status line */ }
  return { msg, code };
}

function showError(text) {
  const e = $("error");
  e.textContent = text;
  e.hidden = !text;
}

function needKey(message) {
  $("key-form").hidden = false;
  $("settings").open = true;
  $("api-key").focus();
  if (message) showError(message + (apiKey() ? " (the key was refused)" : " (this server needs an API key)"));
}

// ---- Models and the answer length ----------------------------------------

async function loadModels() {
  const sel = $("model");
  let resp;
  try {
    resp = await fetch("/v1/models", { headers: headers(false) });
  } catch (err) {
    $("server-status").textContent = "server unreachable";
    return;
  }
  if (resp.status === 401) { needKey((await errorBody(resp)).msg); return; }
  if (!resp.ok) { showError((await errorBody(resp)).msg); return; }
  const list = await resp.json();
  const prev = sel.value || state.settings.model;
  sel.replaceChildren();
  state.models = {};
  let firstLoaded = "";
  for (const m of list.data || []) {
    state.models[m.id] = m;
    const o = document.createElement("option");
    o.value = m.id;
    let note = m.context_length ? m.context_length + " ctx" : "";
    if (m.status === "unusable") { note = "unusable"; o.disabled = true; o.title = m.error || ""; }
    else if (m.loaded === false) note += (note ? ", " : "") + "loads on first use";
    else if (!firstLoaded) firstLoaded = m.id;
    o.textContent = m.id + (note ? " (" + note + ")" : "");
    sel.append(o);
  }
  if (prev && state.models[prev]) sel.value = prev;
  else if (firstLoaded) sel.value = firstLoaded;
  $("server-status").textContent = list.data && list.data.length ? "ready" : "no model loaded yet";
  if (apiKey()) $("key-form").hidden = true;
  showError("");
  showAnswerLength();
}

function contextLength() {
  const m = state.models[$("model").value];
  return (m && m.context_length) || 0;
}

// answerLength is the max_tokens of the next request: the person's, or
// the default that leaves room for the next turns.
function answerLength() {
  const n = parseInt(state.settings.maxTokens, 10);
  return n > 0 ? n : defaultMaxTokens(contextLength());
}

function showAnswerLength() {
  const ctx = contextLength(), def = defaultMaxTokens(ctx);
  const f = $("max-tokens");
  if (document.activeElement !== f) f.value = String(answerLength());
  f.placeholder = String(def);
  $("max-tokens-hint").textContent = "default " + def + (ctx ? " (a quarter of the " + ctx + "-token context, at most 512)" : "");
  $("context-info").textContent = ctx
    ? "Context " + ctx + " tokens · answers up to " + answerLength() + " tokens · older turns are left out when the conversation outgrows it"
    : "";
}

// ---- Theme ----------------------------------------------------------------

const THEMES = ["auto", "light", "dark"];

function applyTheme() {
  const t = localStorage.getItem(THEME_STORE) || "auto";
  if (t === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
  const b = $("theme");
  b.textContent = { auto: "◐ Auto", light: "☀ Light", dark: "☾ Dark" }[t];
  b.title = "Theme: " + (t === "auto" ? "follows the system" : t) + " (click to change)";
}

function cycleTheme() {
  const t = localStorage.getItem(THEME_STORE) || "auto";
  const next = THEMES[(THEMES.indexOf(t) + 1) % THEMES.length];
  if (next === "auto") localStorage.removeItem(THEME_STORE);
  else localStorage.setItem(THEME_STORE, next);
  applyTheme();
}

// ---- Messages -------------------------------------------------------------

// openThoughts remembers which thought panels are open while the page runs.
const openThoughts = new WeakMap();

function thoughtLabel(msg, streaming) {
  if (streaming && !msg.content && !(msg.toolCalls || []).length) return "Thinking…";
  return msg.thoughtIsTool ? "Tool thought (reasoning behind the tool call)" : "Thought";
}

function actionButton(label, cls, onClick) {
  const b = el("button", "act " + cls, label);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

// messageView renders message i of conv; streaming marks the one being
// written (no actions, open thought, a cursor).
function messageView(conv, i, streaming) {
  const msg = conv.messages[i];
  const root = el("div", "msg " + msg.role + (streaming ? " streaming" : ""));
  root.dataset.index = String(i);
  root.append(el("div", "role", msg.role === "user" ? "You" : "Assistant"));
  const body = el("div", "body");
  root.append(body);
  if (msg.role === "user") {
    body.textContent = msg.content;
  } else {
    if (msg.thought) {
      const d = el("details", "thought" + (msg.thoughtIsTool ? " tool-thought" : ""));
      d.open = streaming || openThoughts.get(msg) === true;
      d.addEventListener("toggle", () => openThoughts.set(msg, d.open));
      d.append(el("summary", "", thoughtLabel(msg, streaming)), el("div", "thought-text", msg.thought));
      body.append(d);
    }
    const answer = el("div", "answer");
    answer.append(markdown(msg.content || ""));
    if (msg.stopped && !msg.content && !msg.thought && !(msg.toolCalls || []).length) {
      answer.append(el("p", "muted", "Stopped before the answer began."));
    }
    body.append(answer);
    const tools = el("div", "tools");
    if (msg.toolThought) {
      const box = el("div", "tool tool-thought");
      box.append(el("div", "label", "Tool thought (reasoning behind the tool call)"), el("div", "thought-text", msg.toolThought));
      tools.append(box);
    }
    for (const c of msg.toolCalls || []) {
      if (!c) continue;
      const box = el("div", "tool tool-call");
      const pre = el("pre");
      pre.append(el("code", "", c.args));
      box.append(el("div", "label", "Tool call: " + c.name + (c.id ? "  (" + c.id + ")" : "")), pre);
      tools.append(box);
    }
    body.append(tools);
    if (msg.error) body.append(el("div", "error", msg.error));
    const stats = el("div", "stats");
    if (msg.stopped) stats.append(el("span", "stopped", msg.stats ? "stopped · " : "stopped"));
    if (msg.stats) stats.append(document.createTextNode(msg.stats));
    root.append(stats);
  }
  if (!streaming) root.append(actions(conv, i));
  return root;
}

function actions(conv, i) {
  const msg = conv.messages[i];
  const bar = el("div", "actions");
  const text = msg.content || (msg.toolCalls || []).filter(Boolean).map((c) => c.name + "(" + c.args + ")").join("\n");
  if (text) bar.append(actionButton("Copy", "copy", (e) => copy(text, e.currentTarget)));
  if (msg.role === "user") {
    bar.append(actionButton("Edit", "edit", () => editMessage(conv, i)));
  } else if (i === conv.messages.length - 1) {
    bar.append(actionButton("Regenerate", "regenerate", () => regenerate(conv)));
  }
  return bar;
}

async function copy(text, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch (_) {
    // No clipboard API here (a page not in a secure context): the old way.
    const t = el("textarea");
    t.value = text;
    t.setAttribute("readonly", "");
    t.className = "offscreen";
    document.body.append(t);
    t.select();
    try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
    t.remove();
  }
  button.textContent = ok ? "Copied" : "Copy failed";
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

function trimNote(conv) {
  const n = conv.trimmed || 0;
  const note = el("div", "trim-note");
  note.setAttribute("role", "note");
  note.textContent = n + (n === 1 ? " earlier message no longer fits" : " earlier messages no longer fit") +
    " the model's context (" + (conv.trimmedCtx || "?") + " tokens): the last answer was written without " + (n === 1 ? "it" : "them") + ".";
  return note;
}

// renderConversation draws the current conversation.
function renderConversation() {
  const conv = state.convs.current();
  const box = $("messages");
  box.replaceChildren();
  conv.messages.forEach((m, i) => {
    if (conv.trimmed > 0 && i === conv.trimmedAt) box.append(trimNote(conv));
    const v = messageView(conv, i, isLive(conv, i));
    if (conv.trimmed > 0 && i < conv.trimmedAt) v.classList.add("trimmed");
    box.append(v);
  });
  if (!conv.messages.length) box.append(el("div", "empty muted", "Ask anything. Enter sends, Shift+Enter adds a line, Esc stops an answer."));
  $("system").value = conv.system || "";
  box.scrollTop = box.scrollHeight;
  renderList();
}

function renderList() {
  const ul = $("conv-list");
  ul.replaceChildren();
  for (const c of state.convs.sorted()) {
    const li = el("li", "conv" + (c.id === state.convs.currentID ? " current" : ""));
    const open = el("button", "conv-open", c.title || "New conversation");
    open.type = "button";
    open.title = c.title || "New conversation";
    if (c.id === state.convs.currentID) open.setAttribute("aria-current", "true");
    open.addEventListener("click", () => switchTo(c.id));
    const ren = actionButton("✎", "conv-rename", () => rename(li, c));
    ren.setAttribute("aria-label", "Rename");
    ren.title = "Rename";
    const del = actionButton("×", "conv-delete", () => {
      if (!del.classList.contains("confirm")) { // a second click deletes
        del.classList.add("confirm");
        del.textContent = "Delete?";
        return;
      }
      removeConversation(c.id);
    });
    del.setAttribute("aria-label", "Delete");
    del.title = "Delete";
    del.addEventListener("blur", () => { del.classList.remove("confirm"); del.textContent = "×"; });
    li.append(open, ren, del);
    ul.append(li);
  }
}

function rename(li, c) {
  const input = el("input", "conv-title");
  input.value = c.title || "";
  input.setAttribute("aria-label", "Conversation name");
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    if (save && input.value.trim()) state.convs.rename(c.id, input.value.trim());
    renderList();
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); finish(true); }
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); finish(false); }
  });
  input.addEventListener("blur", () => finish(true));
  li.replaceChildren(input);
  input.focus();
  input.select();
}

function stopAnswer() { if (state.controller) state.controller.abort(); }

function switchTo(id) {
  stopAnswer();
  state.convs.select(id);
  showError("");
  renderConversation();
  closeSidebar();
}

function removeConversation(id) {
  stopAnswer();
  state.convs.remove(id);
  renderConversation();
}

function editMessage(conv, i) {
  if (state.controller) return;
  const view = $("messages").querySelector('.msg[data-index="' + i + '"]');
  if (!view) return;
  const box = el("div", "edit-box");
  const ta = el("textarea", "edit-text");
  ta.value = conv.messages[i].content;
  ta.rows = Math.min(10, Math.max(2, ta.value.split("\n").length));
  ta.setAttribute("aria-label", "Edit the message");
  const save = actionButton("Send", "edit-send", () => {
    const text = ta.value;
    if (!text.trim() || state.controller) return;
    try { parseTools(); } catch (err) { showError(err.message); return; }
    conv.messages.splice(i);
    send(conv, text);
  });
  const cancel = actionButton("Cancel", "edit-cancel", () => renderConversation());
  ta.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); save.click(); }
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); cancel.click(); }
  });
  const bar = el("div", "actions");
  bar.append(save, cancel);
  box.append(ta, bar);
  const own = view.querySelector(":scope > .actions");
  if (own) own.remove();
  view.querySelector(".body").replaceWith(box);
  ta.focus();
}

function regenerate(conv) {
  if (state.controller) return;
  const last = conv.messages[conv.messages.length - 1];
  if (!last || last.role !== "assistant") return;
  conv.messages.pop();
  generate(conv);
}

// ---- Sending --------------------------------------------------------------

function parseTools() {
  const tools = $("tools").value.trim();
  if (!tools) return undefined;
  let parsed;
  try { parsed = JSON.parse(tools); } catch (err) { throw new Error("Tools are not valid JSON: " + err.message); }
  if (!Array.isArray(parsed)) throw new Error("Tools must be a JSON array");
  return parsed.length ? parsed : undefined;
}

// apiHistory is what of the conversation the model sees, oldest first:
// answers that failed are left out with the message they answered.
function apiHistory(conv) {
  const out = [], msgs = conv.messages;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i], next = msgs[i + 1];
    if (m.role === "user" && next && (next.role !== "assistant" || next.failed)) continue;
    if (m.role === "assistant" && m.failed) continue;
    out.push({ role: m.role, content: m.content || "", index: i });
  }
  return out;
}

// thoughtText reads a thought field: a string fragment or an array.
function thoughtText(v) {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.filter((x) => typeof x === "string").join("\n\n");
  return "";
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("input").disabled = busy;
  document.body.classList.toggle("busy", busy);
}

// send adds the person's message to conv and asks for the answer; false
// when nothing was sent (the settings are not valid).
function send(conv, text) {
  showError("");
  try { parseTools(); } catch (err) { showError(err.message); return false; }
  conv.messages.push({ role: "user", content: text });
  state.convs.touch(conv, text);
  generate(conv);
  return true;
}

// generate streams the answer to conv's last message.
async function generate(conv) {
  let tools;
  try { tools = parseTools(); } catch (err) { showError(err.message); return; }
  const model = $("model").value;
  const ctx = contextLength(), maxTokens = answerLength();
  const history = apiHistory(conv);
  const msg = { role: "assistant", content: "", thought: "", toolCalls: [] };
  conv.messages.push(msg);
  const index = conv.messages.length - 1;
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const info = { chunks: 0 };
  let fitted, tFirst, t0;
  state.live = { conv, index };
  let pending = false;
  const show = () => {
    pending = false;
    if (state.convs.current() !== conv || !isLive(conv, index)) return;
    const box = $("messages");
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const fresh = messageView(conv, index, true);
    const old = box.querySelector('.msg[data-index="' + index + '"]');
    if (old) old.replaceWith(fresh); else box.append(fresh);
    if (atEnd) box.scrollTop = box.scrollHeight;
  };
  const update = () => { if (!pending) { pending = true; requestAnimationFrame(show); } };
  try {
    for (let attempt = 0; ; attempt++) {
      fitted = fit((conv.system || "").trim(), history, { ctx, maxTokens, k: state.calib.get(model) });
      conv.trimmed = fitted.dropped;
      conv.trimmedAt = fitted.firstIndex;
      conv.trimmedCtx = ctx;
      if (state.convs.current() === conv) renderConversation();
      const body = {
        model: model || undefined,
        messages: fitted.messages,
        temperature: Number($("temperature").value),
        max_tokens: maxTokens,
        stream: true,
        stream_options: { include_usage: true },
      };
      if (tools) body.tools = tools;
      t0 = performance.now();
      const resp = await fetch("/v1/chat/completions", {
        method: "POST", headers: headers(true), body: JSON.stringify(body), signal: controller.signal,
      });
      if (resp.ok) { await readStream(resp, msg, info, update, () => { if (tFirst === undefined) { tFirst = performance.now(); info.ttft = tFirst - t0; } }); break; }
      const e = await errorBody(resp);
      if (e.code === "context_length_exceeded" && attempt < 2 && fitted.dropped < history.length - 1) {
        // The estimate was short: learn from the server's count, fit again.
        const m = /prompt has (\d+) tokens/.exec(e.msg);
        if (m) state.calib.observe(model, Number(m[1]) * 1.1, fitted.chars, fitted.messages.length);
        else state.calib.raise(model);
        continue;
      }
      msg.error = e.msg;
      msg.failed = true;
      if (resp.status === 401) needKey(e.msg);
      break;
    }
  } catch (err) {
    if (err.name === "AbortError") info.stopped = true;
    else { msg.error = "request failed: " + err.message; msg.failed = !msg.content; }
  } finally {
    if (tFirst !== undefined) info.decodeMs = performance.now() - tFirst;
    finish(msg, info);
    state.live = null;
    if (msg.thought) openThoughts.set(msg, true); // it was open while written
    if (info.usage && fitted && !msg.failed) state.calib.observe(model, info.usage.prompt_tokens, fitted.chars, fitted.messages.length);
    state.controller = null;
    setBusy(false);
    state.convs.save();
    if (state.convs.current() === conv) renderConversation();
    $("input").focus();
  }
}

async function readStream(resp, msg, info, update, firstToken) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "", done = false;
  while (!done) {
    const r = await reader.read();
    if (r.done) break;
    buf += dec.decode(r.value, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") { done = true; break; }
      let ch;
      try { ch = JSON.parse(data); } catch (_) { continue; }
      if (ch.error) {
        msg.error = (ch.error.code ? ch.error.code + ": " : "") + (ch.error.message || "error");
        msg.failed = !msg.content;
        update();
        continue;
      }
      info.chunks++;
      const tt = thoughtText(ch.tool_thought);
      if (tt) {
        if (msg.thought && msg.thought.includes(tt.trim())) msg.thoughtIsTool = true;
        else msg.toolThought = (msg.toolThought || "") + tt;
      }
      const c = ch.choices && ch.choices[0];
      const d = (c && c.delta) || {};
      const th = thoughtText(ch.thought) || d.reasoning_content || d.reasoning || "";
      if (th || d.content || d.tool_calls) firstToken();
      if (th) msg.thought += th;
      if (d.content) msg.content += d.content;
      for (const tc of d.tool_calls || []) addToolCall(msg, tc);
      if (c && c.finish_reason) info.finish = c.finish_reason;
      if (ch.usage) info.usage = ch.usage;
      update();
    }
  }
  if (!done && !msg.error) { msg.error = "the stream ended early"; msg.failed = !msg.content; }
}

function addToolCall(msg, d) {
  const i = d.index || 0;
  const c = msg.toolCalls[i] || (msg.toolCalls[i] = { id: "", name: "", args: "" });
  const f = d.function || {};
  if (d.id) c.id = d.id;
  if (f.name) c.name += f.name;
  if (f.arguments) c.args += f.arguments;
}

function finish(msg, info) {
  const parts = [];
  if (info.ttft !== undefined) parts.push("first token " + Math.round(info.ttft) + " ms");
  if (info.usage) {
    const u = info.usage;
    if (info.decodeMs > 0 && u.completion_tokens > 1) {
      parts.push(((u.completion_tokens - 1) / (info.decodeMs / 1000)).toFixed(1) + " tok/s");
    }
    parts.push("usage: " + u.prompt_tokens + " prompt + " + u.completion_tokens + " completion = " + u.total_tokens + " tokens");
  } else if (info.chunks) {
    parts.push(info.chunks + " chunks");
  }
  if (info.finish) parts.push("finish: " + info.finish);
  msg.stats = parts.join(" · ");
  msg.stopped = !!info.stopped;
  if (info.finish) msg.finish = info.finish;
  if (!msg.toolCalls.length) delete msg.toolCalls;
  if (!msg.thought) delete msg.thought;
}

// ---- Layout ---------------------------------------------------------------

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  $("menu").setAttribute("aria-expanded", "false");
}

function toggleSidebar() {
  const open = document.body.classList.toggle("sidebar-open");
  $("menu").setAttribute("aria-expanded", String(open));
}

function init() {
  applyTheme();
  state.convs = new Conversations("asi1d.conversations", showError);
  const temp = $("temperature"), tv = $("temperature-value");
  if (state.settings.temperature !== undefined) temp.value = state.settings.temperature;
  const showTemp = () => { tv.textContent = Number(temp.value).toFixed(2); };
  temp.addEventListener("input", () => { showTemp(); state.settings.temperature = Number(temp.value); saveSettings(); });
  showTemp();
  $("max-tokens").addEventListener("input", () => {
    const n = parseInt($("max-tokens").value, 10);
    state.settings.maxTokens = n > 0 ? n : undefined;
    saveSettings();
    showAnswerLength();
  });
  $("max-tokens").addEventListener("blur", showAnswerLength);
  $("tools").value = state.settings.tools || "";
  $("tools").addEventListener("input", () => { state.settings.tools = $("tools").value; saveSettings(); });
  $("system").addEventListener("input", () => {
    const conv = state.convs.current();
    conv.system = $("system").value;
    state.convs.save();
  });
  $("model").addEventListener("change", () => { state.settings.model = $("model").value; saveSettings(); showAnswerLength(); });
  $("api-key").value = apiKey();
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
    loadModels();
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("input").value;
    if (!text.trim() || state.controller) return;
    $("input").value = "";
    if (send(state.convs.current(), text) === false) $("input").value = text;
  });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    if (state.controller) { e.preventDefault(); stopAnswer(); }
    else closeSidebar();
  });
  $("stop").addEventListener("click", stopAnswer);
  $("clear").addEventListener("click", () => {
    stopAnswer();
    state.convs.create();
    showError("");
    renderConversation();
    closeSidebar();
    $("input").focus();
  });
  $("theme").addEventListener("click", cycleTheme);
  $("menu").addEventListener("click", toggleSidebar);
  $("scrim").addEventListener("click", closeSidebar);
  renderConversation();
  loadModels();
}

init();
