package llamacpp_test

import (
	"slices"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// prefill decodes toks at positions pos0.. of seq, without logits.
func prefill(t testing.TB, b engine.Backend, seq engine.SeqID, toks []engine.Token, pos0 int) {
	t.Helper()
	for len(toks) > 0 {
		n := min(len(toks), b.Info().NBatch)
		batch := make([]engine.BatchEntry, n)
		for i, tok := range toks[:n] {
			batch[i] = engine.BatchEntry{Token: tok, Seq: seq, Pos: int32(pos0 + i)}
		}
		if err := b.Decode(batch); err != nil {
			t.Fatal(err)
		}
		toks, pos0 = toks[n:], pos0+n
	}
}

// continueGreedy decodes tok at pos of seq and then n greedy tokens; it
// returns them and the logits row of tok.
func continueGreedy(t testing.TB, b engine.Backend, seq engine.SeqID, tok engine.Token, pos, n int) ([]engine.Token, []float32) {
	t.Helper()
	var out []engine.Token
	var first []float32
	for range n {
		if err := b.Decode([]engine.BatchEntry{{Token: tok, Seq: seq, Pos: int32(pos), Logits: true}}); err != nil {
			t.Fatal(err)
		}
		row := b.Logits(0)
		if first == nil {
			first = slices.Clone(row)
		}
		tok = argmax(row)
		out = append(out, tok)
		pos++
	}
	return out, first
}

// A sequence's state saved in one backend and restored into another
// sequence of a fresh backend (as after a restart) gives the same logits,
// bit for bit, and the same greedy continuation as the sequence it was
// saved from.
func TestSeqStateRoundTrip(t *testing.T) {
	o := llamacpp.Options{CtxSize: 1024, Parallel: 2, Threads: 2}
	a := open(t, o)
	prompt, err := a.Tokenize(testmodel.ReferencePrompt+" They played in the park all day, and then they went home to eat.", true, false)
	if err != nil {
		t.Fatal(err)
	}
	head, last := prompt[:len(prompt)-1], prompt[len(prompt)-1]
	prefill(t, a, 1, head, 0)
	state, err := a.SaveSeq(1)
	if err != nil {
		t.Fatal(err)
	}
	cold, coldRow := continueGreedy(t, a, 1, last, len(head), 24)

	b := open(t, o)
	if a.StateID() != b.StateID() {
		t.Fatalf("same settings, different state ids: %q, %q", a.StateID(), b.StateID())
	}
	if err := b.RestoreSeq(0, state); err != nil {
		t.Fatal(err)
	}
	warm, warmRow := continueGreedy(t, b, 0, last, len(head), 24)
	if !slices.Equal(coldRow, warmRow) {
		t.Errorf("the logits after the restored prefix differ from the cold ones")
	}
	if !slices.Equal(cold, warm) {
		t.Errorf("restored continuation %q, cold %q", text(b, warm), text(b, cold))
	}
	if len(cold) == 0 || text(b, cold) == "" {
		t.Fatal("no continuation to compare")
	}
}

// A truncated state and a state of other settings are refused with an
// error, and the sequence is left empty and usable.
func TestSeqStateRefused(t *testing.T) {
	a := open(t, llamacpp.Options{CtxSize: 1024, Parallel: 2, Threads: 1})
	toks := testmodel.ReferenceTokens
	prefill(t, a, 0, toks, 0)
	state, err := a.SaveSeq(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RestoreSeq(1, state[:len(state)/2]); err == nil {
		t.Error("a truncated state was accepted")
	}
	// Sequence 1 is empty: a prompt starts at position 0.
	prefill(t, a, 1, toks[:3], 0)

	other := open(t, llamacpp.Options{CtxSize: 1024, Parallel: 4, Threads: 1})
	if other.StateID() == a.StateID() {
		t.Errorf("other settings, same state id %q", a.StateID())
	}
	if err := other.RestoreSeq(0, state); err == nil {
		t.Error("a state of another stream count was accepted")
	}
	prefill(t, other, 0, toks[:3], 0)
	if _, err := a.SaveSeq(7); err == nil {
		t.Error("a sequence out of range was saved")
	}
}
