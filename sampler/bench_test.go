package sampler

import (
	"fmt"
	"math/rand/v2"
	"runtime"
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

// cpuLoop runs f while b.Loop() on a locked OS thread and reports that
// thread's CPU time per iteration as cpu-ns/op (Linux), which on a shared,
// loaded machine tracks the work better than the wall time.
func cpuLoop(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := threadCPU()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if t := threadCPU() - t0; t0 > 0 && n > 0 {
		b.ReportMetric(float64(t)/float64(n), "cpu-ns/op")
	}
}

// benchCases are the settings of BenchmarkSample; names are
// BenchmarkSample/vocab=N/<name>.
var benchCases = []struct {
	name string
	p    Params
}{
	{"greedy", Params{}},
	{"temp=0.8", Params{Temperature: 0.8}},
	{"temp=1.5", Params{Temperature: 1.5}},
	{"temp=2.0", Params{Temperature: 2}},
	{"top_p=0.9,temp=0.8", Params{Temperature: 0.8, TopP: 0.9}},
	{"top_p=0.95,temp=1.5", Params{Temperature: 1.5, TopP: 0.95}},
	{"top_p=0.5,temp=2.0", Params{Temperature: 2, TopP: 0.5}},
	{"top_p=0.1,temp=1.0", Params{Temperature: 1, TopP: 0.1}},
	{"top_p=1.0,top_k=0,temp=1.0", Params{Temperature: 1, TopP: 1, TopK: 0}},
	{"min_p=0.05,temp=0.8", Params{Temperature: 0.8, MinP: 0.05}},
	{"min_p=0.05,top_p=0.9,temp=1.5", Params{Temperature: 1.5, TopP: 0.9, MinP: 0.05}},
	{"top_k=40,temp=0.8", Params{Temperature: 0.8, TopK: 40}},
	{"top_k=40,top_p=0.9,temp=0.8", Params{Temperature: 0.8, TopK: 40, TopP: 0.9}},
	{"top_k=1000,temp=1.0", Params{Temperature: 1, TopK: 1000}},
	{"penalties+bias,top_p=0.9,temp=0.8", Params{Temperature: 0.8, TopP: 0.9,
		RepeatPenalty: 1.1, RepeatLastN: 64, PresencePenalty: 0.5, FrequencyPenalty: 0.5,
		LogitBias: map[int32]float32{5: -100, 7: 3}}},
}

// BenchmarkSample measures Sample per row (one goroutine) for each setting at
// the Qwen 2 (151,936) and Llama 3 (128,256) vocabularies.
func BenchmarkSample(b *testing.B) {
	for _, vocab := range []int{151936, 128256} {
		for _, c := range benchCases {
			b.Run(fmt.Sprintf("vocab=%d/%s", vocab, c.name), func(b *testing.B) {
				// Several rows so the branch predictor does not learn one.
				rows := make([][]float32, 8)
				for i := range rows {
					rows[i] = realisticLogits(vocab, uint64(i))
				}
				p := c.p
				p.HasSeed = true
				s := New(p)
				// The tokens Sample changes (bias, penalty window): restored
				// after each call so every iteration sees the same rows.
				var touched []int32
				for t := range p.LogitBias {
					touched = append(touched, t)
				}
				if p.RepeatPenalty != 0 {
					for i := 0; i < 200; i++ {
						tok := int32(i * 37 % vocab)
						s.Accept(tok)
						touched = append(touched, tok)
					}
				}
				saved := make([]float32, len(touched))
				s.Sample(append([]float32(nil), rows[0]...)) // warm the buffers
				b.ReportAllocs()
				n := 0
				cpuLoop(b, func() {
					row := rows[n&7]
					for i, t := range touched {
						saved[i] = row[t]
					}
					benchSink = s.Sample(row)
					for i, t := range touched {
						row[t] = saved[i]
					}
					n++
				})
			})
		}
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
