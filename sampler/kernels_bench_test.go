package sampler

import (
	"fmt"
	"testing"
)

func BenchmarkKernels(b *testing.B) {
	const n = 151936
	l := realisticLogits(n, 1)
	w := make([]float32, n)
	m := maxf(l, useAVX2)
	var c expConsts
	c.set(m, 1/0.8, expLo)
	for _, simd := range []bool{false, true} {
		if simd && !useAVX2 {
			continue
		}
		b.Run(fmt.Sprintf("max/simd=%v", simd), func(b *testing.B) {
			cpuLoop(b, func() { benchF = maxf(l, simd) })
		})
		b.Run(fmt.Sprintf("exp/simd=%v", simd), func(b *testing.B) {
			cpuLoop(b, func() { benchD, _ = expBlock(w, l, &c, false, simd) })
		})
		b.Run(fmt.Sprintf("exp2048/simd=%v", simd), func(b *testing.B) {
			cpuLoop(b, func() { benchD, _ = expBlock(w[:2048], l[:2048], &c, false, simd) })
		})
		b.Run(fmt.Sprintf("exp256/simd=%v", simd), func(b *testing.B) {
			cpuLoop(b, func() {
				for s := 0; s < n; s += 256 {
					e := min(s+256, n)
					a, _ := expBlock(w[s:e], l[s:e], &c, false, simd)
					benchD += a
				}
			})
		})
		b.Run(fmt.Sprintf("mass/simd=%v", simd), func(b *testing.B) {
			cpuLoop(b, func() { benchD, _ = massAbove(l, w, 3, simd) })
		})
	}
}

var (
	benchF float32
	benchD float64
)
