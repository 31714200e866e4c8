// Package sampler turns a row of logits into a token id.
//
// A Sampler is created per request with New and used once per generated token:
//
//	s := sampler.New(params)
//	for ... {
//		logits := model.Forward(...)          // []float32, len == vocab
//		tok := s.Sample(logits)               // may modify logits in place
//		s.Accept(tok)                         // feeds the penalties
//	}
//
// # Order of operations
//
// Sample applies, in this order:
//
//  1. Logit bias: logits[t] += LogitBias[t] (ids outside the row are ignored).
//  2. Penalties over the window of the last RepeatLastN Accepted tokens
//     (all of them when RepeatLastN <= 0), once per distinct token t in the
//     window, with c(t) its count there: first the repetition penalty
//     (llama.cpp): logit /= RepeatPenalty if logit > 0, else
//     logit *= RepeatPenalty; then OpenAI frequency/presence:
//     logit -= c(t)*FrequencyPenalty + PresencePenalty.
//  3. If Temperature <= 0: greedy argmax (ties go to the lowest id); the RNG
//     is not consumed. Bias and penalties still apply.
//  4. Otherwise: top_k (keep the TopK largest logits, ties by lower id),
//     then temperature (x = (logit-max)/T), then softmax over the survivors,
//     then top_p (the smallest prefix of the tokens sorted by probability
//     descending, ties by lower id, whose cumulative probability is >= TopP),
//     then min_p (drop tokens with p < MinP * p_max), then one draw from the
//     remaining tokens proportionally to their probabilities, using a PCG
//     generator (math/rand/v2) seeded from Seed (or from crypto/rand when
//     HasSeed is false). Renormalisation after each filter is implicit: the
//     draw is proportional to the unnormalised weights of the survivors.
//
// Note that this order differs from llama.cpp's default chain, which applies
// temperature last; here top_p and min_p see the temperature-scaled
// distribution (as in HF transformers / vLLM).
//
// # Cost
//
// Nothing sorts the vocabulary, and buffers live in the Sampler: after the
// first call at a given vocabulary size Sample does not allocate. On amd64
// with AVX2 and FMA the passes over the row run as AVX2 kernels
// (simd_amd64.s); elsewhere (or with -tags purego) Go loops with the same
// semantics do. Per row:
//
//   - Greedy: one pass for the maximum, one for its first index.
//   - Temperature, top_p, min_p (top_k off): one pass computes every
//     weight exp((logit-max)/T) with float64 sums per block of 256 tokens
//     (plus one pass for the maximum when min_p is set); a draw is a binary
//     search over the blocks and a scan of one block. top_p does not build
//     the nucleus: a draw from the whole (min_p-filtered) distribution is
//     accepted when the mass of the tokens ranked above it is below
//     TopP*Z, one masked-sum pass per tested proposal (on average fewer
//     than 1/TopP, and about one for the usual TopP >= 0.9). This is exact
//     rejection sampling: the result has exactly the renormalised
//     distribution over the nucleus. After 64 misses in a row (a nucleus
//     with a tiny share of a flat row's mass) the nucleus is sorted instead.
//   - top_k up to 256: one pass with a bounded heap (only tokens above its
//     root are looked at), then work on the k sorted survivors only.
//   - Larger top_k: a threshold guessed from 1024 evenly spaced logits, one
//     pass gathering the tokens above it, a linear selection of the exact k
//     best, then the draw and top_p test over those k (unsorted).
//
// Weights use a float32 exp with < 3e-7 relative error, sums are float64
// (with float32 partial sums of at most 32 terms in the top_p test).
// Tokens with p/p_max < e^-87 (float32 underflow) get no weight, or one
// below e^-87 relative (then effectively never drawn); NaN and -Inf logits
// get none.
//
// # Concurrency
//
// A Sampler is not safe for concurrent use, but distinct Samplers share no
// mutable state (the only package-level variable, the CPU feature flag, is
// set at init), so one goroutine per sequence can each run its own Sampler
// on its own logits row in parallel. Logprobs is a pure function and safe
// to call concurrently on rows nobody is writing.
//
// # Reproducibility
//
// With HasSeed, the same Params, the same sequence of logits rows and
// Accept calls give the same tokens. The number of random numbers consumed
// per Sample varies (rejection sampling), so sequences are not comparable
// across different settings or versions of this package. The AVX2 and Go
// exp differ in the last bit of some weights, so on rare boundary draws
// the same seed can give different tokens on CPUs with and without AVX2.
//
// # Special values
//
// NaN logits are treated as -Inf (never chosen unless every logit is NaN/-Inf,
// in which case Sample returns the greedy result, id 0). If the maximum logit
// is +Inf, the lowest id holding +Inf is returned. An empty row returns -1.
package sampler

import (
	crand "crypto/rand"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
)

// Params configures a Sampler. The zero value is greedy decoding without
// penalties. Values are not clamped to the documented ranges; the caller
// validates requests.
type Params struct {
	Temperature      float32           // 0 (or less, or NaN) = greedy argmax (ties: lowest token id). Range 0..2.
	TopK             int               // <=0 (or >= vocab): off
	TopP             float32           // <=0 or >=1: off
	MinP             float32           // <=0: off
	RepeatPenalty    float32           // llama.cpp semantics; 1 or <=0: off
	RepeatLastN      int               // window for RepeatPenalty / presence / frequency; <=0 = all accepted tokens
	PresencePenalty  float32           // OpenAI semantics over accepted tokens, -2..2
	FrequencyPenalty float32           // OpenAI semantics over accepted tokens, -2..2
	LogitBias        map[int32]float32 // added to logits; -100 effectively bans
	Seed             uint64            // RNG seed, used when HasSeed is true
	HasSeed          bool              // false: seed from crypto/rand
}

// Sampler draws tokens from logits according to Params. Create one per
// request with New; it is not safe for concurrent use, but separate
// Samplers may run in parallel (see Concurrency in the package doc).
type Sampler struct {
	p Params

	temp     float32
	invT     float32
	topK     int
	topP     float32 // 0 when off
	minP     float32 // 0 when off
	lnMinP   float32 // ln(minP) (scaled-logit threshold), -Inf when off
	penalize bool

	// simd: use the AVX2 kernels (tests clear it to run the Go kernels).
	// fallbacks counts sampleFull's sorted fallbacks (tests).
	simd      bool
	fallbacks int

	rng rand.PCG

	biasTok []int32
	biasVal []float32

	// Penalty window: history of accepted tokens, the window start, and the
	// distinct tokens in the window with their counts (pos maps token ->
	// index in distinct).
	hist     []int32
	winStart int
	distinct []int32
	dcount   []int32
	pos      map[int32]int32

	// Reused work buffers.
	w     []float32 // per-token (or per-candidate) weights exp(x)
	cum   []float64 // cumulative weight per block of blockSize tokens
	bmax  []float32 // per block: the maximum its weights are relative to
	bhi   []float32 // per block: its largest logit
	scale []float64 // per block: exp((bmax-m)/T), m the row maximum
	heap  []entry   // top-k heap / sorted top-k
	ec    expConsts // expBlock's parameters
	cids  []int32   // ConstrainTop's candidates
	cok   []bool
	fbk   []int32   // top_p fallback: candidates to sort
	wa    []float32 // sampleTopKLarge: weights before min_p
	smp   []entry   // sampleTopKLarge: threshold sample
	cand  []entry   // sampleTopKLarge: candidates
	idx   []int32   // sampleTopKLarge: gathered token ids
}

type entry struct {
	v  float32
	id int32
}

// New returns a Sampler for p. LogitBias is copied; later changes to the map
// have no effect.
func New(p Params) *Sampler {
	s := &Sampler{p: p, simd: useAVX2}
	if p.Temperature > 0 {
		s.temp = p.Temperature
		s.invT = 1 / p.Temperature
	}
	if p.TopK > 0 {
		s.topK = p.TopK
	}
	if p.TopP > 0 && p.TopP < 1 {
		s.topP = p.TopP
	}
	s.lnMinP = float32(math.Inf(-1))
	if p.MinP > 0 {
		s.minP = p.MinP
		s.lnMinP = float32(math.Log(float64(p.MinP)))
	}
	s.penalize = (p.RepeatPenalty > 0 && p.RepeatPenalty != 1) || p.PresencePenalty != 0 || p.FrequencyPenalty != 0
	if len(p.LogitBias) > 0 {
		s.biasTok = make([]int32, 0, len(p.LogitBias))
		for t := range p.LogitBias {
			s.biasTok = append(s.biasTok, t)
		}
		slices.Sort(s.biasTok)
		s.biasVal = make([]float32, len(s.biasTok))
		for i, t := range s.biasTok {
			s.biasVal[i] = p.LogitBias[t]
		}
	}
	var s1, s2 uint64
	if p.HasSeed {
		s1 = p.Seed
		s2 = p.Seed ^ 0x9e3779b97f4a7c15
	} else {
		var b [16]byte
		_, _ = crand.Read(b[:]) // never returns an error since Go 1.24
		s1 = binary.LittleEndian.Uint64(b[:8])
		s2 = binary.LittleEndian.Uint64(b[8:])
	}
	s.rng.Seed(s1, s2)
	s.pos = make(map[int32]int32)
	return s
}

// Params returns the parameters the Sampler was created with.
func (s *Sampler) Params() Params { return s.p }

// Accept records a generated token for the repetition, presence and frequency
// penalties. Sample does not call it; the caller decides which tokens count
// (normally every token returned by Sample).
func (s *Sampler) Accept(tok int32) {
	s.hist = append(s.hist, tok)
	s.addCount(tok)
	if n := s.p.RepeatLastN; n > 0 {
		for len(s.hist)-s.winStart > n {
			s.removeCount(s.hist[s.winStart])
			s.winStart++
		}
		// Keep the history bounded: drop the prefix that left the window
		// once it is as large as the window itself.
		if s.winStart >= n && s.winStart >= 256 {
			k := copy(s.hist, s.hist[s.winStart:])
			s.hist = s.hist[:k]
			s.winStart = 0
		}
	}
}

func (s *Sampler) addCount(tok int32) {
	if i, ok := s.pos[tok]; ok {
		s.dcount[i]++
		return
	}
	s.pos[tok] = int32(len(s.distinct))
	s.distinct = append(s.distinct, tok)
	s.dcount = append(s.dcount, 1)
}

func (s *Sampler) removeCount(tok int32) {
	i := s.pos[tok]
	s.dcount[i]--
	if s.dcount[i] > 0 {
		return
	}
	last := int32(len(s.distinct) - 1)
	if i != last {
		moved := s.distinct[last]
		s.distinct[i] = moved
		s.dcount[i] = s.dcount[last]
		s.pos[moved] = i
	}
	s.distinct = s.distinct[:last]
	s.dcount = s.dcount[:last]
	delete(s.pos, tok)
}

// Reset forgets the accepted tokens (the penalty window). The RNG state is
// kept.
func (s *Sampler) Reset() {
	s.hist = s.hist[:0]
	s.winStart = 0
	s.distinct = s.distinct[:0]
	s.dcount = s.dcount[:0]
	clear(s.pos)
}

// Sample picks a token from a logits row (len = vocab). It modifies logits in
// place by adding the logit bias and applying the penalties (and nothing
// else); the caller owns the row and allows it. See the package
// documentation for the order of operations. It returns -1 for an empty row.
func (s *Sampler) Sample(logits []float32) int32 {
	s.Prepare(logits)
	return s.Pick(logits)
}

// Prepare is Sample's first half: it adds the logit bias and applies the
// penalties to logits in place.
func (s *Sampler) Prepare(logits []float32) {
	s.applyBias(logits)
	if s.penalize {
		s.applyPenalties(logits)
	}
}

// Pick is Sample's second half: it draws a token from logits that Prepare
// has already adjusted, without modifying them. Calling Pick again after
// masking tokens (setting their logits to -Inf) draws among the rest; each
// call consumes randomness, so a seeded request stays reproducible.
func (s *Sampler) Pick(logits []float32) int32 {
	n := len(logits)
	if n == 0 {
		return -1
	}
	if s.temp == 0 {
		return int32(argmaxOf(logits, s.simd))
	}
	if s.topK > 0 && s.topK < n {
		if s.topK > smallTopK {
			return s.sampleTopKLarge(logits)
		}
		return s.sampleTopK(logits)
	}
	return s.sampleFull(logits)
}

func (s *Sampler) applyBias(logits []float32) {
	n := len(logits)
	for i, t := range s.biasTok {
		if t >= 0 && int(t) < n {
			logits[t] += s.biasVal[i]
		}
	}
}

func (s *Sampler) applyPenalties(logits []float32) {
	n := len(logits)
	rp := s.p.RepeatPenalty
	useRP := rp > 0 && rp != 1
	fp, pp := s.p.FrequencyPenalty, s.p.PresencePenalty
	dc := s.dcount[:len(s.distinct)]
	for i, t := range s.distinct {
		if t < 0 || int(t) >= n {
			continue
		}
		l := logits[t]
		if useRP {
			if l > 0 {
				l /= rp
			} else {
				l *= rp
			}
		}
		l -= float32(dc[i])*fp + pp
		logits[t] = l
	}
}

// uniform returns a float64 in [0, 1).
func (s *Sampler) uniform() float64 {
	return float64(s.rng.Uint64()>>11) * (1.0 / (1 << 53))
}

// special handles a maximum logit that is not finite: -Inf (everything
// banned, or all NaN) and +Inf both resolve to the greedy choice.
func special(m float32) bool {
	return math.IsInf(float64(m), 0)
}

// blockSize is the number of tokens per partial sum used by the draw.
const blockSize = 256

// maxRejections bounds the top_p rejection loop before sampleFull settles
// the nucleus by sorting (see there).
const maxRejections = 64

// sampleFull samples over the whole vocabulary: temperature, softmax, top_p,
// min_p.
//
// One pass computes every weight, per block of blockSize tokens: without
// min_p relative to the block's own maximum bm (found in the same kernel
// call, so the row is read from memory once), w = exp((logit-bm)/T), the
// block's weights then scaled by exp((bm-m)/T) (s.scale) to the row's
// maximum m; with min_p relative to m itself (found by a first pass, as the
// threshold depends on it), zero below the threshold. A draw is a binary
// search over the blocks' cumulative sums and a scan of one block.
//
// The nucleus is never built: the draw is proposed from the min_p survivors
// and accepted when the token is in the nucleus, which gives exactly the
// renormalised distribution over nucleus ∩ survivors. A token is in the
// nucleus iff the mass of the tokens ranked above it (logit descending, ties
// by lower id) is below TopP*Z (one more pass, massBefore, which skips the
// blocks whose maximum is below the token); a token found outside decides
// every token ranked below it, so later proposals mostly need no pass. The
// maximum is in both sets, so acceptance is at least p_max of the proposal;
// after maxRejections misses sortedNucleus settles it by sorting.
func (s *Sampler) sampleFull(logits []float32) int32 {
	n := len(logits)
	nb := (n + blockSize - 1) / blockSize
	w := growF32(&s.w, n)
	cum := growF64(&s.cum, nb)
	bm := growF32(&s.bmax, nb)
	scale := growF64(&s.scale, nb)
	global := s.lnMinP > expLo   // min_p: weights relative to the row maximum
	both := global && s.topP > 0 // top_p then needs the mass below min_p too
	var m float32
	var zall float64
	if global {
		// The block maxima (kept in hi for massBefore), then the weights.
		hi := growF32(&s.bhi, nb)
		m = float32(math.Inf(-1))
		for b := range nb {
			hi[b] = maxf(logits[b*blockSize:min((b+1)*blockSize, n)], s.simd)
			m = max(m, hi[b])
		}
		if special(m) || s.minP > 1 { // min_p > 1 keeps only the maximum
			return int32(argmaxOf(logits, s.simd))
		}
		s.ec.set(m, s.invT, s.lnMinP)
		for b := range nb {
			start := b * blockSize
			end := min(start+blockSize, n)
			a, all := expBlock(w[start:end], logits[start:end], &s.ec, both, s.simd)
			cum[b], bm[b], scale[b] = a, m, 1
			zall += all
		}
	} else {
		s.ec.set(0, s.invT, expLo)
		m = float32(math.Inf(-1))
		for b := range nb {
			start := b * blockSize
			end := min(start+blockSize, n)
			cum[b], bm[b] = expBlockMax(w[start:end], logits[start:end], &s.ec, s.simd)
			m = max(m, bm[b])
		}
		if special(m) {
			return int32(argmaxOf(logits, s.simd))
		}
		s.bhi = append(s.bhi[:0], bm...)
		for b, v := range bm {
			scale[b] = 0
			if x := (v - m) * s.invT; x >= expLo {
				scale[b] = float64(expNeg(x))
			}
		}
	}
	var z float64
	for b := range cum {
		z += cum[b] * scale[b]
		cum[b] = z
	}
	if !both {
		zall = z
	}
	if s.topP == 0 {
		return int32(s.draw(w, cum, scale))
	}
	target := float64(s.topP) * zall
	// Ranked above: larger logit, or equal logit and lower id.
	above := func(la float32, a int, lb float32, b int) bool {
		return la > lb || (la == lb && a < b)
	}
	outI := -1 // the highest-ranked token known to be outside the nucleus
	var outL float32
	for range maxRejections {
		i := s.draw(w, cum, scale)
		li := logits[i]
		if outI >= 0 && !above(li, i, outL, outI) {
			continue // ranked at or below a token outside the nucleus
		}
		if s.massBefore(logits, w, i) < target {
			return int32(i)
		}
		outI, outL = i, li
	}
	s.fallbacks++
	return s.sortedNucleus(logits, w, target, outI, outL)
}

// weight returns token i's weight relative to the row maximum.
func (s *Sampler) weight(w []float32, i int) float64 {
	return float64(w[i]) * s.scale[i/blockSize]
}

// massBefore returns the weight of the tokens ranked above token i (logit
// descending, ties by lower id). Every such token has x >= x_i >= the min_p
// threshold, so it was weighed.
func (s *Sampler) massBefore(logits, w []float32, i int) float64 {
	li := logits[i]
	n := len(logits)
	var a float64
	var eq int
	for b, v := range s.bhi[:len(s.cum)] {
		if v < li { // nothing in the block reaches li
			continue
		}
		start := b * blockSize
		end := min(start+blockSize, n)
		ab, eb := massAbove(logits[start:end], w[start:end], li, s.simd)
		a += ab * s.scale[b]
		eq += eb
	}
	if eq > 1 {
		// Equal logits have equal weights: count the ties before i.
		_, before := massAbove(logits[:i], w[:i], li, s.simd)
		a += float64(before) * s.weight(w, i)
	}
	return a
}

// sortedNucleus is sampleFull's last resort after maxRejections proposals
// fell outside the nucleus (a nucleus holding a tiny part of the mass of a
// flat row): the tokens ranked above the best known outsider (outI, or all
// weighed ones when outI < 0) are sorted and cut at target, then one is
// drawn. Slow but exact.
func (s *Sampler) sortedNucleus(logits, w []float32, target float64, outI int, outL float32) int32 {
	c := s.fbk[:0]
	for i, l := range logits {
		if w[i] > 0 && (outI < 0 || l > outL || (l == outL && i < outI)) {
			c = append(c, int32(i))
		}
	}
	s.fbk = c
	sortByLogit(logits, c)
	var acc float64
	k := len(c)
	for j, id := range c {
		if acc >= target {
			k = j
			break
		}
		acc += s.weight(w, int(id))
	}
	c = c[:max(k, 1)]
	var total float64
	for _, id := range c {
		total += s.weight(w, int(id))
	}
	r := s.uniform() * total
	acc = 0
	for _, id := range c {
		acc += s.weight(w, int(id))
		if acc > r {
			return id
		}
	}
	return c[len(c)-1]
}

// draw returns a token with probability w[i]*scale[i/blockSize] / total;
// cum holds the cumulative scaled sums per block of blockSize tokens.
func (s *Sampler) draw(w []float32, cum, scale []float64) int {
	r := s.uniform() * cum[len(cum)-1]
	lo, hi := 0, len(cum) // first block with cum > r
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if cum[h] > r {
			hi = h
		} else {
			lo = h + 1
		}
	}
	b := lo
	if b == len(cum) { // rounding: r == total
		b--
	}
	for b > 0 && cum[b] == cum[b-1] { // never end in an empty block
		b--
	}
	var prev float64
	if b > 0 {
		prev = cum[b-1]
	}
	start := b * blockSize
	end := min(start+blockSize, len(w))
	return start + drawIn(w[start:end], (r-prev)/scale[b])
}

// drawIn returns the first index whose cumulative weight exceeds r, or the
// last positive weight if rounding leaves r unreached.
func drawIn(w []float32, r float64) int {
	var acc float64
	last := -1
	for j, e := range w {
		if e > 0 {
			acc += float64(e)
			last = j
			if acc > r {
				return j
			}
		}
	}
	if last < 0 {
		return 0
	}
	return last
}

// drawCand draws among candidate ids with weights w[id].
func (s *Sampler) drawCand(cand []int32, w []float32, total float64) int32 {
	r := s.uniform() * total
	var acc float64
	last := cand[0]
	for _, id := range cand {
		e := w[id]
		if e > 0 {
			acc += float64(e)
			last = id
			if acc > r {
				return id
			}
		}
	}
	return last
}

func growF32(p *[]float32, n int) []float32 {
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return *p
}

func growF64(p *[]float64, n int) []float64 {
	if cap(*p) < n {
		*p = make([]float64, n)
	}
	*p = (*p)[:n]
	return *p
}
