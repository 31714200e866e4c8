package sampler

import (
	"cmp"
	"math"
	"slices"
)

// Sampling over the whole vocabulary without sorting it, and mostly without
// an exp per token.
//
// A first pass maps every token to a bucket of its scaled logit
// x = (logit-max)/T: b = floor(-x*bucketsPerUnit), so every weight
// w = exp(x) in bucket b lies in [lowerW[b], upperW[b]] with
// upper/lower = e^(1/bucketsPerUnit) ≈ 1.03. That pass costs a subtract, two
// multiplies and a counter increment per token, several times cheaper than an
// exp. Buckets are ordered by logit, so "all tokens of buckets 0..B" is always
// a prefix of the vocabulary sorted by probability, and is exactly the set of
// tokens whose logit is >= a threshold found by bisection (minLogit): later
// passes select tokens with one comparison each.
//
//   - Temperature (and min_p) only: exact rejection sampling. Propose bucket b
//     with probability ∝ count[b]*upperW[b], a uniform member i of it, and
//     accept with probability w_i/upperW[b] (>= 0.97). The accepted token has
//     probability exactly ∝ w_i.
//   - top_p: the bucket bounds bound the normaliser Z. The smallest prefix of
//     buckets 0..B whose guaranteed mass reaches TopP*Z_max must contain the
//     nucleus; its tokens are weighed exactly. The rest of the vocabulary is
//     known only within ~3%; if that uncertainty cannot move the cut, the
//     nucleus is decided (buckets above the boundary bucket wholesale, the
//     boundary bucket ordered). Otherwise (flat distributions) every
//     remaining token is weighed too and the cut is exact.

const (
	bucketsPerUnit = 32
	nBk            = int(-expLo*bucketsPerUnit) + 1 // buckets for x in [expLo, 0]
	// nearLimit: tokens of buckets below it (x >= -12) are also listed in
	// s.near (up to maxNear of them), so that later scans for members of top
	// buckets visit only those.
	nearLimit = 12 * bucketsPerUnit
	maxNear   = 8192
	// maxFastBoundary bounds the boundary bucket the top_p fast path sorts
	// under uncertainty; larger ones go to the exact stage, which refines.
	maxFastBoundary = 1024
	// maxRejections bounds the rejection loop (acceptance is >= 0.97 per
	// try, so this is never reached except on pathological rounding).
	maxRejections = 64
)

// upperW[b] >= every weight in bucket b, lowerW[b] <= every weight in it
// (with a 1e-5 relative margin for the float32 exp's rounding).
var upperW, lowerW = bucketBounds()

func bucketBounds() (up, lo *[nBk]float64) {
	up, lo = new([nBk]float64), new([nBk]float64)
	for b := range nBk {
		up[b] = math.Exp(-float64(b)/bucketsPerUnit) * (1 + 1e-5)
		lo[b] = math.Exp(-float64(b+1)/bucketsPerUnit) * (1 - 1e-5)
	}
	return up, lo
}

// bucketOf is the bucket of a logit: -1 when its scaled logit is below lo
// (lo >= expLo) or NaN. Every pass computes buckets with this expression, so
// they agree exactly.
func bucketOf(l, m, invT, lo float32) int32 {
	x := (l - m) * invT
	if !(x >= lo) {
		return -1
	}
	return int32(x * -bucketsPerUnit) // 0 <= b < nBk since x in [expLo, 0]
}

// minLogit returns the smallest float32 l with 0 <= bucketOf(l) <= b, so that
// for every non-NaN l <= m: 0 <= bucketOf(l) <= b exactly when l >= minLogit.
// bucketOf is monotone in l (IEEE rounding is), so a bisection over the
// ordered float32 values finds the boundary exactly; later passes then
// classify tokens with one comparison instead of recomputing buckets.
func minLogit(b int32, m, invT, lo float32) float32 {
	in := func(l float32) bool {
		c := bucketOf(l, m, invT, lo)
		return c >= 0 && c <= b
	}
	loK, hiK := orderedKey(float32(math.Inf(-1))), orderedKey(m) // in(-Inf) false, in(m) true
	for hiK-loK > 1 {
		mid := loK + (hiK-loK)/2
		if in(fromOrderedKey(mid)) {
			hiK = mid
		} else {
			loK = mid
		}
	}
	return fromOrderedKey(hiK)
}

// orderedKey maps float32 (not NaN) to uint32 preserving order.
func orderedKey(f float32) uint32 {
	u := math.Float32bits(f)
	if u&(1<<31) != 0 {
		return ^u
	}
	return u | 1<<31
}

func fromOrderedKey(u uint32) float32 {
	if u&(1<<31) != 0 {
		return math.Float32frombits(u &^ (1 << 31))
	}
	return math.Float32frombits(^u)
}

// bucketRange returns [lo, hi): the logits of bucket b are exactly the
// non-NaN l <= m with lo <= l < hi (hi = +Inf for bucket 0).
func bucketRange(b int32, m, invT, lo float32) (float32, float32) {
	hi := float32(math.Inf(1))
	if b > 0 {
		hi = minLogit(b-1, m, invT, lo)
	}
	return minLogit(b, m, invT, lo), hi
}

// bucketize counts the tokens per bucket (bucketOf with lo) into s.cnt and
// lists the tokens of the first nearLimit buckets in s.near. It returns the
// last non-empty bucket (bucket 0 always holds the maximum). Nothing is
// stored per token: later passes classify tokens by logit thresholds
// (minLogit). Even and odd tokens count into two arrays, summed at the end,
// so that consecutive increments do not wait on each other through memory.
func (s *Sampler) bucketize(logits []float32, m, invT, lo float32) int {
	n := len(logits)
	if cap(s.near) < min(n, s.nearCap) {
		s.near = make([]int32, min(n, s.nearCap))
	}
	near := s.near[:cap(s.near)]
	k := 0
	cnt := &s.cnt
	cnt2 := &s.cnt2
	clear(cnt[:s.cntLast+1])
	clear(cnt2[:s.cntLast+1])
	maxb := int32(0)
	i := 0
	for ; i+2 <= n; i += 2 {
		b0 := bucketOf(logits[i], m, invT, lo)
		b1 := bucketOf(logits[i+1], m, invT, lo)
		if b0 >= 0 {
			cnt[b0]++
			maxb = max(maxb, b0)
			if b0 < nearLimit && k < len(near) {
				near[k] = int32(i)
				k++
			}
		}
		if b1 >= 0 {
			cnt2[b1]++
			maxb = max(maxb, b1)
			if b1 < nearLimit && k < len(near) {
				near[k] = int32(i + 1)
				k++
			}
		}
	}
	for ; i < n; i++ {
		b := bucketOf(logits[i], m, invT, lo)
		if b < 0 {
			continue
		}
		cnt[b]++
		maxb = max(maxb, b)
		if b < nearLimit && k < len(near) {
			near[k] = int32(i)
			k++
		}
	}
	last := int(maxb)
	var inNear int32
	for b := 0; b <= last; b++ {
		c := cnt[b] + cnt2[b]
		cnt[b] = c
		if b < nearLimit {
			inNear += c
		}
	}
	s.cntLast = last
	s.near = near[:k]
	s.nearValid = int(inNear) == k
	return last
}

// sampleRejection draws with temperature and optional min_p over the whole
// vocabulary. Returns ok=false when the rejection loop gave up.
func (s *Sampler) sampleRejection(logits []float32, m float32) (int32, bool) {
	invT := s.invT
	lo := float32(expLo)
	if s.lnMinP > lo {
		lo = s.lnMinP
	}
	last := s.bucketize(logits, m, invT, lo)
	cnt := s.cnt[:last+1]
	var tot float64
	for b, c := range cnt {
		if c != 0 {
			tot += float64(c) * upperW[b]
		}
	}
	for range maxRejections {
		r := s.uniform() * tot
		var acc float64
		b := -1
		for j, c := range cnt {
			if c != 0 {
				b = j
				acc += float64(c) * upperW[j]
				if acc > r {
					break
				}
			}
		}
		k := int32(s.uniform() * float64(cnt[b]))
		k = min(k, cnt[b]-1)
		tlo, thi := bucketRange(int32(b), m, invT, lo)
		var i int
		if b < nearLimit && s.nearValid {
			i = nthInRangeList(s.near, logits, tlo, thi, k)
		} else {
			i = nthInRange(logits, tlo, thi, k)
		}
		x := (logits[i] - m) * invT
		if s.uniform()*upperW[b] < float64(expNeg(x)) {
			return int32(i), true
		}
	}
	return 0, false
}

// nthInRange returns the index of the k-th (0-based) logit in [tlo, thi).
func nthInRange(logits []float32, tlo, thi float32, k int32) int {
	for i := range logits {
		if l := logits[i]; !(l >= tlo && l < thi) { // NaN: never
			continue
		}
		if k == 0 {
			return i
		}
		k--
	}
	return 0 // unreachable: counts match
}

// nthInRangeList is nthInRange over the token ids in ids.
func nthInRangeList(ids []int32, logits []float32, tlo, thi float32, k int32) int {
	for _, id := range ids {
		if l := logits[id]; !(l >= tlo && l < thi) {
			continue
		}
		if k == 0 {
			return int(id)
		}
		k--
	}
	return 0 // unreachable: counts match
}

// sampleTopP: temperature, softmax, top_p, min_p over the whole vocabulary.
func (s *Sampler) sampleTopP(logits []float32, m float32) int32 {
	invT := s.invT
	p := float64(s.topP)
	last := s.bucketize(logits, m, invT, expLo)
	cnt := s.cnt[:last+1]
	var zhi float64
	for b, c := range cnt {
		if c != 0 {
			zhi += float64(c) * upperW[b]
		}
	}
	// Smallest prefix of buckets whose guaranteed mass covers p*Z_max: the
	// nucleus lies inside it.
	var accL float64
	B := last
	for b, c := range cnt {
		if c != 0 {
			accL += float64(c) * lowerW[b]
			if accL >= p*zhi {
				B = b
				break
			}
		}
	}
	w := growF32(&s.w, len(logits))
	if B < last && !s.exact(len(logits)) {
		// The cut token lies in buckets 0..B, so it weighs at least
		// lowerW[B]. Weigh buckets 0..X exactly, X >= B the first bucket
		// after which the bounded mass of the rest moves the targets by at
		// most a tenth of that: the cut then mostly stays decidable.
		tol := 0.1 * lowerW[B]
		X := B
		var unc float64
		for b := last; b > B; b-- {
			unc += p * float64(cnt[b]) * (upperW[b] - lowerW[b])
			if unc > tol {
				X = b
				break
			}
		}
		var nx int32
		for _, c := range cnt[:X+1] {
			nx += c
		}
		// With most of the vocabulary to weigh anyway, the exact stage's
		// linear pass is cheaper.
		if X < last && int(nx) <= len(logits)/2 {
			var rlo, rhi float64
			for b := X + 1; b <= last; b++ {
				if c := cnt[b]; c != 0 {
					rlo += float64(c) * lowerW[b]
					rhi += float64(c) * upperW[b]
				}
			}
			// Gather and weigh the tokens of buckets 0..X.
			g := s.cand[:0]
			t := minLogit(int32(X), m, invT, expLo)
			if X < nearLimit && s.nearValid {
				for _, id := range s.near {
					if logits[id] >= t {
						g = append(g, id)
					}
				}
			} else {
				for i, l := range logits {
					if l >= t {
						g = append(g, int32(i))
					}
				}
			}
			s.cand = g
			clear(s.emass[:X+1])
			s.weigh(logits, m, g, w)
			if nuc, ok := s.cut(logits, m, w, g, X, p, rlo, rhi); ok {
				return s.finishNucleus(logits, m, nuc, w)
			}
		}
		s.fastMiss++
	}
	// Exact stage: weigh every token; the normaliser is exact.
	clear(s.emass[:last+1])
	s.weighAll(logits, m, w)
	nuc, _ := s.cut(logits, m, w, nil, last, p, 0, 0) // rlo == rhi: always decides
	return s.finishNucleus(logits, m, nuc, w)
}

// weigh sets w[id] = exp((logits[id]-m)*invT) for ids (all bucketed) and
// adds it to the exact mass of its bucket.
func (s *Sampler) weigh(logits []float32, m float32, ids []int32, w []float32) {
	invT := s.invT
	em := &s.emass
	for _, id := range ids {
		l := logits[id]
		b := bucketOf(l, m, invT, expLo)
		e := expNeg((l - m) * invT)
		w[id] = e
		em[b] += float64(e)
	}
}

// weighAll is weigh over every bucketed token, in index order.
func (s *Sampler) weighAll(logits []float32, m float32, w []float32) {
	invT := s.invT
	w = w[:len(logits)]
	em := &s.emass
	for i, l := range logits {
		b := bucketOf(l, m, invT, expLo)
		if b < 0 {
			continue
		}
		// expNeg, inlined by hand.
		x := (l - m) * invT
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
		e := p * math.Float32frombits(uint32(k+127)<<23)
		w[i] = e
		em[b] += float64(e)
	}
}

// cut finds the top_p nucleus among the weighed tokens g (all tokens of
// buckets 0..B; nil: every bucketed token) when the mass of the other tokens
// is only known to lie in [rlo, rhi]. ok is false when that uncertainty could
// move the cut; with rlo == rhi it always decides. The nucleus is returned in
// s.nuc.
func (s *Sampler) cut(logits []float32, m float32, w []float32, g []int32, B int, p, rlo, rhi float64) ([]int32, bool) {
	em := s.emass[:B+1]
	var e float64
	for _, v := range em {
		e += v
	}
	tlo, thi := p*(e+rlo), p*(e+rhi)
	var above float64
	bstar := -1
	for b, v := range em {
		if above+v >= tlo {
			bstar = b
			break
		}
		above += v
	}
	if bstar < 0 {
		if rlo != rhi {
			return nil, false
		}
		bstar = B // rounding: keep everything
	}
	if above+em[bstar] < thi {
		return nil, false
	}
	nuc := s.nuc[:0]
	bnd := s.bnd[:0]
	// Bucket bstar is [tlo, thi) in logit space; buckets above it are >= thi.
	tb, ta := bucketRange(int32(bstar), m, s.invT, expLo)
	if g == nil {
		for i, l := range logits {
			switch {
			case l >= ta:
				nuc = append(nuc, int32(i))
			case l >= tb:
				bnd = append(bnd, int32(i))
			}
		}
	} else {
		for _, id := range g {
			switch l := logits[id]; {
			case l >= ta:
				nuc = append(nuc, id)
			case l >= tb:
				bnd = append(bnd, id)
			}
		}
	}
	if rlo == rhi {
		nuc, bnd = s.resolveBoundary(logits, w, nuc, bnd, tlo-above)
	} else {
		if len(bnd) > maxFastBoundary {
			s.nuc, s.bnd = nuc, bnd
			return nil, false
		}
		sortByLogit(logits, bnd)
		var acc float64
		for _, id := range bnd {
			nuc = append(nuc, id)
			acc += float64(w[id])
			if acc >= tlo-above {
				if acc < thi-above {
					s.nuc, s.bnd = nuc, bnd
					return nil, false // the uncertainty straddles this token
				}
				break
			}
		}
	}
	s.nuc, s.bnd = nuc, bnd
	return nuc, true
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

// finishNucleus applies min_p to the nucleus (ids with weights w[id]; the
// maximum, with x = 0, is always in it) and draws.
func (s *Sampler) finishNucleus(logits []float32, m float32, cand []int32, w []float32) int32 {
	if s.minP > 0 {
		k := 0
		for _, id := range cand {
			if (logits[id]-m)*s.invT >= s.lnMinP {
				cand[k] = id
				k++
			}
		}
		cand = cand[:k]
		if k == 0 { // MinP > 1: keep the maximum only
			return int32(argmax(logits))
		}
	}
	var total float64
	for _, id := range cand {
		total += float64(w[id])
	}
	return s.drawCand(cand, w, total)
}
