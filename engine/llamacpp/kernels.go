package llamacpp

/*
#include "ggml-cpu.h"
*/
import "C"

import (
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/asi1d/asi1d/engine/llamacpp/ggmlamx"
	"github.com/asi1d/asi1d/engine/llamacpp/ggmlfa"
)

// Kernels names the CPU instruction sets this build's ggml kernels were
// compiled for (the -march of scripts/env.sh's ASI1D_CPU_TARGET), widest
// first, e.g. "AMX_INT8 AVX512_VNNI AVX512 AVX2 FMA" or "NEON DOTPROD".
// The weights of the types AMX supports go to ggml's AMX buffer when the
// build has AMX and the kernel grants the process AMX tile state; the rest
// use the repacked kernels (CPU_REPACK), then the plain ones.
func Kernels() string {
	var f []string
	add := func(ok C.int, name string) {
		if ok != 0 {
			f = append(f, name)
		}
	}
	if ggmlamx.Compiled() {
		add(C.ggml_cpu_has_amx_int8(), "AMX_INT8")
	}
	add(C.ggml_cpu_has_avx512_vnni(), "AVX512_VNNI")
	add(C.ggml_cpu_has_avx512_bf16(), "AVX512_BF16")
	add(C.ggml_cpu_has_avx512(), "AVX512")
	add(C.ggml_cpu_has_avx_vnni(), "AVX_VNNI")
	add(C.ggml_cpu_has_avx2(), "AVX2")
	add(C.ggml_cpu_has_fma(), "FMA")
	add(C.ggml_cpu_has_f16c(), "F16C")
	add(C.ggml_cpu_has_sse3(), "SSE3")
	add(C.ggml_cpu_has_neon(), "NEON")
	add(C.ggml_cpu_has_dotprod(), "DOTPROD")
	add(C.ggml_cpu_has_matmul_int8(), "I8MM")
	add(C.ggml_cpu_has_sve(), "SVE")
	if len(f) == 0 {
		return "generic"
	}
	return strings.Join(f, " ")
}

var kernelsOnce sync.Once

// AMX says whether ggml's AMX kernels serve this process: "active" (the
// weights of the types AMX supports go to the AMX buffer), "unavailable"
// (compiled in, but the CPU or the kernel refused AMX tile state) or "not
// built" (the build's -march has no AMX).
func AMX() string {
	switch {
	case !ggmlamx.Compiled():
		return "not built"
	case ggmlamx.Ready():
		return "active"
	default:
		return "unavailable"
	}
}

// logKernels says once per process which CPU kernels this build carries and,
// behind the release launcher (cmd/asi1d-launcher), which variant it chose.
func logKernels(log *slog.Logger) {
	kernelsOnce.Do(func() {
		variant := os.Getenv("ASI1D_CPU_VARIANT")
		if variant == "" {
			variant = "this build"
		}
		flash := "asi1d-" + ggmlfa.ISA() // ggmlfa: tiled for prompts, rows for decode steps
		if !ggmlfa.Enabled() {
			flash = "ggml"
		}
		log.Info("cpu kernels", "variant", variant, "compiled_for", Kernels(), "amx", AMX(), "flash_attn_kernel", flash, "arch", runtime.GOARCH)
	})
}
