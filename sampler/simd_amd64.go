//go:build amd64 && !purego

package sampler

import "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2+FMA kernels of simd_amd64.s (checked once;
// x/sys/cpu also checks that the OS saves the YMM registers).
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func indexGTAVX2(x *float32, n int, v float32) int

//go:noescape
func expAVX2(dst, src *float32, n int, c *expConsts) (sumLo, sumAll float64)

//go:noescape
func expBothAVX2(dst, src *float32, n int, c *expConsts) (sumLo, sumAll float64)

//go:noescape
func massAVX2(l, w *float32, n int, c float32) (above float64, eq int)

//go:noescape
func collectGTAVX2(x *float32, n int, v float32, out *int32) int

//go:noescape
func expMaxAVX2(dst, src *float32, n int, c *expConsts) (sum float64, bm float32)
