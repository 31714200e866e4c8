package rawloop

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
)

func TestRunOnFake(t *testing.T) {
	f := enginetest.New(4, 64, 16)
	r, err := Run(f, Options{Seqs: 3, PromptTokens: 10, GenTokens: 8, KeepTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Counters()
	// Prefill: 30 prompt tokens in batches of at most 16; decode: 7 steps of 3.
	if r.PrefillCalls != 2 || r.DecodeSteps != 7 || c.Decodes != 9 || c.MaxBatch != 16 || c.Tokens != 30+21 {
		t.Fatalf("result %+v, counters %+v", r, c)
	}
	if got := c.BatchSizes[2:]; slices.Max(got) != 3 || slices.Min(got) != 3 {
		t.Fatalf("decode batch sizes %v", c.BatchSizes)
	}
	if r.OutputTokens != 24 || r.PrefillTokS <= 0 || r.DecodeTokS <= 0 || r.OutputTokS <= 0 || len(r.DecodeTimeStep) != 7 {
		t.Fatalf("result %+v", r)
	}
	if math.Abs(r.DecodeSeqTokS*3-r.DecodeTokS) > 1e-6*r.DecodeTokS {
		t.Fatalf("per-sequence rate %g vs aggregate %g", r.DecodeSeqTokS, r.DecodeTokS)
	}
	prompts, err := Prompts(f, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	for s := range 3 {
		// Greedy on the fake is its next-token rule over the history.
		h := slices.Clone(prompts[s])
		for k := range 8 {
			want := enginetest.DefaultNext(h)
			if r.Tokens[s][k] != want {
				t.Fatalf("sequence %d token %d: %d, want %d", s, k, r.Tokens[s][k], want)
			}
			h = append(h, want)
		}
		if s > 0 && slices.Equal(prompts[s], prompts[s-1]) {
			t.Fatal("prompts are not distinct")
		}
		if prompts[s][0] != enginetest.BOS || prompts[s][1] == prompts[0][1] && s > 0 {
			t.Fatalf("prompt %d: %v", s, prompts[s])
		}
	}
	// The KV is left empty, ready for a server.
	if len(f.KV(0)) != 0 {
		t.Fatal("KV not cleared after the run")
	}
}

// End-of-generation tokens do not stop a sequence.
func TestIgnoresEOG(t *testing.T) {
	f := enginetest.New(2, 32, 32)
	f.Next = func([]engine.Token) engine.Token { return enginetest.EOS }
	r, err := Run(f, Options{Seqs: 2, PromptTokens: 4, GenTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r.EOGSampled != 10 || r.DecodeSteps != 4 || r.OutputTokens != 10 {
		t.Fatalf("result %+v", r)
	}
}

func TestRunErrors(t *testing.T) {
	f := enginetest.New(2, 32, 8)
	for _, o := range []Options{
		{Seqs: 3, PromptTokens: 4, GenTokens: 4},
		{Seqs: 0, PromptTokens: 4, GenTokens: 4},
		{Seqs: 1, PromptTokens: 20, GenTokens: 20},
		{Seqs: 1, PromptTokens: 0, GenTokens: 4},
		{Seqs: 1, PromptTokens: 4, GenTokens: 4, Prompts: [][]engine.Token{{1, 2}}},
	} {
		if _, err := Run(f, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	boom := errors.New("boom")
	f.FailDecode = func([]engine.BatchEntry) error { return boom }
	if _, err := Run(f, Options{Seqs: 1, PromptTokens: 4, GenTokens: 4}); !errors.Is(err, boom) {
		t.Fatalf("decode failure: %v", err)
	}
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		row  []float32
		want int
	}{
		{nil, -1},
		{[]float32{1, 3, 3, 2}, 1},
		{[]float32{nan, -5, -7}, 1},
		{[]float32{-1, nan, 4}, 2},
		{[]float32{float32(math.Inf(-1)), -3}, 1},
	} {
		if got := Argmax(c.row); got != c.want {
			t.Errorf("Argmax(%v) = %d, want %d", c.row, got, c.want)
		}
	}
}
