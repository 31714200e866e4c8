package synth

import (
	"bytes"
	"testing"
)

// A BERT model resolves with as many KV heads as heads and no output
// layer, and its header names the bert architecture, its pooling and its
// WordPiece tokenizer (llama.cpp's load of it is tested in engine/llamacpp).
func TestBERTHeader(t *testing.T) {
	r, err := Resolve(Options{Preset: "tiny", Arch: ArchBERT})
	if err != nil {
		t.Fatal(err)
	}
	if r.NHeadKV != r.NHead || r.TieEmbeddings {
		t.Fatalf("resolved %+v", r)
	}
	if _, err := Resolve(Options{Preset: "tiny", Arch: ArchBERT, Template: TemplateChatMLThink}); err == nil {
		t.Error("a bert model with a chat template: want an error")
	}
	if _, err := Resolve(Options{Preset: "tiny", Arch: "gpt9"}); err == nil {
		t.Error("an unknown architecture: want an error")
	}
	var buf bytes.Buffer
	if err := Write(&buf, Options{Preset: "tiny", Arch: ArchBERT}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bert.pooling_type", "bert.attention.causal", "tokenizer.ggml.seperator_token_id",
		"token_types.weight", "position_embd.weight", "blk.1.layer_output_norm.bias", "[CLS]"} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Errorf("no %q in the file", want)
		}
	}
	if bytes.Contains(buf.Bytes(), []byte("output_norm.weight\x00")) || bytes.Contains(buf.Bytes(), []byte("ffn_gate")) {
		t.Error("a llama tensor in a bert file")
	}
	if p := r.Params(); p <= 0 {
		t.Errorf("params %d", p)
	}
}
