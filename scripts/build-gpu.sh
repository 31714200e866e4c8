#!/usr/bin/env bash
# scripts/build-gpu.sh: build ggml's CUDA backend from the ggml sources of the
# pinned ollama module and install what ggml's run-time loader needs beside a
# binary: PREFIX/lib/ollama/{libggml-cuda.so, libggml-base.so*}.
#
#   scripts/build-gpu.sh --src DIR --prefix PREFIX [--arch "90"] [--jobs N]
#                        [--build DIR] [--dry-run]
#
#   --src     a tree with the ollama module's root CMakeLists.txt and
#             ml/backend/ggml/ggml (make build GPU=cuda passes the module dir;
#             scripts/gpu-check.sh a copy of it)
#   --prefix  where bin/asi1d is (or will be): the libraries go to
#             PREFIX/lib/ollama, which is where the binary looks
#             (<exe dir>/../lib/ollama; OLLAMA_LIBRARY_PATH overrides it)
#   --arch    CMAKE_CUDA_ARCHITECTURES (default: $CUDA_ARCHITECTURES, else
#             "native" when nvidia-smi sees a GPU, else "75;80;86;89;90")
#   --build   the CMake build folder (default: .build/cuda)
#   --dry-run print the plan (commands and the files to install), run nothing
#
# BUILD_GPU_SKIP_ELF_CHECK=1 skips the readelf check of the result (tests).
#
# Why this layout: the Go binary links ggml's CPU backend and ggml-base
# statically and loads GPU backends with dlopen from <exe>/../lib/ollama
# (github.com/ollama/ollama/ml/backend/ggml/ggml/src/ggml.go: OnceLoad;
# ggml-backend-reg.cpp: ggml_backend_load_best, which is silent when dlopen
# fails). libggml-cuda.so has DT_NEEDED libggml-base.so.0, so that library
# must be in the same folder and found: the backend is linked with RUNPATH
# $ORIGIN, and asi1d also preloads it (engine/llamacpp/device.go). No
# libggml-cpu*.so is installed: the binary has its own CPU backend, and a
# second one would register a second CPU device.
set -euo pipefail

src="" prefix="" arch="${CUDA_ARCHITECTURES:-}" jobs="" build=".build/cuda" dry=0
while [ $# -gt 0 ]; do
	case "$1" in
	--src) src=$2; shift 2 ;;
	--prefix) prefix=$2; shift 2 ;;
	--arch) arch=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--dry-run) dry=1; shift ;;
	*) echo "build-gpu.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$src" ] && [ -n "$prefix" ] || { echo "usage: build-gpu.sh --src DIR --prefix PREFIX [--arch A] [--jobs N] [--build DIR] [--dry-run]" >&2; exit 2; }
[ -f "$src/CMakeLists.txt" ] && [ -d "$src/ml/backend/ggml/ggml/src/ggml-cuda" ] || {
	echo "build-gpu.sh: $src has no CMakeLists.txt and ml/backend/ggml/ggml/src/ggml-cuda" >&2; exit 1; }
if [ -z "$arch" ]; then
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
		arch=native
	else
		arch="75;80;86;89;90"
	fi
fi
[ -n "$jobs" ] || jobs=$(nproc 2>/dev/null || echo 4)
gen=()
if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
lib="$prefix/lib/ollama"

run() {
	printf '+'; printf ' %q' "$@"; printf '\n'
	[ "$dry" = 1 ] || "$@"
}

if [ "$dry" = 0 ]; then
	command -v cmake >/dev/null 2>&1 || { echo "build-gpu.sh: cmake not found" >&2; exit 1; }
	command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || { echo "build-gpu.sh: nvcc not found (put the CUDA toolkit's bin on PATH)" >&2; exit 1; }
	command -v nvcc >/dev/null 2>&1 || export PATH=/usr/local/cuda/bin:$PATH
fi
# The CMake tree must be writable (the module cache is read-only): the
# build folder is outside it.
run cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
	"-DCMAKE_CUDA_ARCHITECTURES=$arch" '-DCMAKE_BUILD_RPATH=$ORIGIN'
run cmake --build "$build" --target ggml-cuda --parallel "$jobs"

out="$build/lib/ollama"
echo "install: $out/libggml-cuda.so $out/libggml-base.so* -> $lib/"
if [ "$dry" = 1 ]; then
	exit 0
fi
mkdir -p "$lib"
rm -f "$lib"/libggml-cuda*.so "$lib"/libggml-base.so*
cp -a "$out"/libggml-cuda.so "$lib"/
cp -a "$out"/libggml-base.so* "$lib"/
[ -e "$lib/libggml-base.so.0" ] || { echo "build-gpu.sh: no libggml-base.so.0 in $out" >&2; exit 1; }
if [ "${BUILD_GPU_SKIP_ELF_CHECK:-}" != 1 ] && command -v readelf >/dev/null 2>&1; then
	dyn=$(readelf -d "$lib/libggml-cuda.so")
	grep -q 'libggml-base.so.0' <<<"$dyn" || { echo "build-gpu.sh: libggml-cuda.so does not need libggml-base.so.0?" >&2; exit 1; }
	if ! grep -q 'R.*PATH.*\$ORIGIN' <<<"$dyn"; then
		echo "build-gpu.sh: warning: libggml-cuda.so has no \$ORIGIN RUNPATH (asi1d preloads libggml-base.so.0 from its folder anyway)" >&2
	fi
fi
ls -l "$lib"
