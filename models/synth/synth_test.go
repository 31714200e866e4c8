package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/models/gguf"
)

// ggufFile is what the tests read out of a GGUF file.
type ggufFile struct {
	version   uint32
	kv        map[string]any
	keys      []string
	tensors   []ggufTensor
	dataStart int64
	size      int64
}

type ggufTensor struct {
	name   string
	ne     []uint64
	typ    uint32
	offset uint64
	bytes  uint64
}

// parseGGUF reads a file with asi1d's GGUF reader (models/gguf), every
// array kept.
func parseGGUF(t *testing.T, path string) *ggufFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Read(f, st.Size(), gguf.Options{MaxArray: -1})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	out := &ggufFile{version: g.Version, kv: map[string]any{}, size: st.Size(), dataStart: g.DataStart}
	for _, kv := range g.KVs {
		out.kv[kv.Key] = kv.Value
		out.keys = append(out.keys, kv.Key)
	}
	for _, ti := range g.Tensors {
		out.tensors = append(out.tensors, ggufTensor{name: ti.Name, ne: ti.Shape, typ: uint32(ti.Type), offset: ti.Offset, bytes: ti.Size})
	}
	return out
}

// tensorBytes is the size of a tensor's data.
func tensorBytes(ti ggufTensor) uint64 { return ti.bytes }

func writeTemp(t *testing.T, o Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteFile(p, o); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTripHeader(t *testing.T) {
	for _, typ := range []string{TypeF16, TypeQ8_0, TypeQ4_0} {
		for _, tmpl := range []string{"", TemplateChatMLThink, TemplateLlama3} {
			t.Run(typ+"/"+tmpl, func(t *testing.T) {
				o := Options{Preset: "tiny", Type: typ, Template: tmpl, Seed: 7}
				f := parseGGUF(t, writeTemp(t, o))
				if f.version != 3 {
					t.Fatalf("version %d", f.version)
				}
				wantU32 := map[string]uint32{
					"llama.context_length": 2048, "llama.embedding_length": 64, "llama.block_count": 2,
					"llama.feed_forward_length": 128, "llama.attention.head_count": 4,
					"llama.attention.head_count_kv": 2, "llama.rope.dimension_count": 16, "llama.vocab_size": 1024,
					"tokenizer.ggml.unknown_token_id": 0,
					"general.file_type":               map[string]uint32{"f16": 1, "q8_0": 7, "q4_0": 2}[typ],
				}
				for k, want := range wantU32 {
					if got, ok := f.kv[k].(uint32); !ok || got != want {
						t.Errorf("%s = %v (%T), want %d", k, f.kv[k], f.kv[k], want)
					}
				}
				if f.kv["general.architecture"] != "llama" || f.kv["general.name"] != "synth-tiny" || f.kv["tokenizer.ggml.model"] != "llama" {
					t.Errorf("strings: %v %v %v", f.kv["general.architecture"], f.kv["general.name"], f.kv["tokenizer.ggml.model"])
				}
				if f.kv["llama.rope.freq_base"] != float32(10000) || f.kv["llama.attention.layer_norm_rms_epsilon"] != float32(1e-5) {
					t.Errorf("floats: %v %v", f.kv["llama.rope.freq_base"], f.kv["llama.attention.layer_norm_rms_epsilon"])
				}
				toks := f.kv["tokenizer.ggml.tokens"].([]string)
				scores := f.kv["tokenizer.ggml.scores"].([]float32)
				types := f.kv["tokenizer.ggml.token_type"].([]int32)
				if len(toks) != 1024 || len(scores) != 1024 || len(types) != 1024 {
					t.Fatalf("vocab arrays %d %d %d", len(toks), len(scores), len(types))
				}
				checkVocab(t, toks, scores, types)
				bos, eos := f.kv["tokenizer.ggml.bos_token_id"].(uint32), f.kv["tokenizer.ggml.eos_token_id"].(uint32)
				addBOS := f.kv["tokenizer.ggml.add_bos_token"].(bool)
				want := map[string][3]any{
					"":                  {"<s>", "</s>", true},
					TemplateChatMLThink: {"<s>", "<|im_end|>", false},
					TemplateLlama3:      {"<|begin_of_text|>", "<|eot_id|>", true},
				}[tmpl]
				if toks[bos] != want[0] || toks[eos] != want[1] || addBOS != want[2] {
					t.Errorf("bos %q eos %q add_bos %v, want %v", toks[bos], toks[eos], addBOS, want)
				}
				ct, hasCT := f.kv["tokenizer.chat_template"].(string)
				if hasCT != (tmpl != "") || (tmpl == TemplateChatMLThink && !strings.Contains(ct, "<think>")) {
					t.Errorf("chat template present %v: %.60q", hasCT, ct)
				}

				// Tensors: names, shapes, types, aligned offsets, file size.
				wt := map[string]uint32{"f16": 1, "q8_0": 8, "q4_0": 2}[typ]
				wantShapes := map[string][]uint64{
					"token_embd.weight": {64, 1024}, "output_norm.weight": {64}, "output.weight": {64, 1024},
				}
				for i := range 2 {
					p := fmt.Sprintf("blk.%d.", i)
					for k, v := range map[string][]uint64{
						"attn_norm.weight": {64}, "attn_q.weight": {64, 64}, "attn_k.weight": {64, 32},
						"attn_v.weight": {64, 32}, "attn_output.weight": {64, 64}, "ffn_norm.weight": {64},
						"ffn_gate.weight": {64, 128}, "ffn_up.weight": {64, 128}, "ffn_down.weight": {128, 64},
					} {
						wantShapes[p+k] = v
					}
				}
				if len(f.tensors) != len(wantShapes) {
					t.Fatalf("%d tensors, want %d", len(f.tensors), len(wantShapes))
				}
				var end uint64
				for _, ti := range f.tensors {
					ws, ok := wantShapes[ti.name]
					if !ok || !slices.Equal(ti.ne, ws) {
						t.Errorf("tensor %s shape %v, want %v", ti.name, ti.ne, ws)
					}
					wantType := wt
					if len(ws) == 1 {
						wantType = 0
					}
					if ti.typ != wantType {
						t.Errorf("tensor %s type %d, want %d", ti.name, ti.typ, wantType)
					}
					if ti.offset%32 != 0 || ti.offset < end {
						t.Errorf("tensor %s offset %d (previous end %d)", ti.name, ti.offset, end)
					}
					end = (ti.offset + tensorBytes(ti) + 31) / 32 * 32
				}
				if f.size != f.dataStart+int64(end) {
					t.Errorf("file size %d, want data start %d + %d", f.size, f.dataStart, end)
				}
				r, _ := Resolve(o)
				if int64(len(tensorList(r))) != int64(len(f.tensors)) {
					t.Error("tensorList disagrees")
				}
			})
		}
	}
}

func checkVocab(t *testing.T, toks []string, scores []float32, types []int32) {
	t.Helper()
	if toks[0] != "<unk>" || types[0] != 2 || toks[1] != "<s>" || types[1] != 3 || toks[2] != "</s>" || types[2] != 3 {
		t.Errorf("first tokens %q %v", toks[:3], types[:3])
	}
	for b := range 256 {
		if toks[3+b] != fmt.Sprintf("<0x%02X>", b) || types[3+b] != 6 {
			t.Fatalf("byte token %d: %q type %d", b, toks[3+b], types[3+b])
		}
	}
	seen := map[string]bool{}
	last := float32(1)
	for i, s := range toks {
		if seen[s] || s == "" {
			t.Fatalf("token %d %q duplicate or empty", i, s)
		}
		seen[s] = true
		if types[i] == 1 {
			if scores[i] >= last {
				t.Fatalf("normal token %d %q: score %v not below %v", i, s, scores[i], last)
			}
			last = scores[i]
		}
	}
	// Normal pieces are prefix closed.
	for i, s := range toks {
		if types[i] != 1 {
			continue
		}
		for j := range s {
			if j > 0 && !seen[s[:j]] {
				t.Fatalf("piece %q lacks its prefix %q", s, s[:j])
			}
		}
	}
}

func TestVocabularies(t *testing.T) {
	for _, tmpl := range []string{"", TemplateChatMLThink, TemplateLlama3} {
		for _, n := range []int{1024, 32000, 128256} {
			v, err := buildVocab(n, tmpl)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.tokens) != n {
				t.Fatalf("%d tokens, want %d", len(v.tokens), n)
			}
			checkVocab(t, v.tokens, v.scores, v.types)
			for _, w := range []string{"▁the", "▁answer", "▁think", "▁hello", "▁world", "a", "▁"} {
				if _, ok := v.ids[w]; !ok {
					t.Errorf("%s/%d: no %q", tmpl, n, w)
				}
			}
		}
	}
	v, _ := buildVocab(1024, TemplateChatMLThink)
	for _, s := range []string{"<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>"} {
		if _, ok := v.ids[s]; !ok {
			t.Errorf("no %s", s)
		}
	}
	if _, err := buildVocab(264, TemplateChatMLThink); err == nil {
		t.Error("a vocabulary too small for its specials was accepted")
	}
}

func digest(t *testing.T, o Options) [32]byte {
	t.Helper()
	h := sha256.New()
	if err := Write(h, o); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func TestDeterminism(t *testing.T) {
	for _, typ := range []string{TypeF16, TypeQ8_0, TypeQ4_0} {
		o := Options{Preset: "tiny", Type: typ, Seed: 1, Template: TemplateChatMLThink}
		a, b := digest(t, o), digest(t, o)
		if a != b {
			t.Fatalf("%s: same options, different bytes", typ)
		}
		o.Seed = 2
		if digest(t, o) == a {
			t.Fatalf("%s: different seeds, same bytes", typ)
		}
	}
	// A tensor bigger than a chunk, with any number of workers.
	o := Options{NEmbd: 256, NLayer: 1, NHead: 4, NFF: 1024, NVocab: 1024, Type: TypeQ4_0}
	var buf1, buf2 bytes.Buffer
	if err := Write(&buf1, o); err != nil {
		t.Fatal(err)
	}
	prev := setProcs(1)
	err := Write(&buf2, o)
	setProcs(prev)
	if err != nil || !bytes.Equal(buf1.Bytes(), buf2.Bytes()) {
		t.Fatalf("output depends on GOMAXPROCS (err %v)", err)
	}
}

func decodeQ8_0(b []byte) []float32 {
	out := make([]float32, 0, len(b)/34*32)
	for len(b) >= 34 {
		d := f16ToF32(binary.LittleEndian.Uint16(b))
		for j := range 32 {
			out = append(out, float32(int8(b[2+j]))*d)
		}
		b = b[34:]
	}
	return out
}

func decodeQ4_0(b []byte) []float32 {
	out := make([]float32, 0, len(b)/18*32)
	for len(b) >= 18 {
		d := f16ToF32(binary.LittleEndian.Uint16(b))
		var blk [32]float32
		for j := range 16 {
			blk[j] = float32(int(b[2+j]&15)-8) * d
			blk[j+16] = float32(int(b[2+j]>>4)-8) * d
		}
		out = append(out, blk[:]...)
		b = b[18:]
	}
	return out
}

func TestF16(t *testing.T) {
	cases := map[float32]uint16{0: 0, 1: 0x3c00, -2: 0xc000, 65504: 0x7bff, 1e6: 0x7c00, 5.960464477539063e-08: 1,
		0.333333343: 0x3555, 6.103515625e-05: 0x0400, 1e-9: 0}
	for f, want := range cases {
		if got := f32ToF16(f); got != want {
			t.Errorf("f32ToF16(%v) = %#04x, want %#04x", f, got, want)
		}
	}
	for h := range 1 << 16 {
		f := f16ToF32(uint16(h))
		if f != f { // NaN
			continue
		}
		if got := f32ToF16(f); got != uint16(h) {
			t.Fatalf("round trip %#04x -> %v -> %#04x", h, f, got)
		}
	}
	// Ties round to even: 1 + 2^-11 lies halfway between 1 and 1+2^-10.
	if got := f32ToF16(1 + 1.0/2048); got != 0x3c00 {
		t.Errorf("tie: %#04x", got)
	}
	if got := f32ToF16(1 + 3.0/2048); got != 0x3c02 {
		t.Errorf("tie up: %#04x", got)
	}
}

func TestQuantizers(t *testing.T) {
	// Q8_0: values that are exact multiples of max/127 come back within
	// fp16 rounding of the scale.
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(i-32) / 127 * 0.5
	}
	b := make([]byte, 2*34)
	quantizeQ8_0(b, x)
	for i, v := range decodeQ8_0(b) {
		if math.Abs(float64(v-x[i])) > 1e-3*0.5 {
			t.Fatalf("q8_0 [%d] = %v, want %v", i, v, x[i])
		}
	}
	if q := int8(b[2+0]); q != -127 { // first block: -32/127*0.5 is the max magnitude
		t.Errorf("q8_0 first quant %d", q)
	}
	// Q4_0: values (k-8)*d for k in 0..15 come back exactly (d = 1/8,
	// exact in fp16), element j in the low nibble, j+16 in the high one.
	y := make([]float32, 32)
	for j := range 16 {
		y[j] = float32(j-8) / -8 * -1 // -1 .. 0.875: max magnitude -1 gives d = 1/8
		y[j+16] = float32((15-j)-8) / 8
	}
	q := make([]byte, 18)
	quantizeQ4_0(q, y)
	if d := f16ToF32(binary.LittleEndian.Uint16(q)); d != 0.125 {
		t.Fatalf("q4_0 d = %v", d)
	}
	if q[2] != 0|15<<4 {
		t.Errorf("q4_0 byte 0 = %#02x", q[2])
	}
	for i, v := range decodeQ4_0(q) {
		if v != y[i] {
			t.Fatalf("q4_0 [%d] = %v, want %v", i, v, y[i])
		}
	}
	// Zeros, and a one-hot block (script mode) are exact.
	z := make([]float32, 32)
	z[5] = 1
	quantizeQ4_0(q, z)
	quantizeQ8_0(b[:34], z)
	for i, v := range decodeQ4_0(q) {
		if v != z[i] {
			t.Fatalf("one-hot q4_0 [%d] = %v", i, v)
		}
	}
	for i, v := range decodeQ8_0(b[:34]) {
		if math.Abs(float64(v-z[i])) > 1e-3 {
			t.Fatalf("one-hot q8_0 [%d] = %v", i, v)
		}
	}
}

// The random fills decode to mean 0, standard deviation 0.02 weights.
func TestRandomFills(t *testing.T) {
	const n = 1 << 16
	for _, c := range []struct {
		typ    ggmlType
		decode func([]byte) []float32
	}{
		{ggmlF16, func(b []byte) []float32 {
			out := make([]float32, len(b)/2)
			for i := range out {
				out[i] = f16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
			}
			return out
		}},
		{ggmlQ8_0, decodeQ8_0},
		{ggmlQ4_0, decodeQ4_0},
	} {
		b := make([]byte, rowBytes(c.typ, n))
		randomFill(c.typ, b, rand.NewPCG(1, 2))
		if c.typ == ggmlQ8_0 {
			for i := 0; i < len(b); i += 34 {
				if slices.Contains(b[i+2:i+34], 0x80) {
					t.Fatal("q8_0 quant -128")
				}
			}
		}
		xs := c.decode(b)
		var sum, sq float64
		for _, v := range xs {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		mean := sum / n
		std := math.Sqrt(sq/n - mean*mean)
		if math.Abs(mean) > 0.001 || math.Abs(std-0.02) > 0.001 {
			t.Errorf("type %d: mean %v std %v", c.typ, mean, std)
		}
	}
}

func TestNo80(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		x := r.Uint64()
		// Plant 0x80 and 0x81 bytes.
		for k := range 8 {
			switch r.IntN(4) {
			case 0:
				x = x&^(0xff<<(8*k)) | 0x80<<(8*k)
			case 1:
				x = x&^(0xff<<(8*k)) | 0x01<<(8*k)
			}
		}
		got := no80(x)
		for k := range 8 {
			in, out := byte(x>>(8*k)), byte(got>>(8*k))
			want := in
			if in == 0x80 {
				want = 0x81
			}
			if out != want {
				t.Fatalf("no80(%#016x) byte %d: %#02x, want %#02x", x, k, out, want)
			}
		}
	}
}

func TestPresetParams(t *testing.T) {
	p := Presets()
	if len(p) != 4 {
		t.Fatalf("presets %v", PresetNames())
	}
	tiny := Options{Preset: "tiny"}.Params()
	small := Options{Preset: "small"}.Params()
	oneB := Options{Preset: "1b"}.Params()
	t.Logf("params: tiny %d, small %d, 1b %d", tiny, small, oneB)
	if small < 85e6 || small > 115e6 {
		t.Errorf("small: %d parameters, want 100M ± 15%%", small)
	}
	// Llama 3.2 1B has 1,235,814,400 parameters (tied embeddings).
	if oneB != 1235814400 {
		t.Errorf("1b: %d parameters, want 1235814400", oneB)
	}
	// Llama 3 8B has 8,030,261,248 parameters (untied output).
	if eightB := (Options{Preset: "8b"}).Params(); eightB != 8030261248 {
		t.Errorf("8b: %d parameters, want 8030261248", eightB)
	}
	if tiny <= 0 {
		t.Error("tiny: no parameters")
	}
	// Overrides, and untied output adds n_vocab*n_embd.
	o := Options{Preset: "small", NLayer: 1, NCtx: 512}
	r, err := Resolve(o)
	if err != nil || r.NLayer != 1 || r.NCtx != 512 || r.NEmbd != 768 || !r.TieEmbeddings {
		t.Fatalf("resolve %+v %v", r, err)
	}
	o = Options{NEmbd: 64, NLayer: 1, NHead: 2, NFF: 64, NVocab: 500}
	tied := o
	tied.TieEmbeddings = true
	if o.Params()-tied.Params() != 64*500 {
		t.Errorf("untied %d tied %d", o.Params(), tied.Params())
	}
}

func TestResolveErrors(t *testing.T) {
	for name, o := range map[string]Options{
		"unknown preset": {Preset: "huge"},
		"no dims":        {},
		"heads":          {Preset: "tiny", NHead: 3},
		"kv heads":       {Preset: "tiny", NHeadKV: 3},
		"type":           {Preset: "tiny", Type: "q5_k"},
		"q block":        {Preset: "tiny", NFF: 100, Type: TypeQ8_0},
		"template":       {Preset: "tiny", Template: "chatml"},
		"script 1":       {Preset: "tiny", Script: []string{"a"}},
		"small vocab":    {Preset: "tiny", NVocab: 100},
	} {
		if name == "small vocab" {
			if err := Write(io.Discard, o); err == nil {
				t.Errorf("%s: no error", name)
			}
			continue
		}
		if _, err := Resolve(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for name, script := range map[string][]string{
		"missing":   {"<0x0A>", "▁notaword"},
		"duplicate": {"<0x0A>", "▁the", "<0x0A>"},
	} {
		if err := Write(io.Discard, Options{Preset: "tiny", Template: TemplateChatMLThink, Script: script}); err == nil {
			t.Errorf("script %s: no error", name)
		}
	}
	// An F16 model may have dimensions that are not multiples of 32.
	if err := Write(io.Discard, Options{NEmbd: 48, NLayer: 1, NHead: 2, NFF: 80, NVocab: 300, Type: TypeF16}); err != nil {
		t.Error(err)
	}
}

// Script mode: the embedding and output matrices implement the chain, and
// every attention and FFN weight is zero.
func TestScriptWeights(t *testing.T) {
	script := []string{"<0x0A>", "<think>", "▁so", "</think>", "▁yes", "<|im_end|>"}
	for _, typ := range []string{TypeF16, TypeQ8_0, TypeQ4_0} {
		o := Options{Preset: "tiny", Type: typ, Template: TemplateChatMLThink, Script: script}
		path := writeTemp(t, o)
		f := parseGGUF(t, path)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		toks := f.kv["tokenizer.ggml.tokens"].([]string)
		id := func(s string) int { return slices.Index(toks, s) }
		mat := func(name string) (int, []float32) {
			for _, ti := range f.tensors {
				if ti.name == name {
					b := data[f.dataStart+int64(ti.offset):][:tensorBytes(ti)]
					switch ti.typ {
					case 1:
						out := make([]float32, len(b)/2)
						for i := range out {
							out[i] = f16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
						}
						return int(ti.ne[0]), out
					case 8:
						return int(ti.ne[0]), decodeQ8_0(b)
					case 2:
						return int(ti.ne[0]), decodeQ4_0(b)
					}
				}
			}
			t.Fatalf("no tensor %s", name)
			return 0, nil
		}
		ne0, emb := mat("token_embd.weight")
		_, out := mat("output.weight")
		row := func(m []float32, tok int) []float32 { return m[tok*ne0 : (tok+1)*ne0] }
		// Bigram logits of the model: out · normalize(emb[state]).
		next := func(state int) int {
			x := row(emb, state)
			var ss float64
			for _, v := range x {
				ss += float64(v) * float64(v)
			}
			scale := float32(1 / math.Sqrt(ss/float64(ne0)+1e-5))
			best, bestL := -1, float32(math.Inf(-1))
			for tok := range len(toks) {
				var l float32
				for c, w := range row(out, tok) {
					l += w * x[c] * scale
				}
				if l > bestL {
					best, bestL = tok, l
				}
			}
			return best
		}
		for i := 0; i+1 < len(script); i++ {
			if got := next(id(script[i])); got != id(script[i+1]) {
				t.Errorf("%s: after %q the model picks %q, want %q", typ, script[i], toks[got], script[i+1])
			}
		}
		for _, name := range []string{"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "blk.0.attn_v.weight"} {
			_, w := mat(name)
			for _, v := range w {
				if v != 0 {
					t.Fatalf("%s: %s has non-zero weights", typ, name)
				}
			}
		}
	}
}

func setProcs(n int) int { return runtime.GOMAXPROCS(n) }
