package sampler

import (
	"cmp"
	"math"
	"slices"
)

// worse reports whether a ranks below b: lower value, or same value and
// higher id.
func worse(a, b entry) bool {
	return a.v < b.v || (a.v == b.v && a.id > b.id)
}

func siftDown(h []entry, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && worse(h[r], h[l]) {
			c = r
		}
		if !worse(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// selectTopK fills h with the len(h) best (value desc, id asc) entries of
// logits, sorted best first. NaN is ranked as -Inf. 0 < len(h) <= len(logits).
func selectTopK(h []entry, logits []float32, simd bool) []entry {
	k := len(h)
	ninf := float32(math.Inf(-1))
	for i := 0; i < k; i++ {
		v := logits[i]
		if v != v {
			v = ninf
		}
		h[i] = entry{v, int32(i)}
	}
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	// Equal values at a higher id never beat the root: only values above
	// it enter, found by indexGT (one vector compare per 8 tokens).
	root := h[0].v
	for i := k; i < len(logits); i++ {
		i += indexGT(logits[i:], root, simd)
		if i >= len(logits) {
			break
		}
		h[0] = entry{logits[i], int32(i)}
		siftDown(h, 0)
		root = h[0].v
	}
	slices.SortFunc(h, func(a, b entry) int {
		if c := cmp.Compare(b.v, a.v); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return h
}

// sampleTopK: top_k, then temperature, softmax, top_p, min_p over the k
// sorted survivors.
func (s *Sampler) sampleTopK(logits []float32) int32 {
	if cap(s.heap) < s.topK {
		s.heap = make([]entry, s.topK)
	}
	h := selectTopK(s.heap[:s.topK], logits, s.simd)
	m := h[0].v
	if special(m) {
		return h[0].id
	}
	invT := s.invT
	w := growF32(&s.w, len(h))
	var z float64
	for j, e := range h {
		x := (e.v - m) * invT
		var p float32
		if x >= expLo {
			p = expNeg(x)
		}
		w[j] = p
		z += float64(p)
	}
	cut := len(h)
	if s.topP > 0 {
		target := float64(s.topP) * z
		var acc float64
		for j, p := range w {
			acc += float64(p)
			if acc >= target {
				cut = j + 1
				break
			}
		}
	}
	if s.minP > 0 {
		for j := 1; j < cut; j++ { // j = 0 is the maximum, always kept
			if (h[j].v-m)*invT < s.lnMinP {
				cut = j
				break
			}
		}
	}
	w = w[:cut]
	var total float64
	for _, p := range w {
		total += float64(p)
	}
	r := s.uniform() * total
	var acc float64
	for j, p := range w {
		acc += float64(p)
		if acc > r {
			return h[j].id
		}
	}
	for j := len(w) - 1; j > 0; j-- { // rounding: last positive weight
		if w[j] > 0 {
			return h[j].id
		}
	}
	return h[0].id
}

// sortByLogit orders ids by logit descending, ties by lower id.
func sortByLogit(logits []float32, ids []int32) {
	slices.SortFunc(ids, func(a, b int32) int {
		if c := cmp.Compare(logits[b], logits[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
}
