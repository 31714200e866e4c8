//go:build !amd64 || purego

package sampler

// useAVX2 is false off amd64 (or with the purego tag): the Go kernels run.
const useAVX2 = false

func maxAVX2(x *float32, n int) float32 { panic("sampler: no AVX2 kernels") }

func indexGTAVX2(x *float32, n int, v float32) int { panic("sampler: no AVX2 kernels") }

func expAVX2(dst, src *float32, n int, c *expConsts) (sumLo, sumAll float64) {
	panic("sampler: no AVX2 kernels")
}

func expBothAVX2(dst, src *float32, n int, c *expConsts) (sumLo, sumAll float64) {
	panic("sampler: no AVX2 kernels")
}

func massAVX2(l, w *float32, n int, c float32) (above float64, eq int) {
	panic("sampler: no AVX2 kernels")
}

func collectGTAVX2(x *float32, n int, v float32, out *int32) int {
	panic("sampler: no AVX2 kernels")
}

func expMaxAVX2(dst, src *float32, n int, c *expConsts) (sum float64, bm float32) {
	panic("sampler: no AVX2 kernels")
}
