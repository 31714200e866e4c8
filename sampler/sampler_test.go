package sampler

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// naiveArgmax is the reference greedy choice: largest value, lowest id on
// ties, NaN ignored.
func naiveArgmax(x []float32) int32 {
	best := int32(0)
	bv := math.Inf(-1)
	for i, v := range x {
		if float64(v) > bv {
			bv = float64(v)
			best = int32(i)
		}
	}
	return best
}

func randLogits(r *rand.Rand, n int, sd float64) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * sd)
	}
	return l
}

// order returns token ids sorted by logit descending, ties by lower id.
func order(l []float32) []int32 {
	ids := make([]int32, len(l))
	for i := range ids {
		ids[i] = int32(i)
	}
	slices.SortStableFunc(ids, func(a, b int32) int { return cmp.Compare(l[b], l[a]) })
	return ids
}

// refProbs is an independent float64 implementation of the documented
// pipeline (no bias/penalties): top_k -> temperature -> softmax -> top_p ->
// min_p. It returns the final distribution and whether some cut is too close
// to call (within 1e-6 of the normaliser for top_p, 1e-5 of p/p_max for
// min_p: far above the float32 rounding of the implementation, far below any
// real difference), in which case callers pick other logits.
func refProbs(l []float32, p Params) (probs []float64, ambiguous bool) {
	n := len(l)
	ids := order(l)
	if p.TopK > 0 && p.TopK < n {
		ids = ids[:p.TopK]
	}
	m := float64(l[ids[0]])
	T := float64(p.Temperature)
	w := make([]float64, len(ids))
	var z float64
	for j, id := range ids {
		w[j] = math.Exp((float64(l[id]) - m) / T)
		z += w[j]
	}
	cut := len(ids)
	if p.TopP > 0 && p.TopP < 1 {
		target := float64(p.TopP) * z
		var acc float64
		for j := range ids {
			acc += w[j]
			if math.Abs(acc-target) < 1e-6*z {
				ambiguous = true
			}
			if acc >= target {
				cut = j + 1
				break
			}
		}
	}
	probs = make([]float64, n)
	var tot float64
	for j := 0; j < cut; j++ {
		if p.MinP > 0 {
			if j > 0 && math.Abs(w[j]-float64(p.MinP)) < 1e-5 {
				ambiguous = true
			}
			if w[j] < float64(p.MinP) { // w[0] == 1 == p_max/p_max
				continue
			}
		}
		probs[ids[j]] = w[j]
		tot += w[j]
	}
	for i := range probs {
		probs[i] /= tot
	}
	return probs, ambiguous
}

func TestGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ninf := float32(math.Inf(-1))
	nan := float32(math.NaN())
	cases := []struct {
		name   string
		logits []float32
		want   int32 // -2: compare with naiveArgmax
	}{
		{"single", []float32{3}, 0},
		{"tie-first", []float32{5, 5, 1}, 0},
		{"tie-later", []float32{1, 7, 3, 7, 7}, 1},
		{"all-equal", []float32{2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 0},
		{"negative", []float32{-3, -1, -2}, 1},
		{"nan-ignored", []float32{nan, 1, 4, nan, 4}, 2},
		{"nan-in-blocks", []float32{nan, 1, 2, 9, 0, 0, 0, 0, nan, 9, 3, 9, 0, 0, 0, 0, 9.5, nan, 9.5, 1, 1}, 16},
		{"late-max", append(make([]float32, 100), 1, 0, 1), 100},
		{"all-neg-inf", []float32{ninf, ninf, ninf}, 0},
		{"pos-inf", []float32{1, float32(math.Inf(1)), 3, float32(math.Inf(1))}, 1},
		{"empty", []float32{}, -1},
	}
	for i := 0; i < 20; i++ {
		n := 1 + r.IntN(5000)
		l := randLogits(r, n, 3)
		// Quantize to force ties.
		if i%2 == 0 {
			for j := range l {
				l[j] = float32(math.Round(float64(l[j])))
			}
		}
		cases = append(cases, struct {
			name   string
			logits []float32
			want   int32
		}{fmt.Sprintf("random-%d-n%d", i, n), l, -2})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.want
			if want == -2 {
				want = naiveArgmax(c.logits)
			}
			for _, temp := range []float32{0, -1} {
				s := New(Params{Temperature: temp, HasSeed: true})
				if got := s.Sample(slices.Clone(c.logits)); got != want {
					t.Fatalf("T=%v: got %d, want %d", temp, got, want)
				}
			}
			// Greedy ignores top_k/top_p/min_p.
			s := New(Params{TopK: 3, TopP: 0.5, MinP: 0.2, HasSeed: true})
			if got := s.Sample(slices.Clone(c.logits)); got != want {
				t.Fatalf("with filters: got %d, want %d", got, want)
			}
		})
	}
}

// checkFreq draws n tokens and compares the empirical frequencies with probs.
// Bound: a count is Binomial(N, p), so |freq-p| <= 5*sqrt(p(1-p)/N) holds
// except with probability ~6e-7 (5 sigma, normal approximation). Tokens with
// an expected count below 200, where that approximation is poor, are pooled
// in id order into groups of expected count >= 200 and each group is checked
// the same way. Tokens with p == 0 must never appear. The extra 1e-6 absorbs
// float32 rounding of the weights.
func checkFreq(t *testing.T, s *Sampler, logits []float32, probs []float64, n int) {
	t.Helper()
	counts := make([]int, len(logits))
	buf := make([]float32, len(logits))
	for range n {
		copy(buf, logits)
		counts[s.Sample(buf)]++
	}
	check := func(what string, p float64, c int) {
		f := float64(c) / float64(n)
		bound := 5*math.Sqrt(p*(1-p)/float64(n)) + 1e-6
		if math.Abs(f-p) > bound {
			t.Errorf("%s: freq %.5f, want %.5f ± %.5f", what, f, p, bound)
		}
	}
	var gp float64
	var gc, gfirst int
	for i, p := range probs {
		switch {
		case p == 0:
			if counts[i] != 0 {
				t.Errorf("token %d has p=0 but was drawn %d times", i, counts[i])
			}
		case p*float64(n) >= 200:
			check(fmt.Sprintf("token %d", i), p, counts[i])
		default:
			if gp == 0 {
				gfirst = i
			}
			gp += p
			gc += counts[i]
			if gp*float64(n) >= 200 {
				check(fmt.Sprintf("tokens %d..%d", gfirst, i), gp, gc)
				gp, gc = 0, 0
			}
		}
	}
	if gp > 0 {
		check(fmt.Sprintf("tokens %d..", gfirst), gp, gc)
	}
}

func TestDistribution(t *testing.T) {
	draws := 200_000
	if raceOn || testing.Short() {
		draws = 20_000 // the 5-sigma bounds below scale with the draw count
	}
	r := rand.New(rand.NewPCG(7, 7))
	base := randLogits(r, 12, 1.5)
	base[3] += 2
	base[9] += 1.5
	// Two tokens in the same 1/32-wide bucket of the rejection sampler
	// (x = 0 and x = -0.031): p = 0.5078/0.4922 comes only from the accept
	// step; a sampler drawing uniformly inside a bucket gives 0.5/0.5, off
	// by 7 sigma at 200k draws (2.2 sigma at the 20k drawn under -race or
	// -short, where this case is only a smoke test).
	sameBucket := []float32{0, -0.031}
	// A far lump: 2000 tokens at x ≈ -12.3 (beyond the rejection sampler's
	// near list) holding ~1% of the mass.
	farLump := make([]float32, 2007)
	farLump[0] = 0
	for i := 1; i < 6; i++ {
		farLump[i] = -1 - float32(i)*0.1
	}
	for i := 6; i < len(farLump); i++ {
		farLump[i] = -12.3 + float32(r.NormFloat64()*0.01)
	}
	// A flat vocabulary: more near tokens than the near list holds (its
	// capacity is cut to 256 below).
	flatBig := randLogits(r, 3001, 0.5)
	flatBig[0] = 3
	// Quantized logits: ties straddle the top_p and top_k cuts (ranked by
	// lower id).
	ties := make([]float32, 3000)
	for i := range ties {
		ties[i] = float32(r.IntN(6)) * 0.5
	}
	// An LLM-like row (a background and a few peaks), small enough for
	// the reference.
	peaks := randLogits(r, 4000, 2.5)
	for j := 0; j < 6; j++ {
		peaks[r.IntN(len(peaks))] = 8 + float32(j)
	}
	cases := []struct {
		logits []float32
		p      Params
	}{
		{base, Params{Temperature: 0.3}},
		{base, Params{Temperature: 0.7}},
		{base, Params{Temperature: 1}},
		{base, Params{Temperature: 1.5}},
		{base, Params{Temperature: 2}},
		{sameBucket, Params{Temperature: 1}},
		{farLump, Params{Temperature: 1}},
		{flatBig, Params{Temperature: 1}},
		{flatBig, Params{Temperature: 1, TopP: 0.6}},
		{base, Params{Temperature: 1, TopK: 4}},
		{base, Params{Temperature: 0.8, TopP: 0.9}},
		{base, Params{Temperature: 1.3, TopP: 0.7}},
		{base, Params{Temperature: 1, MinP: 0.1}},
		{base, Params{Temperature: 1.2, TopK: 8, TopP: 0.95, MinP: 0.05}},
		// The settings that used to be slow paths, and the large-top_k
		// selection (k > smallTopK).
		{flatBig, Params{Temperature: 1.5, TopP: 0.95}},
		{flatBig, Params{Temperature: 2, TopP: 0.3}},
		{flatBig, Params{Temperature: 1, TopP: 0.05}},
		{peaks, Params{Temperature: 1.5, TopP: 0.95}},
		{peaks, Params{Temperature: 2, TopP: 0.5, MinP: 0.001}},
		{peaks, Params{Temperature: 0.8, MinP: 0.05}},
		{peaks, Params{Temperature: 1, TopP: 1, TopK: 0}},
		{ties, Params{Temperature: 1, TopP: 0.4}},
		{ties, Params{Temperature: 1, TopK: 700}},
		{ties, Params{Temperature: 1.3, TopK: 900, TopP: 0.5}},
		{flatBig, Params{Temperature: 1, TopK: 500}},
		{flatBig, Params{Temperature: 1.7, TopK: 1200, TopP: 0.8, MinP: 0.3}},
		{peaks, Params{Temperature: 1.5, TopK: 300, TopP: 0.9}},
	}
	for i, c := range cases {
		probs, amb := refProbs(c.logits, c.p)
		if amb {
			t.Fatalf("case %d: test logits make a cut ambiguous; pick others", i)
		}
		for _, exact := range []bool{false, true} {
			p := c.p
			name := fmt.Sprintf("%d/T=%v/k=%d/p=%v/minp=%v/exact=%v", i, p.Temperature, p.TopK, p.TopP, p.MinP, exact)
			t.Run(name, func(t *testing.T) {
				p.HasSeed, p.Seed = true, uint64(100+i)
				s := New(p)
				s.simd = useAVX2 && !exact
				n := draws
				if len(c.logits) > 1000 {
					n = draws / 4 // slower per draw; the bound scales with n
				}
				checkFreq(t, s, c.logits, probs, n)
			})
		}
	}
}

// genUnambiguous returns random logits for which refProbs(p) has no cut
// within the margin.
func genUnambiguous(t *testing.T, r *rand.Rand, n int, sd float64, p Params) ([]float32, []float64) {
	t.Helper()
	for range 1000 {
		l := randLogits(r, n, sd)
		if probs, amb := refProbs(l, p); !amb {
			return l, probs
		}
	}
	t.Fatal("no unambiguous logits found")
	return nil, nil
}

// TestFiltersNeverOutside draws many times and checks that top_p, top_k and
// min_p never return a token outside the set allowed by an independent
// float64 computation (refProbs: nucleus from the sorted float64 softmax,
// the k best with ties by lower id, p >= min_p*p_max).
func TestFiltersNeverOutside(t *testing.T) {
	cases := []struct {
		name  string
		n     int
		sd    float64
		p     Params
		draws int
	}{
		{"top_p0.9/T0.8/n64", 64, 2, Params{Temperature: 0.8, TopP: 0.9}, 3000},
		{"top_p0.5/T1/n1000", 1000, 2, Params{Temperature: 1, TopP: 0.5}, 2000},
		{"top_p0.95/T2/n32000-flat", 32000, 0.5, Params{Temperature: 2, TopP: 0.95}, 30},
		{"top_p0.3/T1.5/n20000", 20000, 3, Params{Temperature: 1.5, TopP: 0.3}, 100},
		{"top_p0.99/T0.5/n5000", 5000, 4, Params{Temperature: 0.5, TopP: 0.99}, 300},
		{"top_k1/T1", 100, 2, Params{Temperature: 1, TopK: 1}, 500},
		{"top_k5/T1.5", 100, 2, Params{Temperature: 1.5, TopK: 5}, 3000},
		{"top_k40/T2/n32000", 32000, 2, Params{Temperature: 2, TopK: 40}, 200},
		{"min_p0.1/T1", 200, 2, Params{Temperature: 1, MinP: 0.1}, 3000},
		{"min_p0.05/T1.8/n32000", 32000, 3, Params{Temperature: 1.8, MinP: 0.05}, 200},
		{"min_p1", 50, 2, Params{Temperature: 1, MinP: 1}, 200},
		{"top_k20+top_p0.8+min_p0.05", 500, 2, Params{Temperature: 1.1, TopK: 20, TopP: 0.8, MinP: 0.05}, 3000},
		{"top_p0.9+min_p0.2/n3000", 3000, 3, Params{Temperature: 1, TopP: 0.9, MinP: 0.2}, 1000},
		{"top_k500/T1/n20000", 20000, 2, Params{Temperature: 1, TopK: 500}, 300},
		{"top_k2000+top_p0.7+min_p0.01/n20000", 20000, 1, Params{Temperature: 1.5, TopK: 2000, TopP: 0.7, MinP: 0.01}, 300},
		{"top_p0.01/T2/n20000-flat", 20000, 0.3, Params{Temperature: 2, TopP: 0.01}, 100},
	}
	for ci, c := range cases {
		for _, exact := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/exact=%v", c.name, exact), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(ci), 99))
				l, probs := genUnambiguous(t, r, c.n, c.sd, c.p)
				p := c.p
				p.HasSeed, p.Seed = true, uint64(ci)
				s := New(p)
				s.simd = useAVX2 && !exact
				buf := make([]float32, len(l))
				seen := 0
				for range c.draws {
					copy(buf, l)
					tok := s.Sample(buf)
					if tok < 0 || int(tok) >= len(l) || probs[tok] == 0 {
						t.Fatalf("drew token %d outside the allowed set", tok)
					}
					seen++
				}
				// The allowed set is not trivially tiny for most cases: make
				// sure the test can see a violation (more than one allowed
				// token exists and there are disallowed ones).
				allowed := 0
				for _, pr := range probs {
					if pr > 0 {
						allowed++
					}
				}
				if allowed == len(l) {
					t.Fatalf("filter removed nothing; test is vacuous")
				}
			})
		}
	}
}

func TestTopKTies(t *testing.T) {
	// Four tokens share the 2nd-best value; top_k=3 must keep ids 0 (best),
	// 1 and 3 (lowest ids among the tied) and never 5 or 6.
	l := []float32{9, 4, 1, 4, 0, 4, 4}
	for _, exact := range []bool{false, true} {
		t.Run(fmt.Sprintf("exact=%v", exact), func(t *testing.T) {
			s := New(Params{Temperature: 2, TopK: 3, HasSeed: true, Seed: 5})
			s.simd = useAVX2 && !exact
			got := map[int32]int{}
			for range 20000 {
				got[s.Sample(slices.Clone(l))]++
			}
			for tok := range got {
				if tok != 0 && tok != 1 && tok != 3 {
					t.Fatalf("drew %d: %v", tok, got)
				}
			}
			if got[1] == 0 || got[3] == 0 {
				t.Fatalf("tied kept tokens never drawn: %v", got)
			}
		})
	}
}

func TestSeed(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	l := randLogits(r, 2000, 1)
	seq := func(p Params) []int32 {
		s := New(p)
		out := make([]int32, 200)
		for i := range out {
			out[i] = s.Sample(slices.Clone(l))
			s.Accept(out[i])
		}
		return out
	}
	for _, p := range []Params{
		{Temperature: 1},
		{Temperature: 0.8, TopP: 0.9},
		{Temperature: 1.2, TopK: 50},
		{Temperature: 1, MinP: 0.05, FrequencyPenalty: 0.3},
	} {
		t.Run(fmt.Sprintf("T=%v/k=%d/p=%v/minp=%v", p.Temperature, p.TopK, p.TopP, p.MinP), func(t *testing.T) {
			a, b := p, p
			a.HasSeed, a.Seed = true, 42
			b.HasSeed, b.Seed = true, 42
			if x, y := seq(a), seq(b); !slices.Equal(x, y) {
				t.Fatalf("same seed, different sequences")
			}
			b.Seed = 43
			if x, y := seq(a), seq(b); slices.Equal(x, y) {
				t.Fatalf("different seeds, same sequence")
			}
			c, d := p, p // crypto seeds
			if x, y := seq(c), seq(d); slices.Equal(x, y) {
				t.Fatalf("unseeded samplers gave the same sequence")
			}
		})
	}
}

func TestPenaltiesExact(t *testing.T) {
	// Accepted: 2 (x3), 5 (x1), 7 (x2, but only the last one is in a window
	// of 4 — see "window").
	hist := []int32{7, 2, 7, 2, 5, 2}
	base := []float32{1.0, -0.5, 3.0, 0.25, 2.0, -1.5, 0.0, 4.0}
	cases := []struct {
		name string
		p    Params
		want func(tok int, l float32, count int) float32
		win  int
	}{
		{"frequency", Params{FrequencyPenalty: 0.5}, func(_ int, l float32, c int) float32 { return l - float32(c)*0.5 }, 0},
		{"presence", Params{PresencePenalty: 0.75}, func(_ int, l float32, c int) float32 {
			if c > 0 {
				return l - 0.75
			}
			return l
		}, 0},
		{"both-negative", Params{FrequencyPenalty: -0.25, PresencePenalty: -1}, func(_ int, l float32, c int) float32 {
			v := l - float32(c)*-0.25
			if c > 0 {
				v -= -1
			}
			return v
		}, 0},
		{"repeat", Params{RepeatPenalty: 1.5}, func(_ int, l float32, c int) float32 {
			if c == 0 {
				return l
			}
			if l > 0 {
				return l / 1.5
			}
			return l * 1.5
		}, 0},
		{"repeat-then-openai", Params{RepeatPenalty: 2, FrequencyPenalty: 0.1, PresencePenalty: 0.2}, func(_ int, l float32, c int) float32 {
			if c == 0 {
				return l
			}
			if l > 0 {
				l /= 2
			} else {
				l *= 2
			}
			return l - (float32(c)*0.1 + 0.2)
		}, 0},
		{"window", Params{FrequencyPenalty: 1, RepeatLastN: 4}, func(_ int, l float32, c int) float32 { return l - float32(c) }, 4},
		{"bias", Params{LogitBias: map[int32]float32{0: 2.5, 6: -100, 99: 5, -1: 5}}, func(tok int, l float32, _ int) float32 {
			switch tok {
			case 0:
				return l + 2.5
			case 6:
				return l - 100
			}
			return l
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := New(c.p)
			for _, tok := range hist {
				s.Accept(tok)
			}
			counts := map[int]int{}
			h := hist
			if c.win > 0 {
				h = hist[len(hist)-c.win:]
			}
			if c.name != "bias" {
				for _, tok := range h {
					counts[int(tok)]++
				}
			}
			l := slices.Clone(base)
			s.Sample(l) // greedy; modifies l in place
			for i := range base {
				if want := c.want(i, base[i], counts[i]); l[i] != want {
					t.Errorf("token %d: logit %v, want %v (count %d)", i, l[i], want, counts[i])
				}
			}
		})
	}
}

func TestPenaltiesFlipGreedy(t *testing.T) {
	// Token 0 leads token 1 by 1.0. Token 0 was generated twice.
	base := []float32{5, 4, 1, 0}
	cases := []struct {
		name string
		p    Params
		want int32
	}{
		{"none", Params{}, 0},
		{"frequency-0.4", Params{FrequencyPenalty: 0.4}, 0}, // 5-0.8 = 4.2 > 4
		{"frequency-0.6", Params{FrequencyPenalty: 0.6}, 1}, // 5-1.2 = 3.8 < 4
		{"presence-0.9", Params{PresencePenalty: 0.9}, 0},   // 4.1 > 4
		{"presence-1.1", Params{PresencePenalty: 1.1}, 1},   // 3.9 < 4
		{"both", Params{PresencePenalty: 0.5, FrequencyPenalty: 0.3}, 1},
		{"repeat-1.3", Params{RepeatPenalty: 1.3}, 1},                       // 5/1.3 = 3.85
		{"repeat-1.2", Params{RepeatPenalty: 1.2}, 0},                       // 5/1.2 = 4.17
		{"window-excludes", Params{FrequencyPenalty: 2, RepeatLastN: 1}, 0}, // last token is 3
		{"bias-ban", Params{LogitBias: map[int32]float32{0: -100}}, 1},
		{"bias-promote", Params{LogitBias: map[int32]float32{3: 5.5}}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := New(c.p)
			s.Accept(0)
			s.Accept(0)
			s.Accept(3)
			if got := s.Sample(slices.Clone(base)); got != c.want {
				t.Fatalf("got %d, want %d", got, c.want)
			}
		})
	}
}

func TestLogitBiasBansWhenSampling(t *testing.T) {
	l := []float32{3, 2.9, 2.8, 1}
	for _, temp := range []float32{0.5, 1, 2} {
		t.Run(fmt.Sprintf("T=%v", temp), func(t *testing.T) {
			s := New(Params{Temperature: temp, LogitBias: map[int32]float32{0: -100, 1: -100}, HasSeed: true, Seed: 1})
			seen := map[int32]int{}
			for range 50000 {
				seen[s.Sample(slices.Clone(l))]++
			}
			if seen[0] != 0 || seen[1] != 0 {
				t.Fatalf("banned tokens drawn: %v", seen)
			}
			if seen[2] == 0 || seen[3] == 0 {
				t.Fatalf("allowed tokens never drawn: %v", seen)
			}
		})
	}
}

func TestWindowSlides(t *testing.T) {
	s := New(Params{FrequencyPenalty: 1, RepeatLastN: 3})
	for i := 0; i < 1000; i++ {
		s.Accept(int32(i % 7))
	}
	// Window holds the last 3 accepted: 999%7=5, 998%7=4, 997%7=3.
	l := make([]float32, 7)
	s.Sample(l)
	for i, v := range l {
		want := float32(0)
		if i >= 3 && i <= 5 {
			want = -1
		}
		if v != want {
			t.Fatalf("token %d: %v, want %v (all %v)", i, v, want, l)
		}
	}
	if len(s.hist) > 600 {
		t.Fatalf("history not trimmed: %d", len(s.hist))
	}
	s.Reset()
	l = make([]float32, 7)
	s.Sample(l)
	for i, v := range l {
		if v != 0 {
			t.Fatalf("after Reset token %d penalised: %v", i, v)
		}
	}
}

func TestLogprobs(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	cases := []struct {
		name   string
		logits []float32
		tok    int32
		n      int
	}{
		{"small", []float32{1, 2, 3, 2}, 2, 4},
		{"ties", []float32{0, 5, 1, 5, 5, 2}, 4, 5},
		{"n0", []float32{1, 2, 3}, 0, 0},
		{"n-clamped-to-vocab", []float32{1, 2, 3}, 1, 20},
		{"n-clamped-to-20", randLogits(r, 1000, 3), 7, 50},
		{"tok-out-of-range", []float32{1, 2}, 5, 1},
		{"vocab-32000", randLogits(r, 32000, 3), 123, 20},
		{"vocab-151936", randLogits(r, 151936, 2), 151935, 5},
	}
	ninf, pinf, nan := float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.NaN())
	special := []struct {
		name    string
		logits  []float32
		tok     int32
		n       int
		wantTok float32
		want    []TokenLogprob
	}{
		{"empty", nil, 0, 3, ninf, []TokenLogprob{}},
		{"all-neg-inf", []float32{ninf, ninf}, 1, 2, ninf, []TokenLogprob{{0, ninf}, {1, ninf}}},
		{"pos-inf", []float32{1, pinf, 2}, 1, 2, 0, []TokenLogprob{{1, 0}, {2, ninf}}},
		{"nan", []float32{0, nan, 0}, 1, 3, ninf, []TokenLogprob{{0, float32(-math.Ln2)}, {2, float32(-math.Ln2)}, {1, ninf}}},
	}
	for _, c := range special {
		t.Run(c.name, func(t *testing.T) {
			lp, top := Logprobs(c.logits, c.tok, c.n)
			if lp != c.wantTok || !slices.Equal(top, c.want) {
				t.Fatalf("got %v %v, want %v %v", lp, top, c.wantTok, c.want)
			}
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lp, top := Logprobs(c.logits, c.tok, c.n)
			// Reference log-sum-exp in float64 with math.Exp.
			m := math.Inf(-1)
			for _, v := range c.logits {
				m = math.Max(m, float64(v))
			}
			var sum float64
			for _, v := range c.logits {
				sum += math.Exp(float64(v) - m)
			}
			lse := m + math.Log(sum)
			if int(c.tok) < len(c.logits) {
				want := float64(c.logits[c.tok]) - lse
				if math.Abs(float64(lp)-want) > 1e-5*math.Max(1, math.Abs(want)) {
					t.Fatalf("logprob(tok) = %v, want %v", lp, want)
				}
			} else if !math.IsInf(float64(lp), -1) {
				t.Fatalf("out-of-range tok: %v", lp)
			}
			// Sum of exp over all tokens ≈ 1 using the same normaliser.
			_, all := Logprobs(c.logits, 0, 0)
			if all == nil || len(all) != 0 {
				t.Fatalf("n=0 must give an empty non-nil slice, got %v", all)
			}
			var total float64
			for i := range c.logits {
				v, _ := Logprobs(c.logits[:], int32(i), 0)
				total += math.Exp(float64(v))
				if len(c.logits) > 2000 {
					break // too slow per token; checked below via lse
				}
			}
			if len(c.logits) <= 2000 && math.Abs(total-1) > 1e-5 {
				t.Fatalf("sum exp(logprob) = %v", total)
			}
			wantN := min(c.n, 20, len(c.logits))
			if len(top) != wantN {
				t.Fatalf("len(top) = %d, want %d", len(top), wantN)
			}
			ids := order(c.logits)
			for i, e := range top {
				if e.Token != ids[i] {
					t.Fatalf("top[%d] = %d, want %d (%v)", i, e.Token, ids[i], top)
				}
				want := float64(c.logits[e.Token]) - lse
				if math.Abs(float64(e.Logprob)-want) > 1e-5*math.Max(1, math.Abs(want)) {
					t.Fatalf("top[%d] logprob %v, want %v", i, e.Logprob, want)
				}
				if i > 0 {
					prev := top[i-1]
					if prev.Logprob < e.Logprob || (prev.Logprob == e.Logprob && prev.Token > e.Token) {
						t.Fatalf("not sorted at %d: %v", i, top)
					}
				}
			}
		})
	}
	t.Run("sum-exp-large", func(t *testing.T) {
		l := randLogits(r, 151936, 3)
		// All logprobs via the top-n machinery is limited to 20; use the
		// single-token form on a sample and the closed form for the sum.
		var total float64
		lp0, _ := Logprobs(l, 0, 0)
		shift := float64(lp0) - float64(l[0]) // = -lse
		for _, v := range l {
			total += math.Exp(float64(v) + shift)
		}
		if math.Abs(total-1) > 1e-4 {
			t.Fatalf("sum = %v", total)
		}
	})
	t.Run("does-not-modify", func(t *testing.T) {
		l := []float32{3, 1, 2}
		Logprobs(l, 0, 3)
		if !slices.Equal(l, []float32{3, 1, 2}) {
			t.Fatalf("modified: %v", l)
		}
	})
}

func TestExpNeg(t *testing.T) {
	worst := 0.0
	for x := 0.0; x >= expLo; x -= 0.000731 {
		got := float64(expNeg(float32(x)))
		want := math.Exp(float64(float32(x)))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 5e-7 {
		t.Fatalf("max relative error %g", worst)
	}
	t.Logf("max relative error %g", worst)
}

func TestSpecialValues(t *testing.T) {
	ninf := float32(math.Inf(-1))
	nan := float32(math.NaN())
	cases := []struct {
		name   string
		logits []float32
		allow  []int32
	}{
		{"all-banned", []float32{ninf, ninf, ninf}, []int32{0}},
		{"nan-never", []float32{nan, 1, nan, 1.5}, []int32{1, 3}},
		{"pos-inf", []float32{1, float32(math.Inf(1)), float32(math.Inf(1))}, []int32{1}},
		{"neg-inf-never", []float32{ninf, 0, ninf, 0.5}, []int32{1, 3}},
	}
	params := []Params{
		{Temperature: 1},
		{Temperature: 1, TopP: 0.99},
		{Temperature: 1, TopK: 2},
		{Temperature: 1, MinP: 0.01},
	}
	for _, c := range cases {
		for _, p := range params {
			for _, exact := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/k=%d/p=%v/minp=%v/exact=%v", c.name, p.TopK, p.TopP, p.MinP, exact), func(t *testing.T) {
					p.HasSeed = true
					s := New(p)
					s.simd = useAVX2 && !exact
					for range 500 {
						if tok := s.Sample(slices.Clone(c.logits)); !slices.Contains(c.allow, tok) {
							t.Fatalf("got %d, allowed %v", tok, c.allow)
						}
					}
				})
			}
		}
	}
}

// Sample allocates nothing, whatever the settings, on a 152k vocabulary
// (a count, not a timing: testing.AllocsPerRun).
func TestNoAllocs(t *testing.T) {
	l := realisticLogits(151936, 5)
	for _, p := range []Params{
		{},
		{Temperature: 0.8},
		{Temperature: 0.8, TopP: 0.9},
		{Temperature: 0.8, TopK: 40, TopP: 0.9},
		{Temperature: 0.8, MinP: 0.05},
		{Temperature: 1.5, TopP: 0.95, RepeatPenalty: 1.1, FrequencyPenalty: 0.2, LogitBias: map[int32]float32{1: -100}},
	} {
		for _, exact := range []bool{false, true} {
			t.Run(fmt.Sprintf("T=%v/k=%d/p=%v/minp=%v/exact=%v", p.Temperature, p.TopK, p.TopP, p.MinP, exact), func(t *testing.T) {
				p.HasSeed = true
				s := New(p)
				s.simd = useAVX2 && !exact
				for i := range 50 {
					s.Accept(int32(i))
				}
				buf := make([]float32, len(l))
				copy(buf, l)
				s.Sample(buf) // warm up
				if a := testing.AllocsPerRun(20, func() {
					copy(buf, l)
					s.Sample(buf)
				}); a != 0 {
					t.Fatalf("%v allocs per Sample", a)
				}
			})
		}
	}
}

// TestTopPPaths drives the top_p fast path into each of its outcomes and
// the exact path into its less common branches, checking the nucleus each
// time against refProbs.
func TestTopPPaths(t *testing.T) {
	flat := func(n int) []float32 { return make([]float32, n) }
	// headTail: head tokens at logit 5 (ids 0..head-1), tail at -5.
	headTail := func(head, tail int) []float32 {
		l := make([]float32, head+tail)
		for i := range l {
			l[i] = -5
			if i < head {
				l[i] = 5
			}
		}
		return l
	}
	cases := []struct {
		name     string
		logits   func(r *rand.Rand) []float32
		p        Params
		wantMiss bool // fast path must fall back (false: must not)
	}{
		// All equal: nucleus = lowest ids; one bucket, decided by the fast
		// path; the exact path hits the "all equal" shortcut.
		{"equal-1000", func(*rand.Rand) []float32 { return flat(1000) }, Params{Temperature: 1, TopP: 0.5005}, false},
		// One bucket and nothing below it: exact at once, not a miss.
		{"equal-10000", func(*rand.Rand) []float32 { return flat(10000) }, Params{Temperature: 1, TopP: 0.25005}, false},
		// A 3000-token boundary bucket with an uncertain tail: too large to
		// sort under uncertainty, deferred to the exact stage (which refines
		// the bucket by logit value).
		{"big-boundary", func(r *rand.Rand) []float32 {
			l := randLogits(r, 8001, 0.3)
			for i := range l {
				l[i] -= 3 // tail at x ≈ -8: mass ~2.7, uncertainty ~0.04
			}
			for i := 0; i < 3000; i++ {
				l[i] = 5 + float32(r.NormFloat64()*0.002)
			}
			return l
		}, Params{Temperature: 1, TopP: 0.5}, true},
		// More top tokens than the near list holds (capacity cut to 256
		// for this test): the fast path gathers by a full scan and decides.
		{"near-overflow", func(r *rand.Rand) []float32 {
			l := randLogits(r, 3001, 0.3)
			for i := range l {
				l[i] -= 10
			}
			for i := 0; i < 500; i++ {
				l[i] = 5 + float32(r.NormFloat64()*0.3)
			}
			return l
		}, Params{Temperature: 1, TopP: 0.7}, false},
		// A 2000-token head and a heavy tail: the tail's mass is known only
		// within ~3% (±2.8 in the target) while head tokens weigh ~1 each,
		// so the fast path cannot place the cut and must defer.
		{"heavy-tail", func(r *rand.Rand) []float32 {
			l := randLogits(r, 30000, 0.3)
			for i := 0; i < 2000; i++ {
				l[i] = 5 + float32(r.NormFloat64()*0.05)
			}
			return l
		}, Params{Temperature: 1, TopP: 0.5}, true},
		// 600 head tokens of weight exactly 1 (logit 5) and 44500 tail
		// tokens at x = -10 exactly (bucket 320, weight e^-10, mass known
		// within [1.958, 2.020]): the targets p*Z span [300.979, 301.010],
		// narrow enough for the fast path to try (uncertainty < a tenth of
		// a head token) but containing the cumulative weight 301, so the cut
		// (exactly 302 tokens: p*Z = 301.0101) is undecided and must defer.
		{"straddle", func(*rand.Rand) []float32 { return headTail(600, 44500) }, Params{Temperature: 1, TopP: 0.5}, true},
		// Same with 40000 tail tokens: targets [300.880, 300.908], decided
		// by the fast path at 301 tokens (p*Z = 300.908); the tie order
		// (lower ids first) inside the boundary bucket picks which 301.
		{"equal-head", func(*rand.Rand) []float32 { return headTail(600, 40000) }, Params{Temperature: 1, TopP: 0.5}, false},
		{"peaked", func(r *rand.Rand) []float32 {
			l := randLogits(r, 30000, 2)
			for i := 0; i < 5; i++ {
				l[r.IntN(len(l))] = 14 + float32(i)
			}
			return l
		}, Params{Temperature: 0.8, TopP: 0.9}, false},
	}
	for ci, c := range cases {
		for _, exact := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/exact=%v", c.name, exact), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(ci), 5))
				var l []float32
				var probs []float64
				for try := 0; ; try++ {
					l = c.logits(r)
					var amb bool
					if probs, amb = refProbs(l, c.p); !amb {
						break
					}
					if try == 100 {
						t.Fatal("no unambiguous logits")
					}
				}
				p := c.p
				p.HasSeed = true
				s := New(p)
				s.simd = useAVX2 && !exact
				if c.name == "near-overflow" {
				}
				seen := map[int32]bool{}
				for range 300 {
					tok := s.Sample(slices.Clone(l))
					if probs[tok] == 0 {
						t.Fatalf("token %d outside the nucleus", tok)
					}
					seen[tok] = true
				}
				if len(seen) < 2 {
					t.Fatalf("only %d distinct tokens drawn", len(seen))
				}
			})
		}
	}
}

// TestTopPTailBoundary covers a nucleus that reaches beyond the first-level
// histogram (p/p_max < e^-16). Tail tokens weigh ~1e-9 of the head, below
// the float32 resolution of the normaliser, so the check allows the nucleus
// computed at p+1e-6.
func TestTopPTailBoundary(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	l := randLogits(r, 20000, 1)
	l[123] = 20
	p := Params{Temperature: 1, TopP: 0.99999, HasSeed: true}
	loose := p
	loose.TopP = 0.999991
	probs, _ := refProbs(l, loose)
	for _, exact := range []bool{false, true} {
		t.Run(fmt.Sprintf("exact=%v", exact), func(t *testing.T) {
			s := New(p)
			s.simd = useAVX2 && !exact
			for range 200 {
				if tok := s.Sample(slices.Clone(l)); probs[tok] == 0 {
					t.Fatalf("token %d outside the nucleus", tok)
				}
			}
		})
	}
}

func TestTopKMinP(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	p := Params{Temperature: 1, TopK: 50, MinP: 0.2}
	l, probs := genUnambiguous(t, r, 300, 1.5, p)
	kept := 0
	for _, pr := range probs {
		if pr > 0 {
			kept++
		}
	}
	if kept >= 50 || kept < 2 {
		t.Fatalf("min_p should cut inside the top 50: kept %d", kept)
	}
	p.HasSeed = true
	s := New(p)
	for range 5000 {
		if tok := s.Sample(slices.Clone(l)); probs[tok] == 0 {
			t.Fatalf("token %d removed by min_p was drawn", tok)
		}
	}
}

// TestSelectTopK compares the heap selection with a full sort, with many
// ties (quantized logits) and NaNs, across block boundaries.
func TestSelectTopK(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 13))
	for c := range 300 {
		n := 1 + r.IntN(300)
		l := randLogits(r, n, 2)
		for i := range l {
			l[i] = float32(math.Round(float64(l[i])))
			if r.IntN(50) == 0 {
				l[i] = float32(math.NaN())
			}
		}
		k := 1 + r.IntN(n)
		got := selectTopK(make([]entry, k), l, useAVX2)
		// Reference: NaN as -Inf, sort by value desc, id asc.
		ref := slices.Clone(l)
		for i, v := range ref {
			if v != v {
				ref[i] = float32(math.Inf(-1))
			}
		}
		want := order(ref)[:k]
		for j := range want {
			if got[j].id != want[j] {
				t.Fatalf("case %d n=%d k=%d: position %d id %d, want %d", c, n, k, j, got[j].id, want[j])
			}
		}
	}
}

// TestPickAfterMask is the grammar path: Prepare once, mask all but a few
// tokens with -Inf, Pick again. Every draw must be one of the survivors, and
// Prepare+Pick must equal Sample.
func TestPickAfterMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for _, p := range []Params{
		{},
		{Temperature: 0.8, HasSeed: true, Seed: 1},
		{Temperature: 1.5, TopK: 40, HasSeed: true, Seed: 2},
		{Temperature: 0.7, TopP: 0.9, HasSeed: true, Seed: 3},
		{Temperature: 1, MinP: 0.05, HasSeed: true, Seed: 4},
		{Temperature: 1, PresencePenalty: 1, LogitBias: map[int32]float32{5: 100}, HasSeed: true, Seed: 5},
	} {
		for _, n := range []int{64, 32000} {
			row := make([]float32, n)
			for i := range row {
				row[i] = float32(rng.NormFloat64() * 3)
			}
			a, b := New(p), New(p)
			r1 := slices.Clone(row)
			r2 := slices.Clone(row)
			if x, y := a.Sample(r1), func() int32 { b.Prepare(r2); return b.Pick(r2) }(); x != y {
				t.Fatalf("%+v n=%d: Sample %d != Prepare+Pick %d", p, n, x, y)
			}
			allowed := map[int32]bool{int32(n - 1): true, int32(n / 2): true, 3: true}
			s := New(p)
			for range 200 {
				r := slices.Clone(row)
				s.Prepare(r)
				_ = s.Pick(r)
				for i := range r {
					if !allowed[int32(i)] {
						r[i] = float32(math.Inf(-1))
					}
				}
				if tok := s.Pick(r); !allowed[tok] {
					t.Fatalf("%+v n=%d: picked masked token %d", p, n, tok)
				}
			}
		}
	}
}

func TestConstrainTop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	row := make([]float32, 1000)
	for i := range row {
		row[i] = float32(rng.NormFloat64())
	}
	best := make([]int32, 0, 1000)
	for i := range row {
		best = append(best, int32(i))
	}
	slices.SortFunc(best, func(a, b int32) int { return cmp.Compare(row[b], row[a]) })
	s := New(Params{Temperature: 1, HasSeed: true, Seed: 1})

	// Allowed: even ids. Among the 10 best some are even: only those stay.
	r := slices.Clone(row)
	var asked []int32
	if !s.ConstrainTop(r, 10, func(ids []int32, ok []bool) {
		asked = append(asked, ids...)
		for i, id := range ids {
			ok[i] = id%2 == 0
		}
	}) {
		t.Fatal("no even id among the 10 best?")
	}
	if !slices.Equal(asked, best[:10]) {
		t.Fatalf("asked %v, want the 10 best %v", asked, best[:10])
	}
	for i, v := range r {
		keep := slices.Contains(best[:10], int32(i)) && i%2 == 0
		if keep && v != row[i] || !keep && !math.IsInf(float64(v), -1) {
			t.Fatalf("token %d: %v (row %v, keep %v)", i, v, row[i], keep)
		}
	}
	for range 100 {
		if tok := s.Pick(r); tok%2 != 0 || !slices.Contains(best[:10], tok) {
			t.Fatalf("picked %d", tok)
		}
	}

	// Nothing allowed among the k best: the row is untouched, false.
	r = slices.Clone(row)
	if s.ConstrainTop(r, 10, func(ids []int32, ok []bool) {}) {
		t.Fatal("reported success with nothing allowed")
	}
	if !slices.Equal(r, row) {
		t.Fatal("row changed")
	}
}
