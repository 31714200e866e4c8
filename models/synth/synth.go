// Package synth writes llama-architecture GGUF models with deterministic
// dummy weights at real shapes (like vLLM's "dummy" load format), for
// benchmarks and tests: a file that llama.cpp loads and runs at the speed
// and memory of a real model of those dimensions, without downloading one.
//
// The weights are uniform random with standard deviation 0.02 (norm
// weights are 1), generated directly in the target encoding (F16, Q8_0 or
// Q4_0) from a PCG generator seeded by Options.Seed, the tensor name and
// the chunk index, so a file depends only on its Options, and writing a
// 1B-parameter Q4_0 file takes seconds. The output text of such a model is
// gibberish; Options.Script instead builds a model whose greedy output is
// a fixed token chain (see Options.Script), for end-to-end tests of
// parsing such as reasoning tags.
//
// The vocabulary is SentencePiece style (tokenizer.ggml.model "llama"):
// <unk>, <s>, </s>, the 256 byte tokens, the chat template's special
// tokens, then word pieces (see Options.Template).
//
// Pure Go, standard library only.
package synth

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// Template names for Options.Template.
const (
	// TemplateChatMLThink is a Qwen3-style ChatML template with reasoning
	// and tool-call tokens: <|im_start|>, <|im_end|> (the EOS; no BOS in
	// prompts), <think>, </think>, <tool_call>, </tool_call>.
	TemplateChatMLThink = "chatml-think"
	// TemplateLlama3 is the Llama 3 Instruct template with
	// <|begin_of_text|> (BOS), <|start_header_id|>, <|end_header_id|> and
	// <|eot_id|> (EOS).
	TemplateLlama3 = "llama3"
)

// Weight types for Options.Type.
const (
	TypeF16  = "f16"
	TypeQ8_0 = "q8_0"
	TypeQ4_0 = "q4_0"
)

// Defaults for zero Options fields.
const (
	DefaultType     = TypeQ8_0
	DefaultNCtx     = 2048
	DefaultRopeBase = 10000
)

// Options describe a model. With Preset set, the preset's values are the
// defaults and every non-zero field of Options overrides them; without
// one, NEmbd, NLayer, NHead, NFF and NVocab are required.
type Options struct {
	// Preset names an entry of Presets: "tiny", "small", "1b" or "8b".
	Preset string
	// Arch is the architecture: "" or "llama" (a chat model), or ArchBERT
	// (an embedding model at the preset's dimensions; see bert.go).
	Arch string
	// Model dimensions: embedding width, layers, attention heads, key/value
	// heads (grouped-query attention; 0 means NHead), feed-forward width,
	// vocabulary size and trained context length (0: DefaultNCtx).
	NEmbd, NLayer, NHead, NHeadKV, NFF, NVocab, NCtx int
	// RopeBase is llama.rope.freq_base; 0: DefaultRopeBase.
	RopeBase float32
	// TieEmbeddings leaves out output.weight: llama.cpp then uses
	// token_embd.weight for the output projection too, as Llama 3.2 1B
	// does. A preset's true cannot be overridden by false.
	TieEmbeddings bool
	// Type is the type of the 2-D weights: "f16", "q8_0" or "q4_0" (""
	// means DefaultType). Norm weights are always F32.
	Type string
	// Seed selects the dummy weights; the same Options give the same bytes.
	Seed uint64
	// Template is the chat template and its special tokens: "" (none),
	// TemplateChatMLThink or TemplateLlama3.
	Template string
	// Name is general.name; "" gives "synth-<preset>" or "synth".
	Name string
	// Script, when set, makes a deterministic bigram model whose greedy
	// output follows a token chain: Script[i] is followed by Script[i+1]
	// for every i, so after a prompt whose last token is Script[0] the
	// model generates Script[1], Script[2], ... (end the chain with the EOS,
	// e.g. "<|im_end|>", to stop there). Entries are token texts of the
	// vocabulary ("<think>", "▁the", "<0x0A>" for a newline byte) and must
	// be distinct; at most NEmbd+1 of them.
	//
	// How: every attention and feed-forward weight is zero, so each
	// position's residual stream is its token embedding; the embedding of
	// Script[i] is the unit vector e_i; no other embedding or output row has
	// weight on the first len(Script)-1 dimensions, except output row
	// Script[i+1], which has 1 at dimension i. After the final norm, state
	// Script[i] gives logit sqrt(NEmbd) to Script[i+1] and exactly 0 to
	// every other token. output.weight is always written in this mode.
	Script []string
	// Pieces are extra normal tokens placed right after the template's
	// special tokens, so that a Script can emit multi-character text (a
	// JSON tool call, say) as one token. Tokenizing text never produces
	// them unless their prefixes are pieces too.
	Pieces []string
}

// Presets returns the named model shapes:
//
//   - tiny: n_embd 64, 2 layers, 4 heads, 2 KV heads, n_ff 128, vocabulary
//     1024, context 2048, separate output.weight (about 0.2M parameters;
//     for fast tests).
//   - small: n_embd 768, 12 layers, 12 heads, n_ff 2048, vocabulary 32000,
//     context 4096, tied embeddings (about 110M parameters).
//   - 1b: the dimensions of Llama 3.2 1B: n_embd 2048, 16 layers, 32
//     heads, 8 KV heads, n_ff 8192, vocabulary 128256, context 131072
//     (pass a smaller context when loading), rope base 500000, tied
//     embeddings as the real model (1.24B parameters).
//   - 8b: the dimensions of Llama 3 8B: n_embd 4096, 32 layers, 32 heads,
//     8 KV heads, n_ff 14336, vocabulary 128256, context 8192, rope base
//     500000, separate output.weight (8.03B parameters; about 4.3 GiB in
//     Q4_0).
func Presets() map[string]Options {
	return map[string]Options{
		"tiny": {NEmbd: 64, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 128, NVocab: 1024, NCtx: 2048},
		"small": {NEmbd: 768, NLayer: 12, NHead: 12, NHeadKV: 12, NFF: 2048, NVocab: 32000, NCtx: 4096,
			TieEmbeddings: true},
		"1b": {NEmbd: 2048, NLayer: 16, NHead: 32, NHeadKV: 8, NFF: 8192, NVocab: 128256, NCtx: 131072,
			RopeBase: 500000, TieEmbeddings: true},
		"8b": {NEmbd: 4096, NLayer: 32, NHead: 32, NHeadKV: 8, NFF: 14336, NVocab: 128256, NCtx: 8192,
			RopeBase: 500000},
	}
}

// PresetNames returns the names of Presets, sorted.
func PresetNames() []string {
	var names []string
	for k := range Presets() {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Resolve applies the preset and the defaults to o and checks the result.
// The returned Options have every dimension set and Preset kept.
func Resolve(o Options) (Options, error) {
	r := Options{}
	if o.Preset != "" {
		p, ok := Presets()[o.Preset]
		if !ok {
			return o, fmt.Errorf("unknown preset %q (have %s)", o.Preset, strings.Join(PresetNames(), ", "))
		}
		r = p
	}
	r.Preset = o.Preset
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&r.NEmbd, o.NEmbd)
	set(&r.NLayer, o.NLayer)
	set(&r.NHead, o.NHead)
	set(&r.NHeadKV, o.NHeadKV)
	set(&r.NFF, o.NFF)
	set(&r.NVocab, o.NVocab)
	set(&r.NCtx, o.NCtx)
	if o.RopeBase != 0 {
		r.RopeBase = o.RopeBase
	}
	r.TieEmbeddings = r.TieEmbeddings || o.TieEmbeddings
	r.Type, r.Seed, r.Template, r.Name, r.Script = o.Type, o.Seed, o.Template, o.Name, slices.Clone(o.Script)
	r.Pieces = slices.Clone(o.Pieces)
	r.Arch = o.Arch
	if r.Arch == "llama" {
		r.Arch = ""
	}
	if r.NHeadKV == 0 {
		r.NHeadKV = r.NHead
	}
	if r.NCtx == 0 {
		r.NCtx = DefaultNCtx
	}
	if r.RopeBase == 0 {
		r.RopeBase = DefaultRopeBase
	}
	if r.Type == "" {
		r.Type = DefaultType
	}
	if r.Name == "" {
		r.Name = "synth"
		if r.Preset != "" {
			r.Name += "-" + r.Preset
		}
	}
	if len(r.Script) > 0 {
		r.TieEmbeddings = false
	}

	switch {
	case r.NEmbd <= 0 || r.NLayer <= 0 || r.NHead <= 0 || r.NHeadKV <= 0 || r.NFF <= 0 || r.NVocab <= 0 || r.NCtx <= 0:
		return r, errors.New("dimensions must be positive (set a preset or NEmbd, NLayer, NHead, NFF and NVocab)")
	case r.NEmbd%r.NHead != 0:
		return r, fmt.Errorf("n_embd %d is not a multiple of n_head %d", r.NEmbd, r.NHead)
	case (r.NEmbd/r.NHead)%2 != 0:
		return r, fmt.Errorf("head size %d must be even (rope)", r.NEmbd/r.NHead)
	case r.NHead%r.NHeadKV != 0:
		return r, fmt.Errorf("n_head %d is not a multiple of n_head_kv %d", r.NHead, r.NHeadKV)
	case r.NVocab > 1<<31-1:
		return r, fmt.Errorf("vocabulary of %d tokens is too large", r.NVocab)
	}
	switch r.Arch {
	case "":
	case ArchBERT:
		if err := checkBERT(&r); err != nil {
			return r, err
		}
	default:
		return r, fmt.Errorf("unknown architecture %q (have llama, %s)", r.Arch, ArchBERT)
	}
	if _, ok := typeOf(r.Type); !ok {
		return r, fmt.Errorf("unknown type %q (have f16, q8_0, q4_0)", r.Type)
	}
	if r.Type != TypeF16 && (r.NEmbd%blockSize != 0 || r.NFF%blockSize != 0) {
		return r, fmt.Errorf("type %s needs n_embd and n_ff to be multiples of %d", r.Type, blockSize)
	}
	if _, ok := templateSources[r.Template]; !ok && r.Template != "" {
		return r, fmt.Errorf("unknown template %q (have %s, %s)", r.Template, TemplateChatMLThink, TemplateLlama3)
	}
	if n := len(r.Script); n == 1 || n > r.NEmbd+1 {
		return r, fmt.Errorf("script of %d tokens: need 2 to n_embd+1 = %d", n, r.NEmbd+1)
	}
	return r, nil
}

// typeOf maps Options.Type to the ggml type and general.file_type.
func typeOf(s string) (t ggmlType, ok bool) {
	switch s {
	case TypeF16:
		return ggmlF16, true
	case TypeQ8_0:
		return ggmlQ8_0, true
	case TypeQ4_0:
		return ggmlQ4_0, true
	}
	return 0, false
}

// fileType is general.file_type (llama_ftype) for a weight type.
func fileType(t ggmlType) uint32 {
	switch t {
	case ggmlF16:
		return 1 // LLAMA_FTYPE_MOSTLY_F16
	case ggmlQ8_0:
		return 7 // LLAMA_FTYPE_MOSTLY_Q8_0
	case ggmlQ4_0:
		return 2 // LLAMA_FTYPE_MOSTLY_Q4_0
	}
	return 0
}

// Params returns the number of parameters of the model o describes (0 when
// o does not resolve). Tied embeddings count once.
func (o Options) Params() int64 {
	r, err := Resolve(o)
	if err != nil {
		return 0
	}
	var n int64
	for _, t := range r.tensors() {
		n += t.elems()
	}
	return n
}

// tensor kinds: how the data is made.
type tensorKind int

const (
	kindRandom     tensorKind = iota // dummy weights
	kindOnes                         // norm weights, F32 1.0
	kindZero                         // script mode: attention and FFN weights
	kindScriptEmbd                   // script mode: token_embd.weight
	kindScriptOut                    // script mode: output.weight
)

type tensorSpec struct {
	name   string
	ne     []int64 // ne[0] is the innermost (contiguous) dimension
	typ    ggmlType
	kind   tensorKind
	offset int64 // from the start of the data section
}

func (t *tensorSpec) elems() int64 {
	n := int64(1)
	for _, d := range t.ne {
		n *= d
	}
	return n
}

func (t *tensorSpec) size() int64 { return rowBytes(t.typ, t.elems()) }

// tensors lists the tensors of resolved options with their offsets.
func (o Options) tensors() []*tensorSpec {
	if o.Arch == ArchBERT {
		return bertTensors(o)
	}
	return tensorList(o)
}

// vocab builds the vocabulary of resolved options.
func (o Options) vocab() (*vocab, error) {
	if o.Arch == ArchBERT {
		return buildBERTVocab(o.NVocab), nil
	}
	return buildVocab(o.NVocab, o.Template, o.Pieces...)
}

// tensorList lists the tensors of a llama model with their offsets.
func tensorList(o Options) []*tensorSpec {
	wt, _ := typeOf(o.Type)
	embd, ff, vocab := int64(o.NEmbd), int64(o.NFF), int64(o.NVocab)
	kv := embd / int64(o.NHead) * int64(o.NHeadKV)
	script := len(o.Script) > 0
	w := func(name string, ne0, ne1 int64) *tensorSpec {
		k := kindRandom
		if script {
			k = kindZero
		}
		return &tensorSpec{name: name, ne: []int64{ne0, ne1}, typ: wt, kind: k}
	}
	norm := func(name string) *tensorSpec {
		return &tensorSpec{name: name, ne: []int64{embd}, typ: ggmlF32, kind: kindOnes}
	}
	te := w("token_embd.weight", embd, vocab)
	if script {
		te.kind = kindScriptEmbd
	}
	ts := []*tensorSpec{te}
	for i := range o.NLayer {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			norm(p+"attn_norm.weight"),
			w(p+"attn_q.weight", embd, embd),
			w(p+"attn_k.weight", embd, kv),
			w(p+"attn_v.weight", embd, kv),
			w(p+"attn_output.weight", embd, embd),
			norm(p+"ffn_norm.weight"),
			w(p+"ffn_gate.weight", embd, ff),
			w(p+"ffn_up.weight", embd, ff),
			w(p+"ffn_down.weight", ff, embd),
		)
	}
	ts = append(ts, norm("output_norm.weight"))
	if !o.TieEmbeddings {
		out := w("output.weight", embd, vocab)
		if script {
			out.kind = kindScriptOut
		}
		ts = append(ts, out)
	}
	var off int64
	for _, t := range ts {
		t.offset = off
		off = alignUp(off+t.size(), alignment)
	}
	return ts
}

// WriteFile writes the model to path through a temporary file in the same
// directory, renamed into place once complete.
func WriteFile(path string, o Options) (err error) {
	r, err := Resolve(o)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = Write(f, r); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Write writes the model as GGUF v3 to w, streaming: memory use does not
// grow with the model. Weights are generated on up to GOMAXPROCS
// goroutines; the bytes do not depend on how many.
func Write(w io.Writer, o Options) error {
	r, err := Resolve(o)
	if err != nil {
		return err
	}
	v, err := r.vocab()
	if err != nil {
		return err
	}
	var script []int32
	for _, s := range r.Script {
		id, ok := v.ids[s]
		if !ok {
			return fmt.Errorf("script token %q is not in the vocabulary", s)
		}
		if slices.Contains(script, id) {
			return fmt.Errorf("script token %q appears twice", s)
		}
		script = append(script, id)
	}
	ts := r.tensors()
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := writeHeader(bw, r, v, ts); err != nil {
		return err
	}
	if err := writeData(bw, r, ts, script); err != nil {
		return err
	}
	return bw.Flush()
}

// chunkElems is the number of weights generated from one PCG stream.
const chunkElems = 1 << 16

type chunkJob struct {
	t    *tensorSpec
	i    int64 // chunk index within the tensor
	last bool  // the tensor's last chunk
	out  chan []byte
}

// writeData generates and writes the tensor data (after the header's
// padding) with a pool of workers and an in-order writer.
func writeData(w io.Writer, o Options, ts []*tensorSpec, script []int32) error {
	workers := min(runtime.GOMAXPROCS(0), 8)
	jobs := make(chan chunkJob, 4*workers)
	order := make(chan chunkJob, 4*workers)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(jobs)
		defer close(order)
		for _, t := range ts {
			n := (t.elems() + chunkElems - 1) / chunkElems
			for i := range n {
				j := chunkJob{t: t, i: i, last: i == n-1, out: make(chan []byte, 1)}
				select {
				case order <- j:
				case <-stop:
					return
				}
				select {
				case jobs <- j:
				case <-stop:
					return
				}
			}
		}
	}()
	pool := make(chan []byte, 8*workers)
	get := func(n int) []byte {
		select {
		case b := <-pool:
			if cap(b) >= n {
				return b[:n]
			}
		default:
		}
		return make([]byte, n)
	}
	g := &generator{o: o, script: script}
	for range workers {
		go func() {
			var scratch []float32
			for j := range jobs {
				e0 := j.i * chunkElems
				n := min(chunkElems, j.t.elems()-e0)
				buf := get(int(rowBytes(j.t.typ, n)))
				scratch = g.fill(buf, j.t, e0, n, scratch)
				j.out <- buf
			}
		}()
	}
	var pad [alignment]byte
	var pos int64
	for j := range order {
		buf := <-j.out
		if _, err := w.Write(buf); err != nil {
			return err
		}
		pos += int64(len(buf))
		select {
		case pool <- buf:
		default:
		}
		if j.last {
			if p := alignUp(pos, alignment) - pos; p > 0 {
				if _, err := w.Write(pad[:p]); err != nil {
					return err
				}
				pos += p
			}
		}
	}
	return nil
}

// generator makes tensor data.
type generator struct {
	o      Options
	script []int32 // token ids of Options.Script
}

// fill writes elements [e0, e0+n) of tensor t into dst. scratch is a
// reusable float buffer, returned (possibly grown).
func (g *generator) fill(dst []byte, t *tensorSpec, e0, n int64, scratch []float32) []float32 {
	switch t.kind {
	case kindRandom:
		randomFill(t.typ, dst, g.rng(t.name, e0/chunkElems))
		return scratch
	case kindOnes:
		scratch = growFloats(scratch, n)
		for i := range scratch {
			scratch[i] = 1
		}
	case kindZero:
		scratch = growFloats(scratch, n)
		clear(scratch)
	case kindScriptEmbd, kindScriptOut:
		scratch = growFloats(scratch, n)
		g.scriptValues(scratch, t, e0)
	}
	encode(t.typ, dst, scratch)
	return scratch
}

func growFloats(b []float32, n int64) []float32 {
	if int64(cap(b)) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// scriptValues computes elements of token_embd or output in script mode
// (see Options.Script). Rows are tokens, columns embedding dimensions.
func (g *generator) scriptValues(x []float32, t *tensorSpec, e0 int64) {
	r := g.rng(t.name, e0/chunkElems)
	ne0 := t.ne[0]
	states := int64(len(g.script) - 1) // dimensions reserved for the chain
	for i := range x {
		e := e0 + int64(i)
		c := e % ne0
		if c < states {
			x[i] = 0
		} else {
			x[i] = uniform(r)
		}
	}
	for k := range states {
		var row, col int64
		if t.kind == kindScriptEmbd {
			row, col = int64(g.script[k]), -1 // the whole row becomes e_k
		} else {
			row, col = int64(g.script[k+1]), k
		}
		lo, hi := row*ne0, (row+1)*ne0
		for e := max(lo, e0); e < min(hi, e0+int64(len(x))); e++ {
			c := e - lo
			switch {
			case col < 0 && c == k:
				x[e-e0] = 1
			case col < 0:
				x[e-e0] = 0
			case c == col:
				x[e-e0] = 1
			}
		}
	}
}

// rng is the PCG stream of one chunk of one tensor.
func (g *generator) rng(name string, chunk int64) *rand.PCG {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.NewPCG(g.o.Seed^h.Sum64(), uint64(chunk)*0x9e3779b97f4a7c15+0x2545f4914f6cdd1d)
}
