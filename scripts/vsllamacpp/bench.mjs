// Raw prefill and decode speed of llama.cpp's own prebuilt CPU library
// (node-llama-cpp's), the counterpart of `asi1d bench compare`'s
// raw_prefill_tok_s and raw_decode_tok_s: one sequence, a prompt of N tokens
// evaluated in batches, then M tokens decoded one at a time, greedy.
//
//   node bench.mjs MODEL.gguf THREADS PROMPT_TOKENS DECODE_TOKENS
//
// Prints one JSON line: {"prefill_tok_s":..,"decode_tok_s":..,"variant":..}.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [model, threads, nPrompt, nDecode] = process.argv.slice(2);
const T = Number(threads), P = Number(nPrompt), D = Number(nDecode);
let variant = "";
const llama = await getLlama({
  gpu: false, build: "never", logLevel: LlamaLogLevel.debug,
  logger: (level, text) => {
    const m = /load_backend: loaded CPU backend from (\S+)/.exec(text);
    if (m) variant = m[1].replace(/.*libggml-cpu-/, "").replace(/\.so$/, "");
  },
});
const m = await llama.loadModel({ modelPath: model });
const ctx = await m.createContext({ contextSize: P + D + 16, threads: T, batchSize: 512, sequences: 1 });
const seq = ctx.getSequence();
// A prompt of P tokens: the vocabulary's ordinary tokens in a fixed order.
const prompt = [];
for (let i = 0; prompt.length < P; i++) prompt.push(1000 + ((i * 7919) % 20000));
const t0 = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(prompt);
const t1 = performance.now();
let n = 0;
const t2 = performance.now();
for await (const tok of seq.evaluate([prompt[P - 1]], { temperature: 0 })) {
  if (++n >= D) break;
}
const t3 = performance.now();
console.log(JSON.stringify({
  prefill_tok_s: P / ((t1 - t0) / 1000),
  decode_tok_s: n / ((t3 - t2) / 1000),
  variant,
}));
await ctx.dispose(); await m.dispose(); await llama.dispose();
