#!/usr/bin/env bash
# scripts/measure.sh: the measurement pass behind the issue #3 and #5 closing
# notes, on the small Q8_0 synth model. Run it on a quiet machine: every
# number is a side-by-side ratio, but ggml's spinning threads make any other
# CPU load show. Results (text and JSON) go to $OUT (default /tmp/asi1d-measure).
#
#   bash scripts/measure.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${OUT:-/tmp/asi1d-measure}
mkdir -p "$out"
make build >/dev/null
B=./bin/asi1d
M=$out/small-q8_0.gguf
[ -f "$M" ] || $B synth --preset small --type q8_0 --out "$M"

# Single stream and 16 streams: server vs raw engine loop (T1, T3, scaling).
$B bench compare --model "$M" --threads 2 --concurrency 1,16 --prompt-tokens 128 --max-tokens 256 --runs 5 \
	--json "$out/compare.json" >"$out/compare.txt" 2>&1

serve() { # port, extra flags...
	local port=$1; shift
	$B serve --model "$M" --addr 127.0.0.1:"$port" --threads 2 --log-level warn "$@" >"$out/serve-$port.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do curl -sf "127.0.0.1:$port/ready" >/dev/null && return; sleep 0.2; done
	echo "server on $port did not become ready" >&2; exit 1
}

# Chunked prefill: 8 streams while a 2,000-token prompt prefills (T5, T6).
serve 18091 --parallel 10 --ctx 25600
$B bench scenario prefill --url http://127.0.0.1:18091 --long-tokens 2000 --logit-bias 2=-100 --rounds 3 \
	--progress=false --json "$out/prefill.json" >"$out/prefill.txt" 2>&1
# The same with streams that restart every 256 tokens: their depth, and so
# their own step time, stays about the same from window to window.
$B bench scenario prefill --url http://127.0.0.1:18091 --long-tokens 2000 --logit-bias 2=-100 --rounds 3 \
	--stream-max-tokens 256 --progress=false --json "$out/prefill-256.json" >"$out/prefill-256.txt" 2>&1
kill -9 "$pid"

# Prefix reuse over a 5-turn chat (T7) and overload (T14).
serve 18092 --parallel 8 --ctx 20480
$B bench scenario chat --url http://127.0.0.1:18092 --logit-bias 2=-100 --progress=false \
	--json "$out/chat.json" >"$out/chat.txt" 2>&1
$B bench scenario overload --url http://127.0.0.1:18092 --logit-bias 2=-100 --fill-max-tokens 128 --progress=false \
	--json "$out/overload.json" >"$out/overload.txt" 2>&1
kill -9 "$pid"

# Slot layout: after a burst has warmed all 16 slots' caches, 6 streams of
# distinct prompts. Least-recently-used ties used to spread them over the
# slots, and llama.cpp computes a batch in one part per run of consecutive
# sequences (BenchmarkSeqLayout below).
serve 18093 --parallel 16 --ctx 8192
$B bench --url http://127.0.0.1:18093 --concurrency 16 --requests 16 --prompt-tokens 64 --max-tokens 4 --progress=false >/dev/null 2>&1
$B bench --url http://127.0.0.1:18093 --concurrency 6 --requests 30 --prompt-tokens 64 --max-tokens 128 --logit-bias 2=-100 \
	--progress=false --json "$out/slots.json" >"$out/slots.txt" 2>&1
kill -9 "$pid"

# Engine benchmarks: grammar cost (#5), flash attention at depth, slot layout.
eval "$(bash scripts/env.sh)"
ASI1D_BENCH_MODEL=$M go test -run '^$' -bench 'Grammar' -count 3 ./engine/llamacpp >"$out/grammar.txt" 2>&1
for fa in on off; do
	ASI1D_BENCH_FA=$fa ASI1D_BENCH_MODEL=$M go test -run '^$' -bench 'ChunkAtDepth|Decode' -benchtime 20x \
		./engine/llamacpp >"$out/depth-fa-$fa.txt" 2>&1
done
ASI1D_BENCH_MODEL=$M ASI1D_BENCH_POLL=0 go test -run '^$' -bench 'SeqLayout' -count 3 ./engine/llamacpp >"$out/seqlayout.txt" 2>&1
echo "results in $out"
