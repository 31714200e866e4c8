// Fitting a conversation into the model's context. The page cannot
// tokenize, so it estimates: every message costs a few tokens of chat
// template, and its text costs `k` tokens a character. k starts at 1/3 (a
// character budget that holds for most vocabularies) and is calibrated
// per model from the prompt_tokens the server reports for what the page
// sent (usage of a finished answer, or the count in a
// context_length_exceeded error).

export const PER_MESSAGE = 8;     // template tokens around one message
export const DEFAULT_K = 1 / 3;   // tokens per character before calibration
const SAFETY = 1.15;              // calibrated k is raised by this much

// defaultMaxTokens is the answer length the page asks for when the person
// set none: at most 512 and at most a quarter of the context, so that a
// long answer still leaves room for the next turns.
export function defaultMaxTokens(ctx) {
  if (!(ctx > 0)) return 512;
  return Math.max(16, Math.min(512, Math.floor(ctx / 4)));
}

// margin is the slack kept free besides the answer: estimates are rough.
export function margin(ctx) { return Math.max(16, Math.ceil(ctx * 0.05)); }

export function estimate(msgs, k) {
  let n = 0;
  for (const m of msgs) n += PER_MESSAGE + Math.ceil((m.content || "").length * k);
  return n;
}

// fit chooses what of a conversation is sent. system is the system prompt
// ("" for none); history the turns as {role, content, index}, the last one
// the new user message. The oldest turns go first, whole (a user message
// with the answers after it), until the estimate fits the context less the
// answer and a margin; the system prompt and the last user message always
// stay. It returns the messages to send, how many history messages were
// left out, the index of the first one kept, and the estimate.
export function fit(system, history, { ctx, maxTokens, k }) {
  const head = system ? [{ role: "system", content: system }] : [];
  let start = 0;
  if (ctx > 0) {
    const budget = ctx - maxTokens - margin(ctx);
    while (start < history.length - 1 && estimate(head.concat(history.slice(start)), k) > budget) {
      start++;
      // Drop whole turns: the kept history starts with a user message.
      while (start < history.length - 1 && history[start].role !== "user") start++;
    }
  }
  const kept = history.slice(start);
  const messages = head.concat(kept.map((m) => ({ role: m.role, content: m.content })));
  return {
    messages,
    dropped: start,
    firstIndex: kept.length ? kept[0].index : 0,
    chars: messages.reduce((n, m) => n + m.content.length, 0),
    estimate: estimate(messages, k),
  };
}

// Calibration keeps k per model, in localStorage.
export class Calibration {
  constructor(storeKey) {
    this.storeKey = storeKey;
    try { this.k = JSON.parse(localStorage.getItem(storeKey) || "{}") || {}; } catch (_) { this.k = {}; }
  }
  get(model) { return this.k[model] || DEFAULT_K; }
  // observe learns from a prompt of promptTokens tokens that was
  // messageCount messages of chars characters. Short prompts, where the
  // template dominates, teach nothing.
  observe(model, promptTokens, chars, messageCount) {
    if (!(promptTokens > 0) || chars < 48) return;
    const k = (promptTokens - PER_MESSAGE * messageCount) / chars;
    if (!(k > 0)) return;
    this.k[model] = Math.min(4, Math.max(0.05, k * SAFETY));
    try { localStorage.setItem(this.storeKey, JSON.stringify(this.k)); } catch (_) { /* full: keep it in memory */ }
  }
  // raise makes the estimate of model more cautious after the server found
  // a prompt too long and did not say by how much.
  raise(model) { this.k[model] = Math.min(4, this.get(model) * 2); }
}
