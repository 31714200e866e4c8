package sampler

import "math"

// expLo is the smallest argument for which expNeg is evaluated; below it
// (and for NaN) callers use 0. exp(-87) ≈ 1.6e-38 is near the smallest
// normal float32, so nothing representable is lost.
const expLo = -87.0

const (
	log2e = 1.44269504088896340735992468100189214
	ln2hi = 0.693359375
	ln2lo = -2.12194440e-4
)

// expNeg returns exp(x) for x in [expLo, 0] with a relative error of about
// 2e-7 (float32 precision). It is a Cody–Waite range reduction followed by a
// degree 6 polynomial; much cheaper than math.Exp in float64. Callers must
// guard the domain: results for x outside [expLo, 0] are undefined.
func expNeg(x float32) float32 {
	// The explicit float32 conversions keep each product rounded on its
	// own (no fused multiply-add on any platform or GOAMD64 level), so the
	// Go kernels give the same bits everywhere.
	t := float32(x * log2e)
	k := int32(t - 0.5) // round to nearest (t <= 0; conversion truncates toward zero)
	kf := float32(k)
	g := x - float32(kf*ln2hi)
	g -= float32(kf * ln2lo)
	// e^g for |g| <= 0.35: Taylor to g^6, truncation error < 1.3e-7 relative.
	p := float32(1.0 / 720)
	p = float32(p*g) + 1.0/120
	p = float32(p*g) + 1.0/24
	p = float32(p*g) + 1.0/6
	p = float32(p*g) + 0.5
	p = float32(p*g) + 1
	p = float32(p*g) + 1
	return p * math.Float32frombits(uint32(k+127)<<23)
}

// expSum returns the sum over src of exp(src[i]-m) (0 for terms below expLo
// or NaN) in float64; m >= every src[i]. expNeg is inlined by hand.
func expSum(src []float32, m float32) float64 {
	var a0, a1 float64
	for i, l := range src {
		x := l - m
		var e float32
		if x >= expLo {
			t := x * log2e
			k := int32(t - 0.5)
			kf := float32(k)
			g := x - kf*ln2hi
			g -= kf * ln2lo
			p := float32(1.0 / 720)
			p = p*g + 1.0/120
			p = p*g + 1.0/24
			p = p*g + 1.0/6
			p = p*g + 0.5
			p = p*g + 1
			p = p*g + 1
			e = p * math.Float32frombits(uint32(k+127)<<23)
		}
		if i&1 == 0 {
			a0 += float64(e)
		} else {
			a1 += float64(e)
		}
	}
	return a0 + a1
}
