package llamacpp_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

func open(t testing.TB, o llamacpp.Options) *llamacpp.Backend {
	t.Helper()
	b, err := llamacpp.Open(testmodel.Path(t, testmodel.Stories260K), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func argmax(row []float32) engine.Token {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return engine.Token(best)
}

// greedy decodes n tokens after prompt on sequence seq with plain argmax.
func greedy(t testing.TB, b engine.Backend, seq engine.SeqID, prompt []engine.Token, n int) []engine.Token {
	t.Helper()
	batch := make([]engine.BatchEntry, len(prompt))
	for i, tok := range prompt {
		batch[i] = engine.BatchEntry{Token: tok, Seq: seq, Pos: int32(i), Logits: i == len(prompt)-1}
	}
	if err := b.Decode(batch); err != nil {
		t.Fatal(err)
	}
	last := len(batch) - 1
	var out []engine.Token
	pos := int32(len(prompt))
	for range n {
		tok := argmax(b.Logits(last))
		out = append(out, tok)
		if b.IsEOG(tok) {
			break
		}
		if err := b.Decode([]engine.BatchEntry{{Token: tok, Seq: seq, Pos: pos, Logits: true}}); err != nil {
			t.Fatal(err)
		}
		pos++
		last = 0
	}
	return out
}

func text(b engine.Backend, toks []engine.Token) string {
	var s []byte
	for _, t := range toks {
		s = append(s, b.Piece(t)...)
	}
	return string(s)
}

func TestGoldenGreedy(t *testing.T) {
	for _, threads := range []int{1, 2} {
		t.Run(map[int]string{1: "1thread", 2: "2threads"}[threads], func(t *testing.T) {
			b := open(t, llamacpp.Options{CtxSize: 512, Threads: threads})
			toks, err := b.Tokenize(testmodel.ReferencePrompt, true, false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(toks, testmodel.ReferenceTokens) {
				t.Fatalf("tokens %v, want %v", toks, testmodel.ReferenceTokens)
			}
			got := text(b, greedy(t, b, 0, toks, 64))
			if got != testmodel.ReferenceText {
				t.Fatalf("continuation differs from llama.cpp's reference:\n got %q\nwant %q", got, testmodel.ReferenceText)
			}
		})
	}
}

func TestInfo(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 1024, Parallel: 4})
	in := b.Info()
	if in.Arch != "llama" || in.NVocab != 512 || in.BOS != 1 || in.EOS != 2 || !in.AddBOS {
		t.Fatalf("unexpected info %+v", in)
	}
	if in.NCtxTrain != 2048 || in.Parallel != 4 || in.NCtxSeq*4 != in.NCtx {
		t.Fatalf("context facts: %+v", in)
	}
	if !slices.Equal(in.EOG, []engine.Token{2}) || !b.IsEOG(2) || b.IsEOG(1) {
		t.Fatalf("EOG %v", in.EOG)
	}
	if in.ChatTemplate != "" {
		t.Fatalf("stories260K has no chat template, got %q", in.ChatTemplate)
	}
	// <unk>, <s> and </s> are the control tokens: markup, not text, though
	// Piece renders them.
	for tok := range engine.Token(in.NVocab) {
		if want := tok <= 2; b.IsControl(tok) != want {
			t.Errorf("IsControl(%d) (%q) = %v, want %v", tok, b.Piece(tok), !want, want)
		}
	}
	if string(b.Piece(1)) != "<s>" || b.IsControl(-1) || b.IsControl(engine.Token(in.NVocab)) {
		t.Errorf("Piece(1) %q; IsControl out of range must be false", b.Piece(1))
	}
	// Without special tokens the same text has no BOS.
	toks, _ := b.Tokenize(testmodel.ReferencePrompt, false, false)
	if !slices.Equal(toks, testmodel.ReferenceTokens[1:]) {
		t.Fatalf("tokens without BOS: %v", toks)
	}
	// parseSpecial turns "<s>" into BOS.
	toks, _ = b.Tokenize("<s>Once", false, true)
	if len(toks) == 0 || toks[0] != 1 {
		t.Fatalf("parse special: %v", toks)
	}
}

// Several sequences in one batch give each the same result as alone, and
// KV operations (remove a tail, copy a whole sequence) keep them correct.
func TestBatchedSequencesAndKV(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 2048, Parallel: 4})
	ref := greedy(t, b, 0, testmodel.ReferenceTokens, 16)

	// Copy sequence 0 (prompt + 15 generated) into 1, drop the generated
	// tail there, regenerate: same tokens.
	if err := b.CopySeq(0, 1); err != nil {
		t.Fatal(err)
	}
	n := int32(len(testmodel.ReferenceTokens))
	if err := b.RemoveKV(1, n-1, -1); err != nil {
		t.Fatal(err)
	}
	last := testmodel.ReferenceTokens[len(testmodel.ReferenceTokens)-1]
	if err := b.Decode([]engine.BatchEntry{{Token: last, Seq: 1, Pos: n - 1, Logits: true}}); err != nil {
		t.Fatal(err)
	}
	if got := argmax(b.Logits(0)); got != ref[0] {
		t.Fatalf("after copy+trim: token %d, want %d", got, ref[0])
	}

	// Two fresh sequences decoded side by side in one batch.
	b.ClearKV()
	toks := testmodel.ReferenceTokens
	var batch []engine.BatchEntry
	for _, s := range []engine.SeqID{2, 3} {
		for i, tk := range toks {
			batch = append(batch, engine.BatchEntry{Token: tk, Seq: s, Pos: int32(i), Logits: i == len(toks)-1})
		}
	}
	if err := b.Decode(batch); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{len(toks) - 1, 2*len(toks) - 1} {
		if got := argmax(b.Logits(i)); got != ref[0] {
			t.Fatalf("batched row %d: token %d, want %d", i, got, ref[0])
		}
	}
}

func TestBadModelFiles(t *testing.T) {
	dir := t.TempDir()
	random := filepath.Join(dir, "random.gguf")
	os.WriteFile(random, []byte("this is not a model at all, just some bytes that go on and on"), 0o644)
	short := filepath.Join(dir, "short.gguf")
	os.WriteFile(short, []byte("GG"), 0o644)
	src, err := os.ReadFile(testmodel.Path(t, testmodel.Stories260K))
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.gguf")
	os.WriteFile(truncated, src[:len(src)/2], 0o644)
	headerOnly := filepath.Join(dir, "header.gguf")
	os.WriteFile(headerOnly, src[:4096], 0o644)

	for name, p := range map[string]string{
		"missing": filepath.Join(dir, "nope.gguf"), "directory": dir, "random": random,
		"short": short, "truncated": truncated, "header-only": headerOnly,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := llamacpp.Open(p, llamacpp.Options{CtxSize: 256})
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			var me *engine.ModelError
			if !errors.As(err, &me) {
				t.Fatalf("error %v (%T) is not a *engine.ModelError", err, err)
			}
		})
	}
}

func TestCloseTwice(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 256})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Tokenize("x", false, false); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Tokenize after Close: %v", err)
	}
}
