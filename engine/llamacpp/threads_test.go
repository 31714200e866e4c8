package llamacpp_test

import (
	"slices"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// Changing the worker count between decodes (llama_set_n_threads on the
// thread pool) keeps the answer: a governor told that its workers are
// always starved drops to one and probes two again every few decodes, and
// the greedy continuation equals the fixed two-thread one.
func TestWorkerCountChangesKeepTheAnswer(t *testing.T) {
	prompt := testmodel.ReferenceTokens
	fixed := open(t, llamacpp.Options{CtxSize: 512, Threads: 2, FixedThreads: true})
	if fixed.Governor() != nil {
		t.Fatal("FixedThreads backend has a governor")
	}
	want := greedy(t, fixed, 0, prompt, 16)

	b := open(t, llamacpp.Options{CtxSize: 512, Threads: 2})
	g := b.Governor()
	if g == nil {
		t.Fatal("no governor with 2 threads on the CPU")
	}
	g.Window, g.Starved, g.ProbeEvery, g.MaxProbeEvery = 0, 2, 0, 0 // every window starved; probe at once
	batch := make([]engine.BatchEntry, len(prompt))
	for i, tok := range prompt {
		batch[i] = engine.BatchEntry{Token: tok, Pos: int32(i), Logits: i == len(prompt)-1}
	}
	if err := b.Decode(batch); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	last, pos := len(batch)-1, int32(len(prompt))
	var got []engine.Token
	for range 16 {
		tok := argmax(b.Logits(last))
		got = append(got, tok)
		if b.IsEOG(tok) {
			break
		}
		seen[g.Threads()] = true
		if err := b.Decode([]engine.BatchEntry{{Token: tok, Pos: pos, Logits: true}}); err != nil {
			t.Fatal(err)
		}
		pos++
		last = 0
	}
	if !seen[1] || !seen[2] {
		t.Fatalf("worker counts used: %v, want both 1 and 2", seen)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("greedy with changing workers %v\nwant (fixed 2) %v", got, want)
	}
}
