// Package ggmlfa replaces ggml's CPU flash-attention kernel with a tiled
// one for the cases asi1d's contexts produce (fa.c says how it works and
// what it takes). The linker's --wrap sends ggml-cpu's call of
// ggml_compute_forward_flash_attn_ext here; anything the tiled kernel does
// not take goes on to ggml's own. ASI1D_FA_KERNEL=ggml keeps ggml's kernel
// everywhere (to compare).
//
// Why: llama.cpp's newer CPU backend has a tiled flash attention, the
// pinned module's (ollama v0.17.4, the newest on the module proxy) does
// not, and attention over a long prompt is where asi1d's prefill lost to
// llama.cpp's prebuilt library (docs/CPU.md).
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

// Enabled reports whether the tiled kernel is in use where it applies.
func Enabled() bool { return C.asi1d_fa_tiled_enabled() != 0 }

// SetEnabled switches the tiled kernel on or off for the ops computed
// after it (tests compare it with ggml's).
func SetEnabled(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.asi1d_fa_set_tiled(v)
}

// Calls is how many flash-attention ops ran through the tiled kernel and
// through ggml's since the start.
func Calls() (tiled, ggml int64) {
	return int64(C.asi1d_fa_calls(1)), int64(C.asi1d_fa_calls(0))
}
