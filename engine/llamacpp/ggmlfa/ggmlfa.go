// Package ggmlfa replaces ggml's CPU flash-attention kernel with asi1d's
// for the cases asi1d's contexts produce: a tiled kernel for prompt
// batches and a row kernel for decode steps, a shared KV pool's included
// (fa.c says how they work and what they take). The linker's --wrap sends
// ggml-cpu's call of ggml_compute_forward_flash_attn_ext here; anything
// they do not take goes on to ggml's own. ASI1D_FA_KERNEL=ggml keeps ggml's kernel everywhere (to
// compare).
//
// Why: llama.cpp's newer CPU backend has a tiled flash attention, the
// pinned module's (ollama v0.17.4, the newest on the module proxy) does
// not; attention over a long prompt is where asi1d's prefill lost to
// llama.cpp's prebuilt library, and ggml's old kernel made decode steps
// slower than the attention without flash (docs/CPU.md).
//
// engine/llamacpp imports this package for its side effect.
package ggmlfa

// #cgo CPPFLAGS: -I${SRCDIR}/../../../.build/include/ggml-src -I${SRCDIR}/../../../.build/include/ggml-src/ggml-cpu
// #cgo CPPFLAGS: -DNDEBUG -D_GNU_SOURCE
// #cgo CFLAGS: -O3 -std=gnu11
// #cgo LDFLAGS: -Wl,--wrap=ggml_compute_forward_flash_attn_ext
//
// #include "ggmlfa.h"
import "C"

// Enabled reports whether asi1d's kernels are in use where they apply.
func Enabled() bool { return C.asi1d_fa_tiled_enabled() != 0 }

// SetEnabled switches asi1d's kernels on or off for the ops computed
// after it (tests compare them with ggml's).
func SetEnabled(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.asi1d_fa_set_tiled(v)
}

// ISA is the instruction set the kernels were built for: "avx512" or "avx2"
// (hand-written paths, measured faster than the attention without flash:
// docs/CPU.md), or "portable" (plain C; not measured on real hardware, so
// --flash-attn auto leaves flash attention off there).
func ISA() string { return C.GoString(C.asi1d_fa_isa()) }

// Calls is how many flash-attention ops ran through asi1d's tiled kernel,
// its row kernel and ggml's since the start.
func Calls() (tiled, rows, ggml int64) {
	return int64(C.asi1d_fa_calls(1)), int64(C.asi1d_fa_calls(2)), int64(C.asi1d_fa_calls(0))
}

// SetCacheTiles sets how many converted key/value tiles each thread keeps
// for the ops computed after it (tests: 0 converts every tile for every
// query tile, as when a context is too long for the cache); -1 restores
// the default room (8 MiB a thread).
func SetCacheTiles(n int) { C.asi1d_fa_set_cache_tiles(C.longlong(n)) }
