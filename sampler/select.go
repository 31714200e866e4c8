package sampler

import (
	"cmp"
	"math"
	"slices"
)

const (
	// nBuckets is the histogram size used to refine a large top_p boundary
	// set by logit value.
	nBuckets = 256
	// smallBoundary: boundary sets at most this large are sorted directly.
	smallBoundary = 64
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
func selectTopK(h []entry, logits []float32) []entry {
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
	// Equal values at a higher id never beat the root. Blocks of 8 are
	// skipped with one test when nothing in them beats it (as in argmax).
	root := h[0].v
	i := k
	for ; i+8 <= len(logits); i += 8 {
		c := logits[i : i+8 : i+8]
		if c[0] <= root && c[1] <= root && c[2] <= root && c[3] <= root &&
			c[4] <= root && c[5] <= root && c[6] <= root && c[7] <= root {
			continue
		}
		for j, v := range c {
			if v > root {
				h[0] = entry{v, int32(i + j)}
				siftDown(h, 0)
				root = h[0].v
			}
		}
	}
	for ; i < len(logits); i++ {
		if v := logits[i]; v > root {
			h[0] = entry{v, int32(i)}
			siftDown(h, 0)
			root = h[0].v
		}
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
	h := selectTopK(s.heap[:s.topK], logits)
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

// resolveBoundary appends to cand the prefix of bnd (ordered by logit desc,
// id asc) whose cumulative weight first reaches target. bnd holds ids in
// ascending order with positive weight. It returns the updated slices.
func (s *Sampler) resolveBoundary(logits, w []float32, cand, bnd []int32, target float64) ([]int32, []int32) {
	for depth := 0; len(bnd) > smallBoundary && depth < 8; depth++ {
		lo, hi := logits[bnd[0]], logits[bnd[0]]
		for _, id := range bnd[1:] {
			l := logits[id]
			lo = min(lo, l)
			hi = max(hi, l)
		}
		if lo == hi {
			// All equal: ascending id order is already the ranking.
			break
		}
		sc := float32(nBuckets-1) / (hi - lo)
		if !(sc < math.MaxFloat32) {
			break
		}
		clear(s.hmass[:])
		for _, id := range bnd {
			b := min(int((hi-logits[id])*sc), nBuckets-1)
			s.hmass[b] += float64(w[id])
		}
		var above float64
		bstar := nBuckets - 1
		for b := 0; b < nBuckets-1; b++ {
			if above+s.hmass[b] >= target {
				bstar = b
				break
			}
			above += s.hmass[b]
		}
		k := 0
		for _, id := range bnd {
			switch b := min(int((hi-logits[id])*sc), nBuckets-1); {
			case b < bstar:
				cand = append(cand, id)
			case b == bstar:
				bnd[k] = id
				k++
			}
		}
		bnd = bnd[:k]
		target -= above
	}
	sortByLogit(logits, bnd)
	var acc float64
	for _, id := range bnd {
		cand = append(cand, id)
		acc += float64(w[id])
		if acc >= target {
			break
		}
	}
	return cand, bnd
}
