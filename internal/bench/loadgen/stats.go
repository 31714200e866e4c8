package loadgen

import (
	"math"
	"slices"
	"time"
)

// Dist summarises a sample of durations, in milliseconds.
type Dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	Min  float64 `json:"min_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// Summarize computes a Dist of ds. An empty sample gives the zero Dist.
func Summarize(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	ms := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	slices.Sort(ms)
	return Dist{
		N: len(ms), Mean: sum / float64(len(ms)), Min: ms[0], Max: ms[len(ms)-1],
		P50: Percentile(ms, 50), P90: Percentile(ms, 90), P99: Percentile(ms, 99),
	}
}

// Percentile returns the p-th percentile (0..100) of an ascending sample,
// interpolating linearly between the closest ranks (numpy's default rule).
// An empty sample gives NaN.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n == 1 || p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	r := p / 100 * float64(n-1)
	lo := int(math.Floor(r))
	f := r - float64(lo)
	if lo+1 >= n {
		return sorted[n-1]
	}
	return sorted[lo] + f*(sorted[lo+1]-sorted[lo])
}

// Median returns the median of xs (which it does not modify); NaN when empty.
func Median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return Percentile(s, 50)
}
