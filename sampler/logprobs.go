package sampler

import (
	"cmp"
	"math"
	"slices"
)

// MaxTopLogprobs is the largest n accepted by Logprobs (OpenAI's limit).
const MaxTopLogprobs = 20

// TokenLogprob is a token id with its log-probability.
type TokenLogprob struct {
	Token   int32
	Logprob float32
}

// Logprobs returns the log-softmax value of tok in logits and the n most
// likely tokens with their log-probabilities, sorted by log-probability
// descending, ties by lower id. Pass the raw model logits (call it before
// Sample modifies the row, or on a copy). n is clamped to
// 0..min(MaxTopLogprobs, len(logits)); for n == 0 the slice is empty (non-nil).
// The n tokens are chosen by logit (ties by lower id). A tok outside the row
// gets -Inf. NaN logits count as -Inf; if some logit is +Inf, those tokens get
// 0 and all others -Inf. The normaliser is accumulated in float64 over a
// float32 exp with ~2e-7 relative error. It allocates only the returned slice.
func Logprobs(logits []float32, tok int32, n int) (float32, []TokenLogprob) {
	n = max(0, min(n, MaxTopLogprobs, len(logits)))
	ninf := float32(math.Inf(-1))
	if len(logits) == 0 {
		return ninf, []TokenLogprob{}
	}
	mi := argmaxOf(logits, useAVX2)
	m := logits[mi]
	var lse float64
	switch {
	case math.IsInf(float64(m), -1):
		lse = math.Inf(1) // every logprob is -Inf
	case math.IsInf(float64(m), 1):
		lse = math.Inf(1)
	default:
		lse = float64(m) + math.Log(expSum(logits, m))
	}
	lp := func(l float32) float32 {
		if l != l {
			return ninf
		}
		if math.IsInf(lse, 1) {
			if math.IsInf(float64(l), 1) {
				return 0 // +Inf logits: treated as certain
			}
			return ninf
		}
		return float32(float64(l) - lse)
	}
	var tokLP = ninf
	if tok >= 0 && int(tok) < len(logits) {
		tokLP = lp(logits[tok])
	}
	out := make([]TokenLogprob, n)
	if n == 0 {
		return tokLP, out
	}
	var buf [MaxTopLogprobs]entry
	h := selectTopK(buf[:n], logits, useAVX2)
	for i, e := range h {
		out[i] = TokenLogprob{Token: e.id, Logprob: lp(logits[e.id])}
	}
	// Rounding to float32 can merge neighbouring values: keep the output
	// itself sorted by (logprob desc, id asc).
	slices.SortStableFunc(out, func(a, b TokenLogprob) int {
		if c := cmp.Compare(b.Logprob, a.Logprob); c != 0 {
			return c
		}
		return cmp.Compare(a.Token, b.Token)
	})
	return tokLP, out
}
