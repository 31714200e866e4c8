#!/usr/bin/env bash
# scripts/release.sh: the portable release of asi1d for one architecture: one
# build per CPU variant and the launcher that picks among them at start
# (cmd/asi1d-launcher explains why). `make release` runs it.
#
#   bash scripts/release.sh [--arch amd64|arm64] [--out DIR] [--only NAME,...] [--version V]
#
# Output: DIR/asi1d-VERSION-linux-ARCH/{bin/asi1d, lib/asi1d/asi1d-VARIANT...,
# LICENSE, README.md} and DIR/asi1d-VERSION-linux-ARCH.tar.gz. Each variant is a
# full cgo build of llama.cpp (3-4 minutes on 2 cores, cold).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
arch=$(go env GOHOSTARCH)
out=dist
only=""
version=$(git describe --always --dirty 2>/dev/null || echo dev)
while [ $# -gt 0 ]; do
	case "$1" in
	--arch) arch=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--version) version=$2; shift 2 ;;
	*) echo "release.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
	esac
done
name="asi1d-$version-linux-$arch"
dest="$out/$name"
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib/asi1d"

CGO_ENABLED=0 GOARCH=$arch go build -trimpath -ldflags "-s -w" -o "$dest/bin/asi1d" ./cmd/asi1d-launcher
# The table of variants is the launcher's own (one place for the decision).
table=$(CGO_ENABLED=0 go run ./cmd/asi1d-launcher variants-for "$arch")
while IFS=$'\t' read -r variant flags; do
	if [ -n "$only" ] && [[ ",$only," != *",$variant,"* ]]; then
		continue
	fi
	echo "release.sh: $variant ($flags)" >&2
	(
		goarch=""
		[ "$arch" != "$(go env GOHOSTARCH)" ] && goarch=$arch
		eval "$(ASI1D_GOARCH=$goarch ASI1D_CPU_FLAGS="$flags" bash scripts/env.sh)"
		go build -trimpath -ldflags "-X main.version=$version" -o "$dest/lib/asi1d/asi1d-$variant" ./cmd/asi1d
	)
done <<<"$table"
cp LICENSE README.md "$dest/" 2>/dev/null || cp README.md "$dest/"
tar -C "$out" -czf "$out/$name.tar.gz" "$name"
echo "release.sh: $dest ($(du -sh "$dest" | cut -f1)); $out/$name.tar.gz" >&2
