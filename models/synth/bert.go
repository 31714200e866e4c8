package synth

import (
	"errors"
	"fmt"
	"strings"
)

// ArchBERT is Options.Arch of a BERT-architecture embedding model, as
// llama.cpp's LLM_ARCH_BERT loads it (bge, MiniLM): learned position and
// token-type embeddings, post-layer-norm blocks with biases, non-causal
// attention, a WordPiece vocabulary and mean pooling. It has no output
// layer: it gives embeddings, not text.
const ArchBERT = "bert"

// BERT special tokens, at the start of the vocabulary.
const (
	bertPad, bertUnk, bertCLS, bertSep, bertMask int32 = 0, 1, 2, 3, 4
)

// checkBERT validates the options a BERT model cannot have.
func checkBERT(r *Options) error {
	switch {
	case r.Template != "":
		return errors.New("a bert model has no chat template")
	case len(r.Script) > 0 || len(r.Pieces) > 0:
		return errors.New("a bert model has no script or pieces")
	case r.NVocab < 5+2*(26+10+len(extraChars)):
		return fmt.Errorf("vocabulary of %d tokens is too small for a bert model", r.NVocab)
	}
	r.TieEmbeddings = false // no output layer to tie
	r.NHeadKV = r.NHead     // BERT has no grouped-query attention: a preset's KV heads do not apply
	return nil
}

// buildBERTVocab is a WordPiece vocabulary as llama.cpp's converter writes
// one: the specials, then words with the "▁" word-start mark (HF's plain
// tokens) and pieces without it (HF's "##" continuations). Every
// lowercase letter, digit and common punctuation mark is a word start and
// a continuation, so every lowercase ASCII text tokenizes without [UNK].
func buildBERTVocab(n int) *vocab {
	v := &vocab{tokens: make([]string, 0, n), scores: make([]float32, 0, n), types: make([]int32, 0, n),
		ids: make(map[string]int32, n), bos: bertCLS, eos: bertSep, addBOS: true}
	for _, s := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		v.add(s, 0, tokControl)
	}
	v.types[bertUnk] = tokUnknown
	var chars []string
	for c := 'a'; c <= 'z'; c++ {
		chars = append(chars, string(c))
	}
	for c := '0'; c <= '9'; c++ {
		chars = append(chars, string(c))
	}
	for _, c := range extraChars {
		chars = append(chars, string(c))
	}
	for _, c := range chars {
		v.add(spaceMark+c, 0, tokNormal)
		v.add(c, 0, tokNormal)
	}
	for _, w := range commonWords {
		if v.full() {
			break
		}
		v.add(spaceMark+strings.ToLower(w), 0, tokNormal)
	}
	for k := 2; !v.full(); k++ {
		for _, mark := range []string{spaceMark, ""} {
			for s := range lowerStrings(k) {
				if v.full() {
					break
				}
				v.add(mark+s, 0, tokNormal)
			}
		}
	}
	return v
}

// bertMetadata is the GGUF metadata of a BERT model.
func bertMetadata(o Options, v *vocab) []kv {
	wt, _ := typeOf(o.Type)
	kvs := []kv{
		{"general.architecture", ArchBERT},
		{"general.name", o.Name},
		{"general.file_type", fileType(wt)},
	}
	if wt != ggmlF16 {
		kvs = append(kvs, kv{"general.quantization_version", uint32(2)})
	}
	return append(kvs,
		kv{"bert.context_length", uint32(o.NCtx)},
		kv{"bert.embedding_length", uint32(o.NEmbd)},
		kv{"bert.block_count", uint32(o.NLayer)},
		kv{"bert.feed_forward_length", uint32(o.NFF)},
		kv{"bert.attention.head_count", uint32(o.NHead)},
		kv{"bert.attention.layer_norm_epsilon", float32(1e-12)},
		kv{"bert.attention.causal", false},
		kv{"bert.pooling_type", uint32(1)}, // mean
		kv{"tokenizer.ggml.model", "bert"},
		kv{"tokenizer.ggml.tokens", v.tokens},
		kv{"tokenizer.ggml.token_type", v.types},
		kv{"tokenizer.ggml.token_type_count", uint32(2)},
		kv{"tokenizer.ggml.padding_token_id", uint32(bertPad)},
		kv{"tokenizer.ggml.unknown_token_id", uint32(bertUnk)},
		kv{"tokenizer.ggml.cls_token_id", uint32(bertCLS)},
		kv{"tokenizer.ggml.seperator_token_id", uint32(bertSep)}, // llama.cpp's spelling
		kv{"tokenizer.ggml.mask_token_id", uint32(bertMask)},
		kv{"tokenizer.ggml.bos_token_id", uint32(bertCLS)},
	)
}

// bertTensors lists the tensors LLM_ARCH_BERT loads (separate Q, K and V,
// all biases), in the order llama.cpp's converter writes them.
func bertTensors(o Options) []*tensorSpec {
	wt, _ := typeOf(o.Type)
	embd, ff, vocab, nctx := int64(o.NEmbd), int64(o.NFF), int64(o.NVocab), int64(o.NCtx)
	w := func(name string, ne0, ne1 int64) *tensorSpec {
		return &tensorSpec{name: name, ne: []int64{ne0, ne1}, typ: wt, kind: kindRandom}
	}
	norm := func(name string) []*tensorSpec {
		return []*tensorSpec{
			{name: name + ".weight", ne: []int64{embd}, typ: ggmlF32, kind: kindOnes},
			{name: name + ".bias", ne: []int64{embd}, typ: ggmlF32, kind: kindZero},
		}
	}
	bias := func(name string, n int64) *tensorSpec {
		return &tensorSpec{name: name, ne: []int64{n}, typ: ggmlF32, kind: kindZero}
	}
	// The token-type and position tables are added to the activations as
	// they are (no get_rows for the types): F32, as converters write them.
	f32 := func(name string, ne0, ne1 int64) *tensorSpec {
		return &tensorSpec{name: name, ne: []int64{ne0, ne1}, typ: ggmlF32, kind: kindRandom}
	}
	ts := []*tensorSpec{w("token_embd.weight", embd, vocab), f32("token_types.weight", embd, 2),
		f32("position_embd.weight", embd, nctx)}
	ts = append(ts, norm("token_embd_norm")...)
	for i := range o.NLayer {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			w(p+"attn_q.weight", embd, embd), bias(p+"attn_q.bias", embd),
			w(p+"attn_k.weight", embd, embd), bias(p+"attn_k.bias", embd),
			w(p+"attn_v.weight", embd, embd), bias(p+"attn_v.bias", embd),
			w(p+"attn_output.weight", embd, embd), bias(p+"attn_output.bias", embd))
		ts = append(ts, norm(p+"attn_output_norm")...)
		ts = append(ts,
			w(p+"ffn_up.weight", embd, ff), bias(p+"ffn_up.bias", ff),
			w(p+"ffn_down.weight", ff, embd), bias(p+"ffn_down.bias", embd))
		ts = append(ts, norm(p+"layer_output_norm")...)
	}
	var off int64
	for _, t := range ts {
		t.offset = off
		off = alignUp(off+t.size(), alignment)
	}
	return ts
}
