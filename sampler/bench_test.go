package sampler

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// realisticLogits mimics an LLM output row: a normal background (mean 0,
// sd 2.5) with a handful of peaks 8..18 above it, as after a confident
// but not certain prediction.
func realisticLogits(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 2.5)
	}
	for j := 0; j < 12; j++ {
		l[r.IntN(n)] = 8 + float32(r.Float64()*10)
	}
	return l
}

var benchSink int32

func BenchmarkSample(b *testing.B) {
	cases := []struct {
		name string
		p    Params
	}{
		{"greedy", Params{}},
		{"temp0.8", Params{Temperature: 0.8}},
		{"top_p0.9_temp0.8", Params{Temperature: 0.8, TopP: 0.9}},
		{"top_k40_top_p0.9_temp0.8", Params{Temperature: 0.8, TopK: 40, TopP: 0.9}},
		{"min_p0.05_temp0.8", Params{Temperature: 0.8, MinP: 0.05}},
		{"top_p0.95_temp1.5", Params{Temperature: 1.5, TopP: 0.95}},
	}
	for _, vocab := range []int{32000, 151936} {
		for _, c := range cases {
			b.Run(fmt.Sprintf("%s/vocab=%d", c.name, vocab), func(b *testing.B) {
				// Several rows so the branch predictor does not learn one.
				rows := make([][]float32, 8)
				for i := range rows {
					rows[i] = realisticLogits(vocab, uint64(i))
				}
				p := c.p
				p.HasSeed = true
				s := New(p)
				s.Sample(rows[0]) // warm the buffers
				b.ReportAllocs()
				// No bias/penalties: Sample does not modify the rows.
				n := 0
				for b.Loop() {
					benchSink = s.Sample(rows[n&7])
					n++
				}
			})
		}
	}
}

func BenchmarkSamplePenalties(b *testing.B) {
	const vocab = 151936
	row := realisticLogits(vocab, 3)
	work := make([]float32, vocab)
	s := New(Params{Temperature: 0.8, TopP: 0.9, RepeatPenalty: 1.1, RepeatLastN: 64,
		PresencePenalty: 0.5, FrequencyPenalty: 0.5, LogitBias: map[int32]float32{5: -100, 7: 3}, HasSeed: true})
	for i := 0; i < 200; i++ {
		s.Accept(int32(i * 37 % vocab))
	}
	copy(work, row)
	s.Sample(work) // warm the buffers
	b.ReportAllocs()
	for b.Loop() {
		copy(work, row) // penalties modify the row
		benchSink = s.Sample(work)
	}
}

func BenchmarkLogprobs(b *testing.B) {
	for _, vocab := range []int{32000, 151936} {
		b.Run(fmt.Sprintf("n=5/vocab=%d", vocab), func(b *testing.B) {
			row := realisticLogits(vocab, 9)
			b.ReportAllocs()
			for b.Loop() {
				_, top := Logprobs(row, 17, 5)
				benchSink = top[0].Token
			}
		})
	}
}
