package sampler

import "math"

// ConstrainTop applies a constraint (a grammar) to a row cheaply: it asks
// allowed about the k most likely tokens only (ids best first; allowed sets
// ok[i] for ids[i]) and, when at least one of them is allowed, sets every
// other logit to -Inf and reports true. The row then holds only allowed
// tokens among the k best, which is a top-k cut of the constrained
// distribution (the tokens it drops carry next to no probability unless the
// row is nearly flat). When none of the k is allowed it changes nothing and
// reports false: the caller must then apply the constraint to the whole row.
// Call it after Prepare, before Pick. k <= 0 or k >= len(logits) checks
// every token.
func (s *Sampler) ConstrainTop(logits []float32, k int, allowed func(ids []int32, ok []bool)) bool {
	n := len(logits)
	if n == 0 {
		return false
	}
	if k <= 0 || k > n {
		k = n
	}
	if cap(s.heap) < k {
		s.heap = make([]entry, k)
	}
	h := selectTopK(s.heap[:k], logits, s.simd)
	if cap(s.cids) < k {
		s.cids = make([]int32, k)
		s.cok = make([]bool, k)
	}
	ids, ok := s.cids[:k], s.cok[:k]
	for i, e := range h {
		ids[i] = e.id
		ok[i] = false
	}
	allowed(ids, ok)
	found := false
	for i, e := range h {
		if ok[i] {
			found = true
		}
		h[i].v = logits[e.id] // NaN stays NaN: Pick ranks it as -Inf
	}
	if !found {
		return false
	}
	ninf := float32(math.Inf(-1))
	for i := range logits {
		logits[i] = ninf
	}
	for i, e := range h {
		if ok[i] {
			logits[e.id] = e.v
		}
	}
	return true
}
