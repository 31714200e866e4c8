// Package ggmlamx compiles ggml's AMX kernels (ggml-cpu/amx in the pinned
// ollama module) into the binary. The module's cgo package for ggml-cpu
// compiles ggml-cpu.cpp, which registers ggml's AMX buffer type whenever the
// compiler targets AMX (-march=native on a Sapphire Rapids class Xeon, or
// -march=sapphirerapids), but it has no Go file in ggml-cpu/amx, so amx.cpp
// and mmq.cpp were never compiled and such a build failed to link with
// "undefined reference to ggml_backend_amx_buffer_type()".
//
// The two .cpp files here include those sources through the link that
// scripts/env.sh makes at .build/include/ggml-src (the module's ggml/src).
// Their contents are guarded by __AMX_INT8__ && __AVX512VNNI__, so on any
// other target they compile to nothing. At run time ggml asks the kernel for
// AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM); where that is refused the
// AMX buffer type is not registered and the repacked kernels are used.
//
// engine/llamacpp imports this package for its side effect.
package ggmlamx

// #cgo CPPFLAGS: -I${SRCDIR}/../../../.build/include/ggml-src -I${SRCDIR}/../../../.build/include/ggml-src/ggml-cpu
// #cgo CPPFLAGS: -DNDEBUG -D_GNU_SOURCE
// #cgo CXXFLAGS: -std=c++17
// #cgo CFLAGS: -O3
//
// #include "ggmlamx.h"
import "C"

// Compiled reports whether this build carries ggml's AMX kernels: the C and
// C++ code was compiled for a CPU with AMX-INT8 and AVX512-VNNI.
func Compiled() bool { return C.asi1d_amx_compiled() != 0 }

// Ready reports whether ggml's AMX buffer type is registered: the build has
// the AMX kernels and the kernel granted this process AMX tile state.
func Ready() bool { return C.asi1d_amx_ready() != 0 }
