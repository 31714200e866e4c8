#!/usr/bin/env bash
# scripts/env.sh: prepare a machine to build asi1d's cgo engine and print the
# environment the build needs. Idempotent: every step is skipped when done.
#
#   eval "$(scripts/env.sh)"      # or: make build / make test, which do this
#
# Knobs (environment):
#   ASI1D_CPU_TARGET  -march value for the C/C++ code (default: native; for a
#                     cross build armv8-a). scripts/release.sh builds one binary
#                     per x86-64 level (x86-64-v2 ... sapphirerapids).
#   ASI1D_CPU_FLAGS   the C/C++ target flags whole, instead of -march=TARGET
#                     (scripts/release.sh takes them from the launcher's table).
#   ASI1D_GOARCH      cross-build for this architecture: arm64 (Debian's
#                     g++-aarch64-linux-gnu, installed here when missing).
#   ASI1D_INCLUDE_DIR where the links to headers go (default
#                     ~/.cache/asi1d/include, shared by every checkout).
#   ASI1D_NO_APT=1    never call apt-get (the headers must then already exist).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# 1. System headers that llama.cpp needs but Go module zips drop (its vendor/ folder).
need=()
[ -f /usr/include/nlohmann/json.hpp ] || need+=(nlohmann-json3-dev)
[ -f /usr/include/stb/stb_image.h ] || need+=(libstb-dev)
if ! command -v g++ >/dev/null 2>&1; then need+=(g++); fi
goarch=${ASI1D_GOARCH:-}
[ "$goarch" = "$(go env GOHOSTARCH)" ] && goarch=""
case "$goarch" in
"") ;;
arm64) command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || need+=(g++-aarch64-linux-gnu) ;;
*) echo "env.sh: ASI1D_GOARCH=$goarch: only arm64 cross builds are supported" >&2; exit 2 ;;
esac
if [ ${#need[@]} -gt 0 ]; then
	if [ "${ASI1D_NO_APT:-}" = 1 ]; then
		echo "env.sh: missing packages: ${need[*]} (ASI1D_NO_APT=1 forbids installing them)" >&2
		exit 1
	fi
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	echo "env.sh: installing ${need[*]}" >&2
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi

# 2. miniaudio.h ships in the Go module github.com/gen2brain/malgo; llama.cpp's
#    mtmd includes it as "miniaudio/miniaudio.h". The folder of such links is
#    one per user, not per checkout: the -I path is part of every cgo
#    package's build-cache key, so a second clone or worktree reuses the
#    compiled llama.cpp instead of compiling it again (minutes).
inc="${ASI1D_INCLUDE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/asi1d/include}"
if [ ! -f "$inc/miniaudio/miniaudio.h" ]; then
	malgo=$(go mod download -json github.com/gen2brain/malgo@v0.11.24 | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
	[ -f "$malgo/miniaudio.h" ] || { echo "env.sh: miniaudio.h not found in $malgo" >&2; exit 1; }
	mkdir -p "$inc/miniaudio"
	ln -sf "$malgo/miniaudio.h" "$inc/miniaudio/miniaudio.h"
fi

# 3. Our own cgo (engine/llamacpp) calls llama.h directly; point it at the
#    headers inside the ollama module the go.mod pins.
ollama=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama 2>/dev/null || true)
if [ -z "$ollama" ] || [ ! -d "$ollama" ]; then
	go mod download github.com/ollama/ollama >&2
	ollama=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)
fi

# 4. ggml's sources in that module, for engine/llamacpp/ggmlamx, which compiles
#    the AMX kernels the module's own cgo packages leave out (its cgo
#    directives find them in this checkout's .build/include).
mkdir -p "$root/.build/include"
ln -sfn "$ollama/ml/backend/ggml/ggml/src" "$root/.build/include/ggml-src"
# 5. The header-only libraries of step 1 beside them, so that a cross
#    compiler (which does not search /usr/include) finds them too.
ln -sfn /usr/include/nlohmann "$inc/nlohmann"
ln -sfn /usr/include/stb "$inc/stb"

default_target=native
[ -n "$goarch" ] && default_target=armv8-a
target=${ASI1D_CPU_TARGET:-$default_target}
opt="-O3 ${ASI1D_CPU_FLAGS:--march=$target}"
if [ -n "$goarch" ]; then
	cat <<EOT
export GOARCH=$goarch
export CC=aarch64-linux-gnu-gcc
export CXX=aarch64-linux-gnu-g++
EOT
fi
cat <<EOT
export CGO_ENABLED=1
export CGO_CPPFLAGS="-I$inc -I$ollama/llama/llama.cpp/include -I$ollama/ml/backend/ggml/ggml/include -DGGML_USE_CPU_REPACK"
export CGO_CFLAGS="$opt"
export CGO_CXXFLAGS="$opt"
EOT
