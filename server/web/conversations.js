// Conversations kept in this browser's localStorage, under one key:
// {"current": id, "list": [{id, title, created, updated, system,
// messages: [{role, content, thought, toolCalls, stats, error, ...}],
// trimmed, trimmedAt, trimmedCtx}]}. An empty conversation is not stored.

const TITLE_CHARS = 48;

function newID() {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return "c_" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// titleOf makes a conversation's title from its first message.
export function titleOf(text) {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > TITLE_CHARS ? t.slice(0, TITLE_CHARS - 1) + "…" : t;
}

export class Conversations {
  // onError is called with a message when the browser cannot store them.
  constructor(storeKey, onError) {
    this.storeKey = storeKey;
    this.onError = onError;
    this.list = [];
    this.currentID = "";
    try {
      const saved = JSON.parse(localStorage.getItem(storeKey) || "null");
      if (saved && Array.isArray(saved.list)) {
        this.list = saved.list.filter((c) => c && c.id && Array.isArray(c.messages));
        this.currentID = saved.current || "";
      }
    } catch (_) { /* unreadable: start afresh */ }
    if (!this.byID(this.currentID)) {
      const latest = this.sorted()[0];
      if (latest) this.currentID = latest.id; else this.create();
    }
  }

  byID(id) { return this.list.find((c) => c.id === id); }
  current() { return this.byID(this.currentID); }

  // sorted lists the conversations, the most recently used first.
  sorted() { return [...this.list].sort((a, b) => (b.updated || 0) - (a.updated || 0)); }

  // create starts an empty conversation (reusing the current one if it is
  // empty) and makes it current.
  create() {
    const cur = this.current();
    if (cur && !cur.messages.length) return cur;
    const now = Date.now();
    const c = { id: newID(), title: "", created: now, updated: now, system: cur ? cur.system || "" : "", messages: [] };
    this.list.push(c);
    this.currentID = c.id;
    this.save();
    return c;
  }

  select(id) {
    if (!this.byID(id)) return;
    this.dropEmpty(id);
    this.currentID = id;
    this.save();
  }

  rename(id, title) {
    const c = this.byID(id);
    if (!c) return;
    c.title = title.slice(0, 200);
    c.named = true;
    this.save();
  }

  remove(id) {
    this.list = this.list.filter((c) => c.id !== id);
    if (this.currentID === id || !this.current()) {
      const latest = this.sorted()[0];
      this.currentID = latest ? latest.id : "";
      if (!latest) this.create();
    }
    this.save();
  }

  // touch marks conv used now and names it after text if it has no name.
  touch(conv, text) {
    conv.updated = Date.now();
    if (!conv.title && text) conv.title = titleOf(text);
    this.save();
  }

  // dropEmpty forgets empty conversations other than keep.
  dropEmpty(keep) {
    this.list = this.list.filter((c) => c.id === keep || c.messages.length || c.named);
  }

  save() {
    const stored = this.list.filter((c) => c.messages.length || c.named);
    try {
      localStorage.setItem(this.storeKey, JSON.stringify({ current: this.currentID, list: stored }));
    } catch (err) {
      this.onError("Could not keep the conversations in this browser (" + err.name + "): delete some old ones");
    }
  }
}
