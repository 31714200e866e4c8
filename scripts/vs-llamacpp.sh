#!/usr/bin/env bash
# scripts/vs-llamacpp.sh: asi1d's raw engine against llama.cpp's own prebuilt
# CPU library (node-llama-cpp, which picks its best CPU variant for this
# machine), side by side and alternated: prefill and decode tokens per second,
# one sequence, medians of RUNS (default 5). Run it on a quiet machine.
#
#   bash scripts/vs-llamacpp.sh [--bin bin/asi1d] [--threads 2] [--prompt 512]
#       [--decode 64] [--runs 5] [--hide-variant sapphirerapids] [--flash-attn auto|on|off]
#       MODEL.gguf ...
#
# --hide-variant NAME hides node-llama-cpp's libggml-cpu-NAME.so for the run
# (e.g. sapphirerapids, to measure its AVX-512 variant on an AMX machine).
# --flash-attn is asi1d's setting (default auto: on for AVX2/AVX-512 CPUs); node-llama-cpp
# keeps its own default.
# Installs node-llama-cpp 3.22.1 and its linux-x64 binaries into .build/nlc
# (npm, --ignore-scripts: nothing is downloaded or built).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=bin/asi1d threads=2 prompt=512 decode=64 runs=5 hide="" flash=auto
models=()
while [ $# -gt 0 ]; do
	case "$1" in
	--bin) bin=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--prompt) prompt=$2; shift 2 ;;
	--decode) decode=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--hide-variant) hide=$2; shift 2 ;;
	--flash-attn) flash=$2; shift 2 ;;
	-*) echo "vs-llamacpp.sh: unknown flag $1" >&2; exit 2 ;;
	*) models+=("$1"); shift ;;
	esac
done
[ ${#models[@]} -gt 0 ] || { echo "vs-llamacpp.sh: name at least one model (asi1d synth writes them)" >&2; exit 2; }
command -v jq >/dev/null 2>&1 || { echo "vs-llamacpp.sh: needs jq (apt-get install jq)" >&2; exit 1; }
nlc=.build/nlc
if [ ! -d "$nlc/node_modules/node-llama-cpp" ]; then
	mkdir -p "$nlc"
	(cd "$nlc" && { [ -f package.json ] || npm init -y >/dev/null; } &&
		npm install --no-audit --no-fund --ignore-scripts node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1 >&2)
fi
cp scripts/vsllamacpp/bench.mjs "$nlc/bench.mjs"
lib=$(ls -d "$nlc"/node_modules/@node-llama-cpp/linux-x64/bins/*/ | head -1)
if [ -n "$hide" ]; then
	mv "$lib/libggml-cpu-$hide.so" "$lib/libggml-cpu-$hide.so.hidden"
	trap 'mv "$lib/libggml-cpu-$hide.so.hidden" "$lib/libggml-cpu-$hide.so"' EXIT
fi
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '| model | ours prefill | llama.cpp prefill | ratio | ours decode | llama.cpp decode | ratio | llama.cpp variant |\n|---|---|---|---|---|---|---|---|\n'
for m in "${models[@]}"; do
	op=() od=() tp=() td=() variant=""
	for _ in $(seq "$runs"); do
		j=$("$bin" bench compare --model "$m" --threads "$threads" --concurrency 1 --runs 1 --warmup=false \
			--prompt-tokens "$prompt" --max-tokens "$decode" --flash-attn "$flash" --json - 2>/dev/null)
		op+=("$(jq -r '.rows[0].raw_prefill_tok_s' <<<"$j")")
		od+=("$(jq -r '.rows[0].raw_decode_tok_s' <<<"$j")")
		j=$(cd "$nlc" && node bench.mjs "$(realpath "$root/$m" 2>/dev/null || realpath "$m")" "$threads" "$prompt" "$decode")
		tp+=("$(jq -r .prefill_tok_s <<<"$j")")
		td+=("$(jq -r .decode_tok_s <<<"$j")")
		variant=$(jq -r .variant <<<"$j")
	done
	a=$(printf '%s\n' "${op[@]}" | median) b=$(printf '%s\n' "${tp[@]}" | median)
	c=$(printf '%s\n' "${od[@]}" | median) d=$(printf '%s\n' "${td[@]}" | median)
	awk -v m="$(basename "$m")" -v a="$a" -v b="$b" -v c="$c" -v d="$d" -v v="$variant" \
		'BEGIN { printf "| %s | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx | %s |\n", m, a, b, a/b, c, d, c/d, v }'
done
