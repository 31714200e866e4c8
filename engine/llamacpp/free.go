package llamacpp

/*
#cgo LDFLAGS: -Wl,--wrap=ggml_backend_free
#include "free_shim.h"
*/
import "C"

import "sync/atomic"

// deferredFrees counts the backends freed after their context's scheduler
// (see free_shim.c); a test reads it to prove the linker's --wrap is in
// effect.
var deferredFrees atomic.Int64

// freeContext frees a llama_context with its backends freed after its
// scheduler (free_shim.c explains the use-after-free this avoids).
func freeContext(ctx *C.struct_llama_context) {
	if ctx == nil {
		return
	}
	deferredFrees.Add(int64(C.asi1d_llama_free(ctx)))
}
