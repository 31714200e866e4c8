package sampler

import "math"

// smallTopK: top_k up to this many uses the heap (selectTopK) and a sorted
// cut; larger k uses sampleTopKLarge, which neither keeps a heap of k nor
// sorts the survivors.
const smallTopK = 256

// topKSample is the number of logits sampleTopKLarge looks at (evenly
// spaced) to guess a threshold above which a little more than k tokens lie.
const topKSample = 1024

// sampleTopKLarge is top_k (k > smallTopK) then temperature, softmax,
// top_p, min_p, with the semantics of sampleTopK:
//
//  1. A threshold t is guessed from an evenly spaced sample of the row so
//     that somewhat more than k tokens have logit >= t; those are gathered
//     (indexGT). Too few: the guess is lowered (at worst to -Inf: all).
//  2. A selection (nthBest, linear) puts the exact k best of them (logit
//     descending, ties by lower id; NaN as -Inf) first, unsorted.
//  3. The draw is proportional to the weights of the survivors, proposed
//     as in sampleFull and, for top_p, accepted when the mass of the
//     survivors ranked above the proposal is below TopP*Z_k.
func (s *Sampler) sampleTopKLarge(logits []float32) int32 {
	n, k := len(logits), s.topK
	ninf := float32(math.Inf(-1))
	// 1. Threshold guess from the sample.
	smp := s.smp[:0]
	step := max(1, n/topKSample)
	for i := 0; i < n; i += step {
		v := logits[i]
		if v != v {
			v = ninf
		}
		smp = append(smp, entry{v, int32(i)})
	}
	s.smp = smp
	// Expected rank of the k-th best in the sample, with a margin.
	j := k*len(smp)/n + 8 + k*len(smp)/n/4
	var c []entry
	for {
		t := ninf
		if j < len(smp) {
			nthBest(smp, j+1)
			t = smp[0].v
			for _, e := range smp[:j+1] {
				t = min(t, e.v)
			}
		}
		c = s.cand[:0]
		if t == ninf {
			for i, v := range logits {
				if v != v {
					v = ninf
				}
				c = append(c, entry{v, int32(i)})
			}
		} else {
			below := math.Nextafter32(t, ninf) // l > below <=> l >= t
			if cap(s.idx) < n {
				s.idx = make([]int32, 0, n)
			}
			s.idx = collectGT(s.idx[:0], logits, below, s.simd)
			for _, i := range s.idx {
				c = append(c, entry{logits[i], i})
			}
		}
		s.cand = c
		if len(c) >= k {
			break
		}
		j = 2*j + 16
	}
	// 2. The exact k best, unsorted.
	nthBest(c, k)
	c = c[:k]
	m := c[0].v
	for _, e := range c[1:] {
		m = max(m, e.v)
	}
	if special(m) || s.minP > 1 {
		return int32(argmaxOf(logits, s.simd))
	}
	// 3. Weights: wa over all survivors (top_p's normaliser), w after min_p.
	invT := s.invT
	lo := float32(expLo)
	if s.lnMinP > lo {
		lo = s.lnMinP
	}
	w := growF32(&s.w, k)
	wa := growF32(&s.wa, k)
	var z, zall float64
	for i, e := range c {
		x := (e.v - m) * invT
		var p, pa float32
		if x >= expLo {
			pa = expNeg(x)
			if x >= lo {
				p = pa
			}
		}
		w[i], wa[i] = p, pa
		z += float64(p)
		zall += float64(pa)
	}
	if s.topP == 0 {
		return c[drawIn(w, s.uniform()*z)].id
	}
	target := float64(s.topP) * zall
	outI := -1 // the highest-ranked survivor known to be outside the nucleus
	for range maxRejections {
		i := drawIn(w, s.uniform()*z)
		e := c[i]
		if outI >= 0 && !worse(c[outI], e) {
			continue
		}
		var a float64
		for q, f := range c {
			if worse(e, f) {
				a += float64(wa[q])
			}
		}
		if a < target {
			return e.id
		}
		outI = i
	}
	// Last resort (a nucleus with a tiny share of the mass): sort.
	s.fallbacks++
	ids := s.fbk[:0]
	for i, e := range c {
		if w[i] > 0 {
			ids = append(ids, e.id)
		}
	}
	s.fbk = ids
	sortByLogit(logits, ids)
	var acc float64
	cut := len(ids)
	for q, id := range ids {
		if acc >= target {
			cut = q
			break
		}
		acc += float64(expNeg((logits[id] - m) * invT))
	}
	ids = ids[:max(cut, 1)]
	var total float64
	for _, id := range ids {
		total += float64(expNeg((logits[id] - m) * invT))
	}
	r := s.uniform() * total
	acc = 0
	for _, id := range ids {
		acc += float64(expNeg((logits[id] - m) * invT))
		if acc > r {
			return id
		}
	}
	return ids[len(ids)-1]
}

// nthBest reorders e so that e[:k] are its k best entries (value
// descending, ties by lower id), in no particular order; 0 < k <= len(e).
// Quickselect with a median-of-three pivot; ids are distinct, so the order
// is strict and equal values cannot degrade it.
func nthBest(e []entry, k int) {
	lo, hi := 0, len(e) // the k-th best lies in e[lo:hi]
	for hi-lo > 16 {
		a, b, c := lo, lo+(hi-lo)/2, hi-1
		if worse(e[a], e[b]) {
			a, b = b, a
		}
		if worse(e[b], e[c]) {
			b = c
			if worse(e[a], e[b]) {
				b = a
			}
		}
		p := e[b]
		// Three-way split: better than p, p, worse than p.
		i, j := lo, hi-1
		for i <= j {
			for worse(p, e[i]) {
				i++
			}
			for worse(e[j], p) {
				j--
			}
			if i <= j {
				e[i], e[j] = e[j], e[i]
				i++
				j--
			}
		}
		// e[lo:j+1] are not worse than p, e[i:hi] not better.
		switch {
		case k <= j+1:
			hi = j + 1
		case k >= i:
			lo = i
		default:
			return // e[j+1:i] holds p: the k best are in place
		}
	}
	// Small range: insertion sort, best first.
	for i := lo + 1; i < hi; i++ {
		for q := i; q > lo && worse(e[q-1], e[q]); q-- {
			e[q-1], e[q] = e[q], e[q-1]
		}
	}
}
