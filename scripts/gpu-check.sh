#!/usr/bin/env bash
# scripts/gpu-check.sh: check asi1d on a GPU machine that has no Go and no
# network (CUDA toolkit, CMake and Ninja only), and write one report.
#
#   scripts/gpu-check.sh prepare
#       On a machine with Go (make gpu-check-prepare does this): fills the
#       ignored folder .gpu-check/ with everything the run needs: bin/asi1d
#       (CPU_TARGET=x86-64-v3), the engine's test binary (go test -c), the
#       ggml sources and root CMakeLists.txt of the pinned ollama module, and
#       the stories260K test model. Prints the sizes (all of it must stay
#       under the device tool's 64 MiB carry limit).
#
#   scripts/gpu-check.sh run OUTDIR [--gpu-layers N] [--quick] [--no-build]
#                                   [--budget SECONDS] [--arch A]
#       On the GPU machine, from the checkout root with .gpu-check/ in it.
#       Builds ggml's CUDA backend (scripts/build-gpu.sh, sm_90 by default),
#       then, while the time budget (default 470 s) lasts:
#         1. the stories260K golden through the server, streamed and not,
#            and /metrics' device lines;
#         2. the open/close/reopen test (engine/llamacpp TestOpenCloseReopen)
#            with all layers on the GPU, C backtraces on a crash;
#         3. asi1d bench compare at 1, 16, 64 and 256 streams on synth 1b
#            Q4_0, per-sequence KV and --kv-unified;
#         4. the serving run of issue 10 (serve --parallel 64 --ctx 65536,
#            bench --concurrency 64 --requests 128, 256+256 tokens): TTFT
#            p90 and ITL p99;
#         5. the same compare on synth 8b (Llama-3-8B-shaped) Q4_0, made
#            here by the shipped binary (about 4.3 GiB).
#       OUTDIR/report.md is appended to as each step ends (a run cut short
#       keeps what it did); OUTDIR/run.log has every command's output.
#       --gpu-layers 0 --quick --no-build is the CPU dry run: tiny models,
#       short runs, no CMake.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pack="$root/.gpu-check"

REF_TEXT=$', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily\'s mom said'

prepare() {
	cd "$root"
	eval "$(ASI1D_CPU_TARGET=x86-64-v3 bash scripts/env.sh)"
	rm -rf "$pack"
	mkdir -p "$pack/models"
	make --no-print-directory build CPU_TARGET=x86-64-v3 >&2
	gzip -6 -c bin/asi1d >"$pack/asi1d.gz"
	go test -c -o "$pack/llamacpp.test" ./engine/llamacpp >&2
	gzip -6 "$pack/llamacpp.test"
	local mod
	mod=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)
	# Only what the CPU and CUDA CMake targets read.
	tar -C "$mod" -czf "$pack/ggml-src.tar.gz" --exclude='*.go' \
		--exclude=ml/backend/ggml/ggml/src/ggml-metal --exclude=ml/backend/ggml/ggml/src/ggml-vulkan \
		--exclude=ml/backend/ggml/ggml/src/ggml-hip --exclude=ml/backend/ggml/ggml/src/ggml-blas \
		CMakeLists.txt ml/backend/ggml/ggml
	local model
	model=$(ASI1D_TEST_MODELS="${ASI1D_TEST_MODELS:-}" bash -c 'if [ -n "$ASI1D_TEST_MODELS" ]; then echo "$ASI1D_TEST_MODELS/stories260K.gguf"; else echo models/stories260K/stories260K.gguf; fi')
	cp "$model" "$pack/models/"
	{
		echo "commit $(git describe --always --dirty 2>/dev/null || echo unknown)"
		echo "ollama $(basename "$mod")"
		echo "prepared $(date -u +%FT%TZ)"
	} >"$pack/MANIFEST"
	du -ab "$pack" | sort -n
	local total
	total=$(du -sb "$pack" | cut -f1)
	echo "total $((total / 1048576)) MiB in $pack (carry limit 64 MiB with the checkout)"
	[ "$total" -lt $((56 << 20)) ] || { echo "gpu-check prepare: $pack is too big to carry" >&2; exit 1; }
}

# ---- run ----

out="" gl=999 quick=0 build=1 budget=470 arch=90
t0=$(date +%s)
R="" LOG=""

left() { echo $((t0 + budget - $(date +%s))); }
say() { printf '%s\n' "$*" | tee -a "$R"; }
# step NAME NEED CMD...: runs CMD when NEED seconds are left, with its
# output in run.log and its verdict in the report.
step() {
	local name=$1 need=$2
	shift 2
	local l
	l=$(left)
	if [ "$l" -lt "$need" ]; then
		say "- $name: SKIPPED ($l s left of the budget, needs about $need)"
		return 0
	fi
	echo "=== $name ($(date -u +%T), $l s left)" >>"$LOG"
	local s rc=0
	s=$(date +%s)
	# timeout runs the step in its own process group and kills all of it
	# (a server the step started too) when the budget is spent.
	timeout --kill-after=5 "$l" bash -c '"$@"' _ "$@" >>"$LOG" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		say "- $name: ok ($(($(date +%s) - s)) s)"
	else
		say "- $name: FAILED rc=$rc ($(($(date +%s) - s)) s; see run.log)"
	fi
	return 0
}

W=""
srv_pid=""
stop_server() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
		srv_pid=""
	fi
}
trap stop_server EXIT

# start_server PORT LOGFILE ARGS...: serve in the background, wait for /health.
start_server() {
	local port=$1 log=$2
	shift 2
	ASI1D_C_BACKTRACE=1 GOTRACEBACK=crash "$W/bin/asi1d" serve --addr "127.0.0.1:$port" "$@" >"$log" 2>&1 &
	srv_pid=$!
	python3 - "$port" "$srv_pid" <<'EOF'
import sys, time, urllib.request, os
port, pid = sys.argv[1], int(sys.argv[2])
for _ in range(1200):
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("server exited")
    try:
        if urllib.request.urlopen("http://127.0.0.1:%s/health" % port, timeout=2).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.25)
sys.exit("server not healthy after 300 s")
EOF
}

golden() {
	local port=18181 log="$W/serve-golden.log"
	start_server "$port" "$log" --model "$W/models/stories260K.gguf" --gpu-layers "$gl" --parallel 2 --ctx 1024 || { cat "$log"; return 1; }
	local rc=0
	REF_TEXT="$REF_TEXT" python3 - "$port" <<'EOF' || rc=$?
import json, os, sys, urllib.request
url = "http://127.0.0.1:%s" % sys.argv[1]
ref = os.environ["REF_TEXT"]
def post(stream):
    body = json.dumps({"model": "asi1-mini", "temperature": 0, "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": "Once upon a time"}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=120)
plain = json.load(post(False))["choices"][0]["message"]["content"]
streamed = ""
for raw in post(True):
    line = raw.decode().strip()
    if line.startswith("data: ") and line != "data: [DONE]":
        for c in json.loads(line[6:]).get("choices", []):
            streamed += (c.get("delta") or {}).get("content") or ""
ok = True
for name, got in (("non-streamed", plain), ("streamed", streamed)):
    print("golden %s: %s" % (name, "MATCH" if got == ref else "DIFFERS: %r" % got))
    ok = ok and got == ref
metrics = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
dev = [l for l in metrics.splitlines() if l.startswith("asi1_device_memory")]
print("\n".join(dev) if dev else "no asi1_device_memory lines in /metrics")
sys.exit(0 if ok and dev else 1)
EOF
	stop_server
	grep -E 'device |layer placement|load_tensors|using device' "$log" || true
	return "$rc"
}

reopen() {
	# The test binary reads the model from ASI1D_TEST_MODELS and offloads
	# ASI1D_TEST_GPU_LAYERS layers; it runs from its package folder.
	(cd "$root/engine/llamacpp" && ASI1D_TEST_MODELS="$W/models" ASI1D_TEST_GPU_LAYERS="$gl" \
		ASI1D_C_BACKTRACE=1 GOTRACEBACK=crash OLLAMA_LIBRARY_PATH="$W/lib/ollama" \
		"$W/llamacpp.test" -test.run '^TestOpenCloseReopen$' -test.count=1 -test.v)
}

synth() { # synth PRESET
	local f="$W/models/$1-q4_0.gguf"
	[ -f "$f" ] || "$W/bin/asi1d" synth --preset "$1" --type q4_0 --ctx 8192 --out "$f"
	ls -l "$f"
}

compare() { # compare PRESET split|unified
	local extra=() conc="1,16,64,256" mt=128 pt=128 model="$W/models/$1-q4_0.gguf"
	[ "$2" = unified ] && extra+=(--kv-unified)
	if [ "$quick" = 1 ]; then conc="1,4"; mt=16; pt=32; fi
	ASI1D_C_BACKTRACE=1 GOTRACEBACK=crash "$W/bin/asi1d" bench compare --model "$model" --gpu-layers "$gl" \
		--concurrency "$conc" --prompt-tokens "$pt" --max-tokens "$mt" --runs 1 "${extra[@]}" \
		--json "$W/compare-$1-$2.json" | tee "$W/compare-$1-$2.txt"
	{ echo; echo "#### bench compare $1 Q4_0, KV $2"; echo '```'; cat "$W/compare-$1-$2.txt"; echo '```'; } >>"$R"
}

serving() { # the serving run of issue 10 on synth 1b
	local port=18182 log="$W/serve-64.log" par=64 ctx=65536 req=128 pt=256 mt=256
	if [ "$quick" = 1 ]; then par=4; ctx=1024; req=8; pt=32; mt=16; fi
	start_server "$port" "$log" --model "$W/models/1b-q4_0.gguf" --gpu-layers "$gl" --parallel "$par" --ctx "$ctx" || { cat "$log"; return 1; }
	local rc=0
	"$W/bin/asi1d" bench --url "http://127.0.0.1:$port" --concurrency "$par" --requests "$req" --prompt-tokens "$pt" \
		--max-tokens "$mt" --progress=false --json "$W/serve-64.json" >"$W/serve-64.txt" 2>&1 || rc=$?
	stop_server
	cat "$W/serve-64.txt"
	{ echo; echo "#### serve --parallel $par --ctx $ctx; bench --concurrency $par --requests $req --prompt-tokens $pt --max-tokens $mt (TTFT p90 and ITL p99 in the table)"
		echo '```'; cat "$W/serve-64.txt"; echo '```'; } >>"$R"
	return "$rc"
}

run_check() {
	out=${1:?usage: gpu-check.sh run OUTDIR [options]}
	shift
	while [ $# -gt 0 ]; do
		case "$1" in
		--gpu-layers) gl=$2; shift 2 ;;
		--quick) quick=1; shift ;;
		--no-build) build=0; shift ;;
		--budget) budget=$2; shift 2 ;;
		--arch) arch=$2; shift 2 ;;
		*) echo "gpu-check.sh: unknown option $1" >&2; exit 2 ;;
		esac
	done
	[ -f "$pack/asi1d.gz" ] || { echo "gpu-check.sh: no $pack/asi1d.gz: run 'make gpu-check-prepare' on a machine with Go first" >&2; exit 1; }
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	R="$out/report.md" LOG="$out/run.log"
	: >"$R"
	: >"$LOG"
	W=${GPU_CHECK_WORK:-/tmp/asi1d-gpu-check}
	mkdir -p "$W/bin" "$W/models"
	gunzip -c "$pack/asi1d.gz" >"$W/bin/asi1d"
	gunzip -c "$pack/llamacpp.test.gz" >"$W/llamacpp.test"
	chmod +x "$W/bin/asi1d" "$W/llamacpp.test"
	cp "$pack/models/stories260K.gguf" "$W/models/"

	export W gl quick R LOG root REF_TEXT pack arch
	export -f say stop_server start_server golden reopen synth compare serving

	say "# asi1d GPU check ($(date -u +%FT%TZ))"
	say ""
	say "$(tr '\n' ' ' <"$pack/MANIFEST")"
	say "gpu-layers $gl, quick $quick, budget $budget s, machine: $(nproc) cores, $(uname -r)"
	say "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo none)"
	say "nvcc: $( (nvcc --version 2>/dev/null || /usr/local/cuda/bin/nvcc --version 2>/dev/null) | tail -1 || echo none); cmake: $(cmake --version 2>/dev/null | head -1 || echo none); ninja: $(ninja --version 2>/dev/null || echo none)"
	say ""
	say "## Steps"

	if [ "$build" = 1 ]; then
		mkdir -p "$W/src"
		tar -C "$W/src" -xzf "$pack/ggml-src.tar.gz"
		step "build ggml-cuda (sm_$arch)" 200 bash "$root/scripts/build-gpu.sh" --src "$W/src" --prefix "$W" \
			--arch "$arch" --jobs "$(nproc)" --build "$W/cuda-build"
		say "  lib/ollama: $(cd "$W/lib/ollama" 2>/dev/null && ls | tr '\n' ' ')"
		say "  $(readelf -d "$W/lib/ollama/libggml-cuda.so" 2>/dev/null | grep -E 'RUNPATH|RPATH' | tr -s ' ' || echo 'no RUNPATH')"
	fi
	step "golden stories260K via the server, streamed and not" 30 golden
	grep -E '^golden|^asi1_device' "$LOG" | tail -6 | sed 's/^/  /' | tee -a "$R" || true
	step "open/close/reopen test" 90 reopen
	grep -E -- '^--- (PASS|FAIL)|fatal signal|SIGSEGV' "$LOG" | tail -4 | sed 's/^/  /' | tee -a "$R" || true

	local small=1b big=8b
	if [ "$quick" = 1 ]; then small=tiny big=small; fi
	step "synth $small Q4_0" 30 synth "$small"
	if [ "$small" != 1b ]; then ln -sf "$W/models/$small-q4_0.gguf" "$W/models/1b-q4_0.gguf"; fi
	step "bench compare $small per-sequence KV" 60 compare "$small" split
	step "bench compare $small --kv-unified" 60 compare "$small" unified
	step "serving run (issue 10)" 60 serving
	step "synth $big Q4_0" 60 synth "$big"
	step "bench compare $big per-sequence KV" 90 compare "$big" split
	step "bench compare $big --kv-unified" 90 compare "$big" unified
	say ""
	say "done in $(($(date +%s) - t0)) s"
}

case "${1:-}" in
prepare) prepare ;;
run) shift; run_check "$@" ;;
*) echo "usage: gpu-check.sh prepare | run OUTDIR [--gpu-layers N] [--quick] [--no-build] [--budget S] [--arch A]" >&2; exit 2 ;;
esac
