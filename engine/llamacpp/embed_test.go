package llamacpp_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/models/synth"
)

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// A chat model (stories260K, no pooling type) is mean-pooled in a context
// of its own: an input gives the same vector alone and in a batch, other
// inputs give other vectors, and the chat context's KV is untouched.
func TestEmbedChatModelMeanPooling(t *testing.T) {
	b := open(t, llamacpp.Options{Threads: 1, Parallel: 2})
	l, err := b.EmbedLimits()
	if err != nil {
		t.Fatal(err)
	}
	if l.Pooling != engine.PoolMean || l.Dim != 64 || l.NSeq < 8 || l.MaxTokens <= 0 {
		t.Fatalf("limits %+v, want mean pooling of 64 dimensions", l)
	}
	tok := func(s string) []engine.Token {
		ts, err := b.Tokenize(s, true, false)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	// Chat state before: a prompt in sequence 0.
	if err := b.Decode([]engine.BatchEntry{{Token: 1, Seq: 0, Pos: 0, Logits: true}}); err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), b.Logits(0)...)

	a, c := tok("Once upon a time"), tok("The cat sat on the mat and looked at the dog")
	alone, err := b.Embed([][]engine.Token{a})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := b.Embed([][]engine.Token{c, a, c})
	if err != nil {
		t.Fatal(err)
	}
	if len(alone[0]) != 64 || len(batch) != 3 {
		t.Fatalf("got %d vectors of %d", len(batch), len(alone[0]))
	}
	if cs := cosine(alone[0], batch[1]); cs < 1-1e-4 {
		t.Errorf("the same input alone and in a batch: cosine %v", cs)
	}
	if cs := cosine(batch[0], batch[2]); cs < 1-1e-4 {
		t.Errorf("the same input twice in a batch: cosine %v", cs)
	}
	if cs := cosine(batch[0], batch[1]); cs > 0.9999 {
		t.Errorf("different inputs give the same vector (cosine %v)", cs)
	}
	// The chat context goes on where it was.
	if err := b.Decode([]engine.BatchEntry{{Token: 1, Seq: 1, Pos: 0, Logits: true}}); err != nil {
		t.Fatal(err)
	}
	if cs := cosine(before, b.Logits(0)); cs < 1-1e-4 {
		t.Errorf("chat logits changed after embeddings: cosine %v", cs)
	}
	// Out of the limits: errors, not crashes.
	if _, err := b.Embed(nil); err == nil {
		t.Error("no inputs: want an error")
	}
	if _, err := b.Embed([][]engine.Token{{}}); err == nil {
		t.Error("an empty input: want an error")
	}
	if _, err := b.Embed([][]engine.Token{make([]engine.Token, l.MaxTokens+1)}); err == nil {
		t.Error("an input over MaxTokens: want an error")
	}
	if _, err := b.Embed([][]engine.Token{{int32(b.Info().NVocab)}}); err == nil {
		t.Error("a token outside the vocabulary: want an error")
	}
}

// A BERT-architecture embedding model (asi1d synth --arch bert: WordPiece
// vocabulary, token-type and position embeddings, non-causal attention,
// pooling_type mean) loads and embeds through llama.cpp's encoder path:
// [CLS] ... [SEP] tokenization, the model's own pooling, the same vector
// alone and in a batch.
func TestEmbedBERTSynth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bert.gguf")
	if err := synth.WriteFile(path, synth.Options{Preset: "tiny", Arch: synth.ArchBERT}); err != nil {
		t.Fatal(err)
	}
	b, err := llamacpp.Open(path, llamacpp.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a := b.Info().Arch; a != "bert" {
		t.Fatalf("arch %q", a)
	}
	l, err := b.EmbedLimits()
	if err != nil {
		t.Fatal(err)
	}
	if l.Pooling != engine.PoolMean || l.Dim != 64 || l.MaxTokens != 2048 {
		t.Fatalf("limits %+v, want mean pooling (the model's), 64 dimensions, 2048 tokens", l)
	}
	a, err := b.Tokenize("hello world", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) < 3 || a[0] != 2 || a[len(a)-1] != 3 {
		t.Fatalf("tokens %v: want [CLS]=2 first and [SEP]=3 last", a)
	}
	c, _ := b.Tokenize("the cat sat on a mat", true, false)
	alone, err := b.Embed([][]engine.Token{a})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := b.Embed([][]engine.Token{c, a})
	if err != nil {
		t.Fatal(err)
	}
	if cs := cosine(alone[0], batch[1]); cs < 1-1e-4 {
		t.Errorf("alone and in a batch: cosine %v", cs)
	}
	if cs := cosine(batch[0], batch[1]); cs > 0.9999 {
		t.Errorf("different inputs, same vector (cosine %v)", cs)
	}
	for _, v := range batch[0] {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("vector has %v", v)
		}
	}
}
