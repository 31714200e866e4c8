//go:build cgo

package rawloop

import (
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// On the reference model the raw loop reproduces (the start of) llama.cpp's
// greedy continuation, in a batch of two sequences, and measures both phases.
func TestRealModel(t *testing.T) {
	be, err := llamacpp.Open(testmodel.Path(t, testmodel.Stories260K), llamacpp.Options{CtxSize: 2 * 128, Parallel: 2, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ref := testmodel.ReferenceTokens
	r, err := Run(be, Options{Seqs: 2, PromptTokens: len(ref), GenTokens: 24, KeepTokens: true,
		Prompts: [][]engine.Token{ref, ref}})
	if err != nil {
		t.Fatal(err)
	}
	for s := range 2 {
		var b strings.Builder
		for _, tok := range r.Tokens[s] {
			b.Write(be.Piece(tok))
		}
		if !strings.HasPrefix(testmodel.ReferenceText, b.String()) || b.Len() < 40 {
			t.Fatalf("sequence %d:\n got %q\nwant %q", s, b.String(), testmodel.ReferenceText)
		}
	}
	if r.DecodeSteps != 23 || r.PrefillTokS <= 0 || r.DecodeTokS <= 0 {
		t.Fatalf("result %+v", r)
	}
	// Generated prompts of the asked length, and a run over them.
	r, err = Run(be, Options{Seqs: 2, PromptTokens: 32, GenTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stories260K, 2 seqs: prefill %.0f tok/s, decode %.0f tok/s (%.0f per sequence), step p50 %v",
		r.PrefillTokS, r.DecodeTokS, r.DecodeSeqTokS, r.StepP50)
}
