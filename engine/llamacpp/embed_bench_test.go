package llamacpp_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
)

// embedSentences are the benchmark's inputs: short sentences of about 10
// tokens, as a RAG chunker's small chunks.
var embedSentences = []string{
	"The little dog ran to the park to play.",
	"She found a red ball under the big tree.",
	"Tom and his mom baked a cake for the party.",
	"The sun was warm and the birds sang all day.",
}

// BenchmarkEmbed measures embeddings at the engine (no scheduler, no
// HTTP): inputs per second at batch 1, 8 and 64, each batch split into
// passes within EmbedLimits as the scheduler splits it. The model is
// stories260K (mean pooling of a chat model), or $ASI1D_BENCH_MODEL (the
// synth small model: asi1d synth --preset small --type q8_0), on
// $ASI1D_BENCH_THREADS threads (default 1: on a machine shared beyond its
// cores, ggml's spinning barrier makes 2 threads far slower on small
// passes).
func BenchmarkEmbed(b *testing.B) {
	threads, _ := strconv.Atoi(os.Getenv("ASI1D_BENCH_THREADS"))
	be, err := llamacpp.Open(benchModel(b), llamacpp.Options{Threads: max(threads, 1), ThreadPoll: benchPoll()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	l, err := be.EmbedLimits()
	if err != nil {
		b.Fatal(err)
	}
	var toks [][]engine.Token
	for _, s := range embedSentences {
		ts, err := be.Tokenize(s, true, false)
		if err != nil {
			b.Fatal(err)
		}
		toks = append(toks, ts)
	}
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			inputs := make([][]engine.Token, n)
			ntok := 0
			for i := range inputs {
				inputs[i] = toks[i%len(toks)]
				ntok += len(inputs[i])
			}
			passes := splitPasses(inputs, l)
			for _, p := range passes { // the context is created outside the timing
				if _, err := be.Embed(p); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				for _, p := range passes {
					if _, err := be.Embed(p); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "inputs/s")
			b.ReportMetric(float64(b.N*ntok)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(float64(len(passes)), "passes")
		})
	}
}

// splitPasses cuts inputs into passes of at most NSeq inputs and NBatch
// tokens, in order.
func splitPasses(inputs [][]engine.Token, l engine.EmbedLimits) [][][]engine.Token {
	var out [][][]engine.Token
	var cur [][]engine.Token
	n := 0
	for _, in := range inputs {
		if len(cur) > 0 && (len(cur) == l.NSeq || n+len(in) > l.NBatch) {
			out, cur, n = append(out, cur), nil, 0
		}
		cur, n = append(cur, in), n+len(in)
	}
	return append(out, cur)
}
