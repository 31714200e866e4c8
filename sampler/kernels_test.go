package sampler

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// kernelRows returns rows of assorted lengths (across the 8/16/32 kernel
// widths) with NaN, ±Inf, ±0 and many ties sprinkled in.
func kernelRows() [][]float32 {
	r := rand.New(rand.NewPCG(21, 21))
	nan := float32(math.NaN())
	var rows [][]float32
	for _, n := range []int{1, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 255, 256, 257, 1000, 4099} {
		for v := range 4 {
			l := make([]float32, n)
			for i := range l {
				switch x := r.IntN(40); {
				case v > 0 && x == 0:
					l[i] = nan
				case v > 1 && x == 1:
					l[i] = float32(math.Inf(-1))
				case v > 2 && x == 2:
					l[i] = float32(math.Copysign(0, float64(r.IntN(2)*2-1)))
				case v == 3 && x < 20:
					l[i] = float32(r.IntN(5)) // ties
				default:
					l[i] = float32(r.NormFloat64() * 3)
				}
			}
			rows = append(rows, l)
		}
	}
	return rows
}

// TestKernels checks the AVX2 kernels against the Go ones and the Go ones
// against plain loops.
func TestKernels(t *testing.T) {
	for ri, l := range kernelRows() {
		// maxf / argmaxOf / indexGT / collectGT.
		want := float32(math.Inf(-1))
		for _, v := range l {
			if v > want {
				want = v
			}
		}
		for _, simd := range []bool{false, true} {
			if simd && !useAVX2 {
				continue
			}
			if got := maxf(l, simd); got != want {
				t.Fatalf("row %d simd=%v: maxf %v, want %v", ri, simd, got, want)
			}
			if got, w := argmaxOf(l, simd), int(naiveArgmax(l)); got != w {
				t.Fatalf("row %d simd=%v: argmax %d, want %d", ri, simd, got, w)
			}
			for _, v := range []float32{-1, 0, 2, l[len(l)/2], float32(math.Inf(-1))} {
				wi := len(l)
				var wc []int32
				for i, x := range l {
					if x > v {
						if wi == len(l) {
							wi = i
						}
						wc = append(wc, int32(i))
					}
				}
				if got := indexGT(l, v, simd); got != wi {
					t.Fatalf("row %d simd=%v: indexGT(%v) %d, want %d", ri, simd, v, got, wi)
				}
				got := collectGT(make([]int32, 1, len(l)+1), l, v, simd)
				if got[0] != 0 || !slices.Equal(got[1:], wc) {
					t.Fatalf("row %d simd=%v: collectGT(%v) %v, want %v", ri, simd, v, got[1:], wc)
				}
			}
		}
		if !useAVX2 {
			continue
		}
		// expBlock: same weights within float32 rounding, same masks.
		m := maxf(l, false)
		if special(m) {
			continue
		}
		for _, lo := range []float32{expLo, -1.5} {
			var c expConsts
			c.set(m, 1/0.7, lo)
			wg := make([]float32, len(l))
			ws := make([]float32, len(l))
			zg, ag := expBlock(wg, l, &c, true, false)
			zs, as := expBlock(ws, l, &c, true, true)
			for i := range l {
				x := float64((l[i] - m) * (1 / float32(0.7)))
				if (wg[i] == 0) != (ws[i] == 0) || math.Abs(float64(wg[i]-ws[i])) > 1e-6*float64(wg[i]) {
					t.Fatalf("row %d lo=%v: w[%d] go %v, simd %v (x=%v)", ri, lo, i, wg[i], ws[i], x)
				}
				if ref := math.Exp(x); x >= float64(lo) && math.Abs(float64(ws[i])-ref) > 1e-6*ref {
					t.Fatalf("row %d: w[%d] = %v, exp %v", ri, i, ws[i], ref)
				}
			}
			if math.Abs(zg-zs) > 1e-6*zg || math.Abs(ag-as) > 1e-6*ag || zs > as*(1+1e-12) {
				t.Fatalf("row %d lo=%v: sums go %v/%v, simd %v/%v", ri, lo, zg, ag, zs, as)
			}
			// massAbove: the same sums exactly (same lanes), same counts.
			for _, v := range []float32{l[0], l[len(l)-1], 0, -2} {
				a1, e1 := massAbove(l, ws, v, false)
				a2, e2 := massAbove(l, ws, v, true)
				var ref float64
				var eq int
				for i, x := range l {
					if x > v {
						ref += float64(ws[i])
					}
					if x == v {
						eq++
					}
				}
				if a1 != a2 || e1 != e2 || e1 != eq || math.Abs(a1-ref) > 2e-6*ref {
					t.Fatalf("row %d: massAbove(%v) go %v/%d simd %v/%d, want %v/%d", ri, v, a1, e1, a2, e2, ref, eq)
				}
			}
		}
	}
}

// TestNthBest checks the selection against a full sort, with many ties.
func TestNthBest(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 2, 5, 17, 100, 1000, 5000} {
		for range 20 {
			e := make([]entry, n)
			for i := range e {
				e[i] = entry{float32(r.IntN(max(2, n/10))), int32(i)}
			}
			r.Shuffle(n, func(i, j int) { e[i], e[j] = e[j], e[i] })
			sorted := slices.Clone(e)
			slices.SortFunc(sorted, func(a, b entry) int {
				if worse(a, b) {
					return 1
				}
				return -1
			})
			k := 1 + r.IntN(n)
			nthBest(e, k)
			got := slices.Clone(e[:k])
			slices.SortFunc(got, func(a, b entry) int {
				if worse(a, b) {
					return 1
				}
				return -1
			})
			if !slices.Equal(got, sorted[:k]) {
				t.Fatalf("n=%d k=%d: wrong selection", n, k)
			}
		}
	}
}

// TestConcurrentSamplers runs one Sampler per goroutine in parallel, each on
// its own row, and checks that every goroutine gets the tokens a sequential
// run with the same seed gets (and, under -race, that they share nothing).
func TestConcurrentSamplers(t *testing.T) {
	const vocab, steps, workers = 5000, 30, 6
	base := realisticLogits(vocab, 11)
	params := []Params{
		{},
		{Temperature: 1.5, TopP: 0.95},
		{Temperature: 0.8, MinP: 0.05, RepeatPenalty: 1.1},
		{Temperature: 1, TopK: 40, TopP: 0.9},
		{Temperature: 1, TopK: 600, FrequencyPenalty: 0.5},
		{Temperature: 2, TopP: 0.5, LogitBias: map[int32]float32{3: 5}},
	}
	run := func(w int) []int32 {
		p := params[w%len(params)]
		p.HasSeed, p.Seed = true, uint64(w)
		s := New(p)
		row := make([]float32, vocab)
		out := make([]int32, steps)
		for i := range out {
			copy(row, base)
			out[i] = s.Sample(row)
			s.Accept(out[i])
		}
		return out
	}
	want := make([][]int32, workers)
	for w := range want {
		want[w] = run(w)
	}
	got := make([][]int32, workers)
	done := make(chan int)
	for w := range workers {
		go func() {
			got[w] = run(w)
			done <- w
		}()
	}
	for range workers {
		<-done
	}
	for w := range workers {
		if !slices.Equal(got[w], want[w]) {
			t.Errorf("worker %d: parallel %v, sequential %v", w, got[w], want[w])
		}
	}
}

// TestLargeTopKSpecial covers sampleTopKLarge with NaN, -Inf and +Inf rows
// and with fewer finite tokens than k.
func TestLargeTopKSpecial(t *testing.T) {
	ninf, pinf := float32(math.Inf(-1)), float32(math.Inf(1))
	nan := float32(math.NaN())
	mk := func(fill float32, set map[int]float32) []float32 {
		l := make([]float32, 1000)
		for i := range l {
			l[i] = fill
			if i%7 == 0 {
				l[i] = nan
			}
		}
		for i, v := range set {
			l[i] = v
		}
		return l
	}
	cases := []struct {
		name  string
		l     []float32
		allow []int32
	}{
		{"few-finite", mk(ninf, map[int]float32{3: 1, 500: 2, 999: 1.5}), []int32{3, 500, 999}},
		{"pos-inf", mk(0, map[int]float32{10: pinf, 20: pinf}), []int32{10}},
		{"all-nan-inf", mk(ninf, nil), []int32{0}},
	}
	for _, c := range cases {
		for _, p := range []Params{
			{Temperature: 1, TopK: 300},
			{Temperature: 1.5, TopK: 400, TopP: 0.9},
			{Temperature: 1, TopK: 500, MinP: 0.1},
		} {
			p.HasSeed = true
			s := New(p)
			seen := map[int32]bool{}
			for range 300 {
				tok := s.Sample(slices.Clone(c.l))
				if !slices.Contains(c.allow, tok) {
					t.Fatalf("%s %+v: drew %d, allowed %v", c.name, p, tok, c.allow)
				}
				seen[tok] = true
			}
			if c.name == "few-finite" && p.MinP == 0 && len(seen) < 2 {
				t.Fatalf("%s %+v: only %v drawn", c.name, p, seen)
			}
		}
	}
}
