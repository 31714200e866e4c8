package llamacpp_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/internal/testmodel"
)

// benchModel is stories260K, or $ASI1D_BENCH_MODEL (e.g. a synth model).
func benchModel(b *testing.B) string {
	if p := os.Getenv("ASI1D_BENCH_MODEL"); p != "" {
		return p
	}
	return testmodel.Path(b, testmodel.Stories260K)
}

// BenchmarkDecode measures the raw engine's single-sequence decode: one
// token per llama_decode, greedy, no scheduler. Reports tok/s.
func BenchmarkDecode(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			be, err := llamacpp.Open(benchModel(b), llamacpp.Options{CtxSize: 2048, Threads: threads, FlashAttention: os.Getenv("ASI1D_BENCH_FA")})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			prompt := testmodel.ReferenceTokens
			batch := make([]engine.BatchEntry, len(prompt))
			for i, t := range prompt {
				batch[i] = engine.BatchEntry{Token: t, Pos: int32(i), Logits: i == len(prompt)-1}
			}
			if err := be.Decode(batch); err != nil {
				b.Fatal(err)
			}
			tok := argmax(be.Logits(len(prompt) - 1))
			pos := int32(len(prompt))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if pos >= int32(be.Info().NCtxSeq) {
					b.StopTimer()
					be.RemoveKV(0, int32(len(prompt)), -1)
					pos = int32(len(prompt))
					b.StartTimer()
				}
				if err := be.Decode([]engine.BatchEntry{{Token: tok, Pos: pos, Logits: true}}); err != nil {
					b.Fatal(err)
				}
				tok = argmax(be.Logits(0))
				pos++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkPrefill measures prompt processing in one batch of 128 tokens.
func BenchmarkPrefill(b *testing.B) {
	be, err := llamacpp.Open(benchModel(b), llamacpp.Options{CtxSize: 1024, Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	const n = 128
	batch := make([]engine.BatchEntry, n)
	for i := range batch {
		batch[i] = engine.BatchEntry{Token: engine.Token(3 + i%200), Pos: int32(i), Logits: i == n-1}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		be.RemoveKV(0, 0, -1)
		if err := be.Decode(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tok/s")
}
