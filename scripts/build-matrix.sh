#!/usr/bin/env bash
# scripts/build-matrix.sh: link asi1d for the CPU targets users run, so that a
# target-specific break (such as ggml's AMX sources missing from a
# -march=sapphirerapids or AMX-native build) fails CI instead of a newcomer,
# then run the goldens of the arm64 build under qemu-user. `make build-matrix`
# runs it; .ci/run calls that. The tests themselves run on the native build.
#
#   bash scripts/build-matrix.sh [TARGET ...]   (default: all of them)
#
# Targets: x86-64-v3 (the old release image; its flash-attention tests run
# here where the CPU has AVX2), sapphirerapids (AVX-512 + AMX), arm64 (Debian's
# cross compiler, armv8-a; its goldens run under qemu-aarch64).
# Each is a full cgo build of llama.cpp: about 3-4 minutes on 2 cores, cold.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86-64-v3 sapphirerapids arm64)
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
for t in "${targets[@]}"; do
	start=$(date +%s)
	case "$t" in
	arm64)
		if ! command -v qemu-aarch64 >/dev/null 2>&1; then
			echo "build-matrix: installing qemu-user" >&2
			$sudo apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-user >&2
		fi
		(
			eval "$(ASI1D_GOARCH=arm64 bash scripts/env.sh)"
			go build -o .build/matrix/asi1d-arm64 ./cmd/asi1d
			go test -c -o .build/matrix/llamacpp-arm64.test ./engine/llamacpp/
		)
		readelf -h .build/matrix/asi1d-arm64 | grep -q AArch64 || { echo "build-matrix: arm64: not an aarch64 binary" >&2; exit 1; }
		# The goldens (llama.cpp's reference continuation, token for token) on the
		# arm64 kernels, emulated, and the tiled flash attention's portable C path
		# against ggml's kernel (about 40 s under qemu).
		(cd engine/llamacpp && qemu-aarch64 -L /usr/aarch64-linux-gnu ../../.build/matrix/llamacpp-arm64.test \
			-test.run '^(TestGoldenGreedy|TestInfo|TestGoldenGreedyFlashAttention|TestFlashAttentionKernelsMatchGGML|TestFlashAttentionAutoOnCPU)$' -test.v -test.count=1) | grep -E '^(--- |ok|PASS|FAIL)'
		;;
	x86-64-v3)
		(
			eval "$(ASI1D_CPU_TARGET=$t bash scripts/env.sh)"
			go build -o ".build/matrix/asi1d-$t" ./cmd/asi1d
			go test -c -o ".build/matrix/llamacpp-$t.test" ./engine/llamacpp/
		)
		# The flash-attention kernels' AVX2 paths (the native build takes the
		# AVX-512 ones) and the goldens, where this CPU runs AVX2 (a few seconds).
		if grep -q ' avx2 ' /proc/cpuinfo && grep -q ' f16c ' /proc/cpuinfo; then
			(cd engine/llamacpp && "../../.build/matrix/llamacpp-$t.test" \
				-test.run '^(TestGoldenGreedy|TestGoldenGreedyFlashAttention|TestFlashAttentionKernelsMatchGGML|TestFlashAttentionAutoOnCPU)$' -test.v -test.count=1) | grep -E '^(--- |ok|PASS|FAIL)'
		fi
		;;
	*)
		(
			eval "$(ASI1D_CPU_TARGET=$t bash scripts/env.sh)"
			go build -o ".build/matrix/asi1d-$t" ./cmd/asi1d
		)
		;;
	esac
	echo "build-matrix: $t linked ($(($(date +%s) - start)) s)" >&2
done
