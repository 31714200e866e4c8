#!/usr/bin/env bash
# scripts/contention.sh: issue #14's busy-host measurement, two asi1d binaries
# side by side (OLD, default main's bin/asi1d; NEW, default ./bin/asi1d), runs
# alternating, on the small Q8_0 synth model, --parallel 16. Conditions:
#   quiet   nothing else running
#   hog     one busy process (a shell loop) taking a core
#   cgroup  the server in a cgroup limited to 1 CPU (v2 cpu.max or v1
#           cpu.cfs_quota_us; needs root), with the binary's default --threads,
#           and NEW with --threads 1 as the reference
# Loads (STREAMS="1 16"): 1 stream (N1=4 requests) and 16 (N16=16 requests), PROMPT-token
# prompts (128), MAXTOK-token answers (128, EOS banned). Prints one line per run (output tok/s, TTFT
# p50, ITL p99) and writes them to $OUT/runs.tsv; median per cell at the end.
#
#   OLD=/path/old/asi1d RUNS=3 bash scripts/contention.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${OUT:-/tmp/asi1d-contention}
OLD=${OLD:-../../main/bin/asi1d}
NEW=${NEW:-./bin/asi1d}
RUNS=${RUNS:-3}
CONDS=${CONDS:-"quiet hog cgroup"}
THREADS=${THREADS:-} # empty: each binary's default
mkdir -p "$out"
M=$out/small-q8_0.gguf
[ -f "$M" ] || "$NEW" synth --preset small --type q8_0 --out "$M" >/dev/null
: >"$out/runs.tsv"

# A 1-CPU cgroup: v2 when the cpu controller is there, else v1.
cg=""
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
	cg=/sys/fs/cgroup/asi1d-1cpu
	mkdir -p "$cg" && echo "100000 100000" >"$cg/cpu.max"
elif [ -d /sys/fs/cgroup/cpu ]; then
	cg=/sys/fs/cgroup/cpu/asi1d-1cpu
	mkdir -p "$cg" && echo 100000 >"$cg/cpu.cfs_quota_us" && echo 100000 >"$cg/cpu.cfs_period_us"
fi

port=${PORT:-18140}
run_one() { # cond label binary extra-flags...
	local cond=$1 label=$2 bin=$3; shift 3
	port=$((port + 1))
	local wrap=()
	if [ "$cond" = cgroup ]; then
		[ -n "$cg" ] || { echo "no cgroup cpu controller: skipping" >&2; return; }
		wrap=(sh -c 'echo $$ >"$0/cgroup.procs"; exec "$@"' "$cg")
	fi
	local tflag=()
	[ -n "$THREADS" ] && tflag=(--threads "$THREADS")
	"${wrap[@]}" "$bin" serve --model "$M" --addr 127.0.0.1:$port --parallel 16 --ctx 8192 "${tflag[@]}" "$@" \
		--log-level info >"$out/serve-$label-$cond-$port.log" 2>&1 &
	local pid=$!
	for _ in $(seq 300); do curl -sf 127.0.0.1:$port/ready >/dev/null && break; sleep 0.2; done
	local hog=""
	if [ "$cond" = hog ]; then
		nice -n 0 sh -c 'while :; do :; done' &
		hog=$!
	fi
	for c in ${STREAMS:-1 16}; do
		local n=$((c == 1 ? ${N1:-4} : ${N16:-16}))
		rm -f "$out/r.json"
		"$NEW" bench --url http://127.0.0.1:$port --concurrency $c --requests $n --warmup 1 --prompt-tokens "${PROMPT:-128}" \
			--max-tokens "${MAXTOK:-128}" --logit-bias 2=-100 --progress=false --json "$out/r.json" >/dev/null 2>&1 || true
		python3 - "$out/r.json" "$cond" "$label" "$c" >>"$out/runs.tsv" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except OSError:
    r = {}
print("\t".join([sys.argv[2], sys.argv[3], sys.argv[4], "%.1f" % r.get("output_tok_s", 0),
                 "%.0f" % r.get("ttft", {}).get("p50_ms", 0), "%.0f" % r.get("itl", {}).get("p99_ms", 0)]))
PY
		rm -f "$out/r.json"
		tail -1 "$out/runs.tsv"
	done
	[ -n "$hog" ] && kill "$hog"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

for i in $(seq "$RUNS"); do
	for cond in $CONDS; do
		run_one "$cond" old "$OLD"
		run_one "$cond" new "$NEW"
		[ "$cond" = cgroup ] && run_one "$cond" new-t1 "$NEW" --threads 1
	done
done

echo "median output tok/s (condition, binary, streams, tok/s, TTFT p50 ms, ITL p99 ms):"
python3 - "$out/runs.tsv" <<'PY'
import sys, statistics, collections
cells = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split("\t")
    cells[(f[0], f[1], f[2])].append([float(x) for x in f[3:6]])
for k in sorted(cells):
    v = cells[k]
    print("%-7s %-7s %3s  %7.1f  %7.0f  %7.0f  (n=%d)" % (k + tuple(statistics.median(x[i] for x in v) for i in range(3)) + (len(v),)))
PY
		rm -f "$out/r.json"
