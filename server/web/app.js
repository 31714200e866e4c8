// asi1d playground: a chat page for the server that serves it. Plain
// JavaScript, no dependencies, nothing loaded from another host. Model
// output is only ever put into the page as text nodes (textContent /
// createTextNode): the small Markdown renderer below builds DOM elements
// and never assigns HTML strings.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "asi1d.apiKey";

const state = {
  history: [],      // {role, content} sent with each request
  controller: null, // AbortController of the answer being written
};

function apiKey() { return sessionStorage.getItem(KEY_STORE) || ""; }

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const k = apiKey();
  if (k) h["Authorization"] = "Bearer " + k;
  return h;
}

// errorText reads the contract's error body: {"error":{"message",...}}.
async function errorText(resp) {
  let msg = resp.status + " " + resp.statusText;
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) {
      msg = resp.status + " " + (body.error.code ? body.error.code + ": " : "") + body.error.message;
    }
  } catch (_) { /* not JSON: keep the status line */ }
  return msg;
}

function showError(text) {
  const e = $("error");
  e.textContent = text;
  e.hidden = !text;
}

function needKey(message) {
  $("key-form").hidden = false;
  $("api-key").focus();
  if (message) showError(message + (apiKey() ? " (the key was refused)" : " (this server needs an API key)"));
}

async function loadModels() {
  const sel = $("model");
  let resp;
  try {
    resp = await fetch("/v1/models", { headers: headers(false) });
  } catch (err) {
    $("server-status").textContent = "server unreachable";
    return;
  }
  if (resp.status === 401) { needKey(await errorText(resp)); return; }
  if (!resp.ok) { showError(await errorText(resp)); return; }
  const list = await resp.json();
  const prev = sel.value;
  sel.replaceChildren();
  let firstLoaded = "";
  for (const m of list.data || []) {
    const o = document.createElement("option");
    o.value = m.id;
    let note = m.context_length ? m.context_length + " ctx" : "";
    if (m.status === "unusable") { note = "unusable"; o.disabled = true; o.title = m.error || ""; }
    else if (m.loaded === false) note += (note ? ", " : "") + "loads on first use";
    else if (!firstLoaded) firstLoaded = m.id;
    o.textContent = m.id + (note ? " (" + note + ")" : "");
    sel.append(o);
  }
  if (prev) sel.value = prev;
  else if (firstLoaded) sel.value = firstLoaded;
  $("server-status").textContent = list.data && list.data.length ? "ready" : "no model loaded yet";
  if (apiKey()) $("key-form").hidden = true;
  showError("");
}

// ---- Markdown, rendered as DOM nodes -------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// inline renders `code`, **bold**, *italic* / _italic_ and [text](http…)
// links into parent.
function inline(parent, text) {
  const re = /(`+)([\s\S]*?)\1|\*\*([^*]+)\*\*|(?<![\w*])\*([^*\s][^*]*)\*|(?<!\w)_([^_\s][^_]*)_(?!\w)|\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g;
  let last = 0, m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    if (m[1]) parent.append(el("code", "", m[2]));
    else if (m[3] !== undefined) inline(parent.appendChild(el("strong")), m[3]);
    else if (m[4] !== undefined) inline(parent.appendChild(el("em")), m[4]);
    else if (m[5] !== undefined) inline(parent.appendChild(el("em")), m[5]);
    else {
      const a = el("a", "", m[6]);
      a.href = m[7]; // only http(s) URLs match the pattern
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parent.append(a);
    }
    last = re.lastIndex;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

// markdown renders text (fenced code, headings, lists, paragraphs) into a
// fragment. An unclosed fence (still streaming) is shown as code too.
function markdown(text) {
  const frag = document.createDocumentFragment();
  const lines = text.split("\n");
  let para = [], list = null;
  const flush = () => {
    if (para.length) { const p = el("p"); inline(p, para.join("\n")); frag.append(p); para = []; }
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)/);
    if (fence) {
      flush();
      const body = [];
      for (i++; i < lines.length && !lines[i].trim().startsWith(fence[1]); i++) body.push(lines[i]);
      const pre = el("pre"), code = el("code", "", body.join("\n"));
      if (fence[2]) code.dataset.lang = fence[2];
      pre.append(code);
      frag.append(pre);
      continue;
    }
    const h = line.match(/^(#{1,6})\s+(.*)$/);
    if (h) { flush(); const e = el("h" + Math.min(h[1].length, 3)); inline(e, h[2]); frag.append(e); continue; }
    const li = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
    if (li) {
      if (para.length) { const keep = list; flush(); list = keep; }
      const ordered = /\d/.test(li[1]);
      if (!list || (list.tagName === "OL") !== ordered) { list = el(ordered ? "ol" : "ul"); frag.append(list); }
      const item = el("li"); inline(item, li[2]); list.append(item);
      continue;
    }
    if (line.trim() === "") { flush(); continue; }
    if (list) list = null;
    para.push(line);
  }
  flush();
  return frag;
}

// ---- Conversation ---------------------------------------------------------

function addUser(text) {
  const m = el("div", "msg user");
  m.append(el("div", "role", "You"), el("div", "body", text));
  $("messages").append(m);
}

// Answer is the view of one assistant message being streamed.
class Answer {
  constructor() {
    this.root = el("div", "msg assistant streaming");
    this.body = el("div", "body");
    this.root.append(el("div", "role", "Assistant"), this.body);
    this.thought = null; // <details> created on the first reasoning fragment
    this.thoughtText = "";
    this.content = "";
    this.answer = el("div", "answer");
    this.tools = el("div", "tools");
    this.stats = el("div", "stats");
    this.body.append(this.answer, this.tools);
    this.root.append(this.stats);
    this.toolCalls = [];
    this.pending = false;
    $("messages").append(this.root);
  }
  addThought(t) {
    if (!this.thought) {
      this.thought = el("details", "thought");
      this.thought.open = true;
      this.thoughtSummary = el("summary", "", "Thinking…");
      this.thoughtBody = el("div", "thought-text");
      this.thought.append(this.thoughtSummary, this.thoughtBody);
      this.body.insertBefore(this.thought, this.answer);
    }
    this.thoughtText += t;
    this.thoughtBody.textContent = this.thoughtText;
    this.scroll();
  }
  addContent(t) {
    if (this.thought && !this.content) this.thoughtSummary.textContent = this.thoughtLabel();
    this.content += t;
    if (!this.pending) { // re-render at most once a frame
      this.pending = true;
      requestAnimationFrame(() => this.render());
    }
  }
  render() {
    this.pending = false;
    this.answer.replaceChildren(markdown(this.content));
    this.scroll();
  }
  // addToolThought marks the reasoning behind tool calls (ASI1
  // tool_thought): the streamed thought panel is relabelled when it holds
  // that reasoning, or the text gets its own box.
  addToolThought(t) {
    if (this.thought && this.thoughtText.includes(t.trim())) {
      this.toolThought = true;
      this.thought.classList.add("tool-thought");
      this.thoughtSummary.textContent = this.thoughtLabel();
      return;
    }
    const box = el("div", "tool tool-thought");
    box.append(el("div", "label", "Tool thought (reasoning behind the tool call)"), el("div", "thought-text", t));
    this.tools.append(box);
  }
  thoughtLabel() {
    return this.toolThought ? "Tool thought (reasoning behind the tool call)" : "Thought";
  }
  addToolCall(d) {
    let c = this.toolCalls[d.index || 0];
    if (!c) {
      c = this.toolCalls[d.index || 0] = { name: "", args: "", box: el("div", "tool tool-call") };
      c.label = el("div", "label", "Tool call");
      c.code = el("code");
      const pre = el("pre");
      pre.append(c.code);
      c.box.append(c.label, pre);
      this.tools.append(c.box);
    }
    const f = d.function || {};
    if (d.id) c.id = d.id;
    if (f.name) c.name += f.name;
    if (f.arguments) c.args += f.arguments;
    c.label.textContent = "Tool call: " + c.name + (c.id ? "  (" + c.id + ")" : "");
    c.code.textContent = c.args;
  }
  error(text) {
    this.body.append(el("div", "error", text));
  }
  finish(info) {
    this.render();
    this.root.classList.remove("streaming");
    if (this.thought) this.thoughtSummary.textContent = this.thoughtLabel();
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
    this.stats.replaceChildren();
    if (info.stopped) this.stats.append(el("span", "stopped", "stopped · "));
    this.stats.append(document.createTextNode(parts.join(" · ")));
  }
  scroll() {
    const box = $("messages");
    box.scrollTop = box.scrollHeight;
  }
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("input").disabled = busy;
}

function requestBody(userText) {
  const msgs = [];
  const sys = $("system").value.trim();
  if (sys) msgs.push({ role: "system", content: sys });
  msgs.push(...state.history, { role: "user", content: userText });
  const body = {
    model: $("model").value || undefined,
    messages: msgs,
    temperature: Number($("temperature").value),
    stream: true,
    stream_options: { include_usage: true },
  };
  const max = parseInt($("max-tokens").value, 10);
  if (max > 0) body.max_tokens = max;
  const tools = $("tools").value.trim();
  if (tools) {
    let parsed;
    try { parsed = JSON.parse(tools); } catch (err) { throw new Error("Tools are not valid JSON: " + err.message); }
    if (!Array.isArray(parsed)) throw new Error("Tools must be a JSON array");
    if (parsed.length) body.tools = parsed;
  }
  return body;
}

// thoughtText reads a thought field: a string fragment or an array.
function thoughtText(v) {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.filter((x) => typeof x === "string").join("\n\n");
  return "";
}

async function send(userText) {
  showError("");
  let body;
  try { body = requestBody(userText); } catch (err) { showError(err.message); return false; }
  addUser(userText);
  const view = new Answer();
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const t0 = performance.now();
  const info = { chunks: 0 };
  let tFirst;
  let failed = false;
  try {
    const resp = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(true),
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!resp.ok) {
      const msg = await errorText(resp);
      view.error(msg);
      if (resp.status === 401) needKey(msg);
      failed = true;
      return;
    }
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    let done = false;
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
          view.error((ch.error.code ? ch.error.code + ": " : "") + (ch.error.message || "error"));
          failed = true;
          continue;
        }
        info.chunks++;
        const tt = thoughtText(ch.tool_thought);
        if (tt) view.addToolThought(tt);
        const c = ch.choices && ch.choices[0];
        const d = (c && c.delta) || {};
        const th = thoughtText(ch.thought) || d.reasoning_content || d.reasoning || "";
        const hasToken = th || d.content || d.tool_calls;
        if (hasToken && tFirst === undefined) { tFirst = performance.now(); info.ttft = tFirst - t0; }
        if (th) view.addThought(th);
        if (d.content) view.addContent(d.content);
        for (const tc of d.tool_calls || []) view.addToolCall(tc);
        if (c && c.finish_reason) info.finish = c.finish_reason;
        if (ch.usage) info.usage = ch.usage;
      }
    }
    if (!done && !failed) { view.error("the stream ended early"); failed = true; }
  } catch (err) {
    if (err.name === "AbortError") info.stopped = true;
    else { view.error("request failed: " + err.message); failed = true; }
  } finally {
    if (tFirst !== undefined) info.decodeMs = performance.now() - tFirst;
    view.finish(info);
    state.controller = null;
    setBusy(false);
    $("input").focus();
    if (!failed) {
      state.history.push({ role: "user", content: userText }, { role: "assistant", content: view.content });
    }
  }
}

function init() {
  const temp = $("temperature"), tv = $("temperature-value");
  const showTemp = () => { tv.textContent = Number(temp.value).toFixed(2); };
  temp.addEventListener("input", showTemp);
  showTemp();
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
    send(text).then((sent) => { if (sent === false) $("input").value = text; });
  });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => { if (state.controller) state.controller.abort(); });
  $("clear").addEventListener("click", () => {
    if (state.controller) state.controller.abort();
    state.history = [];
    $("messages").replaceChildren();
    showError("");
  });
  loadModels();
}

init();
