package sampler

import "math"

// Row kernels: each has an AVX2 version (simd_amd64.s, used when simd is
// true) and a Go version with the same results, in the same float64
// summation lanes; only the exp differs, in the last bit of some weights
// (the AVX2 polynomial uses fused multiply-adds). A seeded draw is therefore
// reproducible on one machine and, except in rare cases where a weight's last
// bit decides, across machines.

// expConsts holds the parameters and constants of the AVX2 exp kernels,
// each repeated 8 times (they are read as 256-bit operands).
type expConsts [12][8]float32

const (
	ecM = iota
	ecInvT
	ecLo
)

func (c *expConsts) set(m, invT, lo float32) {
	v := [12]float32{
		m, invT, lo, expLo, log2e, math.Ln2,
		// The kernels' polynomial for exp(g), |g| <= ln2/2, degree 5 down
		// to 0: the degree 7 Taylor polynomial with its g^7 and g^6 terms
		// economized by Chebyshev polynomials.
		0.008375081040542133, 0.041917152909919465, 0.1666641569323443,
		0.4999887061955494, 1.0000000377192353, 1.0000000754384706,
	}
	for i, x := range v {
		for j := range 8 {
			c[i][j] = x
		}
	}
}

// maxf returns the largest non-NaN value of x (-Inf if none).
func maxf(x []float32, simd bool) float32 {
	best := float32(math.Inf(-1))
	i := 0
	if simd && len(x) >= 32 {
		i = len(x) &^ 31
		best = maxAVX2(&x[0], i)
	}
	for _, v := range x[i:] {
		if v > best {
			best = v
		}
	}
	return best
}

// indexGT returns the first i with x[i] > v (NaN never is), or len(x).
func indexGT(x []float32, v float32, simd bool) int {
	i := 0
	if simd && len(x) >= 8 {
		n8 := len(x) &^ 7
		if j := indexGTAVX2(&x[0], n8, v); j < n8 {
			return j
		}
		i = n8
	} else {
		// Blocks of 8: one well-predicted test per block.
		for ; i+8 <= len(x); i += 8 {
			c := x[i : i+8 : i+8]
			if c[0] <= v && c[1] <= v && c[2] <= v && c[3] <= v &&
				c[4] <= v && c[5] <= v && c[6] <= v && c[7] <= v {
				continue
			}
			if !(c[0] > v || c[1] > v || c[2] > v || c[3] > v ||
				c[4] > v || c[5] > v || c[6] > v || c[7] > v) {
				continue // only NaNs failed "<= v"
			}
			break
		}
	}
	for ; i < len(x); i++ {
		if x[i] > v {
			return i
		}
	}
	return len(x)
}

// argmaxOf returns the index of the largest value, the lowest index on ties
// (-0 and +0 tie); NaNs are ignored; 0 if nothing is larger than -Inf.
func argmaxOf(x []float32, simd bool) int {
	m := maxf(x, simd)
	if m == float32(math.Inf(-1)) {
		return 0
	}
	// x > the float32 just below m  <=>  x == m (nothing is above m).
	return indexGT(x, math.Nextafter32(m, float32(math.Inf(-1))), simd)
}

// expBlock sets dst[i] = exp((src[i]-m)*invT) where that scaled logit x is
// >= lo, else 0 (NaN: 0), with c set to (m, invT, lo), lo >= expLo. It
// returns the sum of dst and the sum of the weights with x >= expLo (the
// whole row's mass when lo cuts by min_p; computed only when both is set).
// len(dst) == len(src).
func expBlock(dst, src []float32, c *expConsts, both, simd bool) (sumLo, sumAll float64) {
	n8 := len(src) &^ 7
	switch {
	case simd:
		n8 = len(src) &^ 15
		if n8 == 0 {
			break
		}
		if both {
			sumLo, sumAll = expBothAVX2(&dst[0], &src[0], n8, c)
		} else {
			sumLo, sumAll = expAVX2(&dst[0], &src[0], n8, c)
		}
	case n8 > 0:
		sumLo, sumAll = expGo(dst[:n8], src[:n8], c)
	}
	m, invT, lo := c[ecM][0], c[ecInvT][0], c[ecLo][0]
	for i := n8; i < len(src); i++ {
		x := (src[i] - m) * invT
		var e float32
		if x >= expLo {
			e = expNeg(x)
			sumAll += float64(e)
		}
		if !(x >= lo) {
			e = 0
		}
		dst[i] = e
		sumLo += float64(e)
	}
	return sumLo, sumAll
}

// expBlockMax is expBlock relative to the block's own maximum bm (the
// largest non-NaN value of src, returned; -Inf if none, and then dst is all
// zero and sum 0), found in the same call so that the block is read from
// memory once. c is set with lo = expLo; its m is ignored (the Go path
// overwrites it).
func expBlockMax(dst, src []float32, c *expConsts, simd bool) (sum float64, bm float32) {
	if simd && len(src)&15 == 0 && len(src) > 0 {
		sum, bm = expMaxAVX2(&dst[0], &src[0], len(src), c)
	} else {
		bm = maxf(src, simd)
		if bm != float32(math.Inf(-1)) {
			for j := range 8 {
				c[ecM][j] = bm
			}
			sum, _ = expBlock(dst, src, c, false, simd)
		}
	}
	if bm == float32(math.Inf(-1)) {
		clear(dst)
		sum = 0
	}
	return sum, bm
}

// expGo is expBothAVX2 in Go (with expNeg, which may differ in the last
// bit); len(src) is a multiple of 8. As in the kernel, tokens i and i+8 of
// each group of 16 are added in float32 before the float64 lanes.
func expGo(dst, src []float32, c *expConsts) (sumLo, sumAll float64) {
	m, invT, lo := c[ecM][0], c[ecInvT][0], c[ecLo][0]
	var a, b [8]float64
	dst = dst[:len(src)]
	var ea [16]float32
	for g := 0; g < len(src); g += 16 {
		n := min(16, len(src)-g) // 16, or 8 at the end
		for j := range n {
			x := (src[g+j] - m) * invT
			var e float32
			ea[j] = 0
			if x >= expLo {
				ea[j] = expNeg(x)
				if x >= lo {
					e = ea[j]
				}
			}
			dst[g+j] = e
		}
		for j := range 8 {
			e, f := dst[g+j], ea[j]
			if n == 16 {
				e += dst[g+8+j]
				f += ea[8+j]
			}
			a[j] += float64(e)
			b[j] += float64(f)
		}
	}
	return reduce8(&a), reduce8(&b)
}

// reduce8 sums 8 lanes in the AVX2 kernels' order.
func reduce8(a *[8]float64) float64 {
	return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

// massAbove returns the sum of w[i] over l[i] > c and the number of
// l[i] == c. len(w) == len(l). Runs of 256 tokens are summed in float32
// lanes (at most 32 terms each: relative error < 2e-6, typically 1e-7).
func massAbove(l, w []float32, c float32, simd bool) (above float64, eq int) {
	n8 := len(l) &^ 7
	if n8 > 0 {
		if simd {
			above, eq = massAVX2(&l[0], &w[0], n8, c)
		} else {
			var a [8]float64
			w := w[:n8]
			for g := 0; g < n8; g += 256 {
				var f [8]float32 // as in the kernel: float32 per run of 256
				for i := g; i < min(g+256, n8); i++ {
					if l[i] > c {
						f[i&7] += w[i]
					}
					if l[i] == c {
						eq++
					}
				}
				for j, v := range f {
					a[j] += float64(v)
				}
			}
			above = reduce8(&a)
		}
	}
	for i := n8; i < len(l); i++ {
		if l[i] > c {
			above += float64(w[i])
		}
		if l[i] == c {
			eq++
		}
	}
	return above, eq
}

// collectGT appends to out the indices i with x[i] > v (NaN never is),
// ascending, and returns it. cap(out) must be >= len(x) when simd is set.
func collectGT(out []int32, x []float32, v float32, simd bool) []int32 {
	i := 0
	if simd && len(x) >= 8 {
		n8 := len(x) &^ 7
		k := collectGTAVX2(&x[0], n8, v, &out[len(out):cap(out)][0])
		out = out[:len(out)+k]
		i = n8
	}
	for ; i < len(x); i++ {
		if x[i] > v {
			out = append(out, int32(i))
		}
	}
	return out
}
