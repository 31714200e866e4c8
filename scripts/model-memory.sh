#!/usr/bin/env bash
# model-memory.sh: what loading and unloading a model costs asi1d, on the CPU.
#
# Serves a catalog of two synth models (PRESET, default small, and tiny) with
# room for one, and reports the server's resident memory (VmRSS) before any
# load, after a load and one answer, and after the operator's unload; then
# the time of a request that has to swap models (unload one, load the other)
# next to the same request with its model warm. Medians of RUNS rounds.
#
#   bash scripts/model-memory.sh            # bin/asi1d, RUNS=3, PRESET=small
#   RUNS=5 PRESET=1b ASI1D=path/to/asi1d bash scripts/model-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ASI1D=${ASI1D:-bin/asi1d}
RUNS=${RUNS:-3}
PRESET=${PRESET:-small}
PORT=${PORT:-18631}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
pid=

"$ASI1D" synth --preset "$PRESET" --out "$work/models/big.gguf" >/dev/null
"$ASI1D" synth --preset tiny --out "$work/models/tiny.gguf" >/dev/null
"$ASI1D" serve --models-dir "$work/models" --addr "127.0.0.1:$PORT" --max-loaded-models 1 \
	--parallel 1 --ctx 1024 --log-level warn >"$work/serve.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$PORT"
for _ in $(seq 200); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done

rss() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
chat() { # model -> seconds of one short answer
	curl -sf -o /dev/null -w '%{time_total}' "$base/v1/chat/completions" -H 'Content-Type: application/json' \
		-d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}],\"max_tokens\":4}"
}
post() { curl -sf -o /dev/null -X POST "$base/v1/models/$1/$2"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

before=() loaded=() after=() swap=() warm=() loadsec=()
for _ in $(seq "$RUNS"); do
	before+=("$(rss)")
	post big load
	chat big >/dev/null
	loaded+=("$(rss)")
	loadsec+=("$(curl -s "$base/metrics" | awk '/^asi1_model_load_seconds\{model="big"\}/ {print $2}')")
	post big unload
	after+=("$(rss)")
	chat tiny >/dev/null
	swap+=("$(chat big)") # tiny out, big in
	warm+=("$(chat big)")
	post big unload
done
m() { printf '%s\n' "$@" | median; }
echo "asi1d $("$ASI1D" version | awk '{print $2}'), $PRESET ($(du -m "$work/models/big.gguf" | cut -f1) MiB file), $RUNS rounds, medians"
printf 'RSS before load      %8s MiB\n' "$(m "${before[@]}")"
printf 'RSS after load+chat  %8s MiB\n' "$(m "${loaded[@]}")"
printf 'RSS after unload     %8s MiB\n' "$(m "${after[@]}")"
printf 'load (server)        %8s s\n' "$(m "${loadsec[@]}")"
printf 'request with a swap  %8s s\n' "$(m "${swap[@]}")"
printf 'same request warm    %8s s\n' "$(m "${warm[@]}")"
