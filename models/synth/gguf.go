package synth

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// GGUF v3 layout: "GGUF", version, tensor count, KV count, the KVs, the
// tensor infos (name, n_dims, dims innermost first, type, offset in the
// data section), zero padding to the alignment, then the data section, in
// which every tensor starts at a multiple of the alignment.
const (
	ggufMagic   = "GGUF"
	ggufVersion = 3
	// alignment is GGUF's default general.alignment (not written).
	alignment = 32
)

// GGUF metadata value types.
const (
	gguint32  = 4
	ggint32   = 5
	ggfloat32 = 6
	ggbool    = 7
	ggstring  = 8
	ggarray   = 9
)

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// kv is one metadata entry. Its value is a string, uint32, float32, bool,
// []string, []float32 or []int32.
type kv struct {
	key string
	val any
}

// metadata returns the KV entries of a model, in the order written.
func metadata(o Options, v *vocab) []kv {
	if o.Arch == ArchBERT {
		return bertMetadata(o, v)
	}
	wt, _ := typeOf(o.Type)
	kvs := []kv{
		{"general.architecture", "llama"},
		{"general.name", o.Name},
		{"general.file_type", fileType(wt)},
	}
	if wt != ggmlF16 {
		kvs = append(kvs, kv{"general.quantization_version", uint32(2)})
	}
	kvs = append(kvs,
		kv{"llama.context_length", uint32(o.NCtx)},
		kv{"llama.embedding_length", uint32(o.NEmbd)},
		kv{"llama.block_count", uint32(o.NLayer)},
		kv{"llama.feed_forward_length", uint32(o.NFF)},
		kv{"llama.attention.head_count", uint32(o.NHead)},
		kv{"llama.attention.head_count_kv", uint32(o.NHeadKV)},
		kv{"llama.rope.freq_base", o.RopeBase},
		kv{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		kv{"llama.rope.dimension_count", uint32(o.NEmbd / o.NHead)},
		kv{"llama.vocab_size", uint32(o.NVocab)},
		kv{"tokenizer.ggml.model", "llama"},
		kv{"tokenizer.ggml.tokens", v.tokens},
		kv{"tokenizer.ggml.scores", v.scores},
		kv{"tokenizer.ggml.token_type", v.types},
		kv{"tokenizer.ggml.bos_token_id", uint32(v.bos)},
		kv{"tokenizer.ggml.eos_token_id", uint32(v.eos)},
		kv{"tokenizer.ggml.unknown_token_id", uint32(0)},
		kv{"tokenizer.ggml.add_bos_token", v.addBOS},
		kv{"tokenizer.ggml.add_eos_token", false},
	)
	if src := templateSources[o.Template]; src != "" {
		kvs = append(kvs, kv{"tokenizer.chat_template", src})
	}
	return kvs
}

// ggufWriter appends little-endian GGUF values to a buffer.
type ggufWriter struct{ b []byte }

func (g *ggufWriter) u32(x uint32) { g.b = binary.LittleEndian.AppendUint32(g.b, x) }
func (g *ggufWriter) u64(x uint64) { g.b = binary.LittleEndian.AppendUint64(g.b, x) }
func (g *ggufWriter) str(s string) {
	g.u64(uint64(len(s)))
	g.b = append(g.b, s...)
}

func (g *ggufWriter) value(v any) {
	switch x := v.(type) {
	case string:
		g.u32(ggstring)
		g.str(x)
	case uint32:
		g.u32(gguint32)
		g.u32(x)
	case float32:
		g.u32(ggfloat32)
		g.u32(math.Float32bits(x))
	case bool:
		g.u32(ggbool)
		if x {
			g.b = append(g.b, 1)
		} else {
			g.b = append(g.b, 0)
		}
	case []string:
		g.u32(ggarray)
		g.u32(ggstring)
		g.u64(uint64(len(x)))
		for _, s := range x {
			g.str(s)
		}
	case []float32:
		g.u32(ggarray)
		g.u32(ggfloat32)
		g.u64(uint64(len(x)))
		for _, f := range x {
			g.u32(math.Float32bits(f))
		}
	case []int32:
		g.u32(ggarray)
		g.u32(ggint32)
		g.u64(uint64(len(x)))
		for _, i := range x {
			g.u32(uint32(i))
		}
	default:
		panic(fmt.Sprintf("synth: no GGUF encoding for %T", v))
	}
}

// writeHeader writes everything before the data section, padding included.
func writeHeader(w io.Writer, o Options, v *vocab, ts []*tensorSpec) error {
	kvs := metadata(o, v)
	g := &ggufWriter{b: make([]byte, 0, 64<<10)}
	g.b = append(g.b, ggufMagic...)
	g.u32(ggufVersion)
	g.u64(uint64(len(ts)))
	g.u64(uint64(len(kvs)))
	for _, e := range kvs {
		g.str(e.key)
		g.value(e.val)
	}
	for _, t := range ts {
		g.str(t.name)
		g.u32(uint32(len(t.ne)))
		for _, d := range t.ne {
			g.u64(uint64(d))
		}
		g.u32(uint32(t.typ))
		g.u64(uint64(t.offset))
	}
	for int64(len(g.b))%alignment != 0 {
		g.b = append(g.b, 0)
	}
	_, err := w.Write(g.b)
	return err
}
