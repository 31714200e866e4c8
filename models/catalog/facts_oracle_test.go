package catalog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/ollama/ollama/fs/ggml"

	"github.com/asi1d/asi1d/models/gguf"
	"github.com/asi1d/asi1d/models/synth"
)

// The oracle: Facts as the pinned module's fs/ggml decoder reads them, by
// the rules ReadFacts followed while it decoded the metadata with fs/ggml
// (its ContextLength, BlockCount, EmbeddingLength and ParameterCount
// helpers, the per-layer head count arrays through
// UintOrArrayValueAsArray, the file type's name, and the fallbacks for the
// vocabulary size and the file type). ReadFacts must agree with it on
// every model file it accepts.

// oracleFacts decodes a GGUF header with fs/ggml.
func oracleFacts(rs io.ReadSeeker) (Facts, error) {
	g, err := ggml.Decode(rs, gguf.DefaultMaxArray)
	if err != nil {
		return Facts{}, err
	}
	kv := g.KV()
	f := Facts{
		Arch:     kv.String("general.architecture"),
		Name:     kv.String("general.name"),
		CtxTrain: int(kv.ContextLength()),
		Layers:   int(kv.BlockCount()),
		Embd:     int(kv.EmbeddingLength()),
		Params:   kv.ParameterCount(),
	}
	if f.Arch == "" {
		return Facts{}, errors.New("no general.architecture")
	}
	maxOf := func(key string) int {
		m := uint32(0)
		for _, v := range kv.UintOrArrayValueAsArray(key, 0) {
			m = max(m, v)
		}
		return int(m)
	}
	f.Heads = maxOf("attention.head_count")
	f.HeadsKV = maxOf("attention.head_count_kv")
	if f.HeadsKV == 0 {
		f.HeadsKV = f.Heads
	}
	f.Vocab = int(kv.Uint("vocab_size"))
	if f.Vocab == 0 {
		f.Vocab = oracleArrayLen(kv["tokenizer.ggml.tokens"])
	}
	tensors := g.Tensors().Items()
	if f.Vocab == 0 {
		for _, t := range tensors {
			if t.Name == "token_embd.weight" && len(t.Shape) >= 2 {
				f.Vocab = int(t.Shape[1])
			}
		}
	}
	if _, ok := kv["general.file_type"]; ok {
		if s := ggml.FileType(kv.Uint("general.file_type")).String(); s != "unknown" {
			f.FileType = s
		}
	}
	if f.FileType == "" {
		bytesOf := map[uint32]uint64{}
		for _, t := range tensors {
			bytesOf[t.Kind] += t.Size()
		}
		var best uint32
		var most uint64
		for k, n := range bytesOf {
			if n > most || (n == most && k < best) {
				best, most = k, n
			}
		}
		f.FileType = "unknown"
		if most > 0 {
			f.FileType = ggml.TensorType(best).String()
		}
	}
	return f, nil
}

// oracleArrayLen is the element count of an fs/ggml array value (its
// type is unexported; the count is its size field), 0 for a non-array.
func oracleArrayLen(v any) int {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return 0
	}
	size := rv.Elem().FieldByName("size")
	if !size.IsValid() || !size.CanInt() {
		return 0
	}
	return int(size.Int())
}

// sparse is a file of virtual size: head, then zeros. Facts depend on the
// header only, so a large preset's header stands for its file.
type sparse struct {
	head []byte
	size int64
}

func (s sparse) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), s.size-off)
	clear(p[:n])
	if off < int64(len(s.head)) {
		copy(p[:n], s.head[off:])
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func (s sparse) reader() *io.SectionReader { return io.NewSectionReader(s, 0, s.size) }

// headWriter keeps the first bytes written and then fails, which stops
// synth.Write soon after the header.
type headWriter struct {
	buf   bytes.Buffer
	limit int
}

var errEnough = errors.New("enough")

func (w *headWriter) Write(p []byte) (int, error) {
	if w.buf.Len() >= w.limit {
		return 0, errEnough
	}
	return w.buf.Write(p)
}

// synthHead is the start of a synth model's file: its whole header and
// some data.
func synthHead(t *testing.T, o synth.Options) []byte {
	t.Helper()
	w := &headWriter{limit: 8 << 20}
	if err := synth.Write(w, o); err != nil && !errors.Is(err, errEnough) {
		t.Fatal(err)
	}
	return w.buf.Bytes()
}

// modelFiles are the GGUF files the tests can see: the bundled
// stories260K, shared/models beside the repository and $ASI1D_TEST_MODELS.
func modelFiles(t *testing.T) []string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("ASI1D_TEST_MODELS"); d != "" {
		dirs = append(dirs, d)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dirs = append(dirs, filepath.Join(d, "models", "stories260K"), filepath.Join(d, "..", "shared", "models"))
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	var files []string
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, "*.gguf"))
		files = append(files, m...)
	}
	if !slices.ContainsFunc(files, func(p string) bool { return filepath.Base(p) == "stories260K.gguf" }) {
		files = append(files, stories(t))
	}
	return files
}

// checkOracle compares ReadFacts's view of a file with the oracle's.
func checkOracle(t *testing.T, got Facts, rs io.ReadSeeker) {
	t.Helper()
	want, err := oracleFacts(rs)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	if got != want {
		t.Errorf("facts\n got %+v\nwant %+v", got, want)
	}
	if got.Arch == "" || got.Params == 0 || got.FileType == "" || got.FileType == "unknown" {
		t.Errorf("facts incomplete: %+v", got)
	}
}

// checkFileOracle compares ReadFacts of the file at p with fs/ggml's
// reading of it.
func checkFileOracle(t *testing.T, p string) {
	t.Helper()
	got, err := ReadFacts(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checkOracle(t, got, f)
}

// TestFactsMatchOracle reads every model file at hand, synth models of
// every preset but 8b at every type and architecture, and hand-built
// headers that take the fallbacks (head counts per layer, no file type,
// no vocab_size), and compares ReadFacts with fs/ggml's reading.
func TestFactsMatchOracle(t *testing.T) {
	for _, p := range modelFiles(t) {
		t.Run(filepath.Base(p), func(t *testing.T) { checkFileOracle(t, p) })
	}
	// tiny is written whole and read with ReadFacts; the larger presets'
	// headers stand for files of 64 GiB (their data is not generated).
	for _, preset := range []string{"tiny", "small", "1b"} {
		for _, typ := range []string{"f16", "q8_0", "q4_0"} {
			for _, o := range []synth.Options{
				{Preset: preset, Type: typ},
				{Preset: preset, Type: typ, Template: synth.TemplateChatMLThink},
				{Preset: preset, Type: typ, Arch: synth.ArchBERT},
			} {
				t.Run(preset+"/"+typ+"/"+o.Template+o.Arch, func(t *testing.T) {
					if preset == "tiny" {
						p := filepath.Join(t.TempDir(), "m.gguf")
						writeSynth(t, p, o)
						checkFileOracle(t, p)
						return
					}
					s := sparse{head: synthHead(t, o), size: 64 << 30}
					got, err := safeFacts(s.reader(), s.size)
					if err != nil {
						t.Fatal(err)
					}
					checkOracle(t, got, s.reader())
				})
			}
		}
	}
	for name, b := range handBuilt() {
		t.Run(name, func(t *testing.T) {
			got, err := factsOfBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			checkOracle(t, got, bytes.NewReader(b))
		})
	}
}

// handBuilt are headers that take ReadFacts's less common paths.
func handBuilt() map[string][]byte {
	out := map[string][]byte{}
	finish := func(g *ggufBuilder) []byte {
		g.pad((32 - g.Len()%32) % 32)
		return g.pad(4096).Bytes()
	}
	// Per-layer head counts as uint32 and int32 arrays, no general.file_type
	// (the dominant tensor type names it), vocabulary from the token list.
	g := newGGUF(3, 3, 6).kvString("general.architecture", "qwen3").kvString("general.name", "layers")
	g.str("qwen3.attention.head_count").u32(ggufArray).u32(ggufUint32).u64(3).u32(8).u32(16).u32(4)
	g.str("qwen3.attention.head_count_kv").u32(ggufArray).u32(ggufInt32).u64(3).u32(2).u32(4).u32(1)
	g.str("qwen3.block_count").u32(ggufUint32).u32(3)
	g.str("tokenizer.ggml.tokens").u32(ggufArray).u32(ggufString).u64(2).str("a").str("b")
	g.tensor("token_embd.weight", []uint64{32, 2}, 8 /* Q8_0 */, 0)
	g.tensor("blk.0.attn_norm.weight", []uint64{32}, 0, 96)
	g.tensor("output.weight", []uint64{32, 2}, 1 /* F16 */, 224)
	out["per-layer heads"] = finish(g)
	// No head_count_kv (it is head_count), vocabulary from token_embd's
	// shape, a file type fs/ggml does not name (IQ2_XXS: the dominant
	// tensor type names it), general.alignment 64.
	g = newGGUF(3, 2, 4).kvString("general.architecture", "llama")
	g.str("general.alignment").u32(ggufUint32).u32(64)
	g.str("general.file_type").u32(ggufUint32).u32(19)
	g.str("llama.attention.head_count").u32(ggufUint32).u32(6)
	g.tensor("token_embd.weight", []uint64{8, 5}, 0, 0)
	g.tensor("output_norm.weight", []uint64{8}, 1, 192)
	g.pad((64 - g.Len()%64) % 64)
	out["token_embd vocab"] = g.pad(512).Bytes()
	// Scalars of other integer types where uint32 is expected: fs/ggml
	// reads them as absent.
	g = newGGUF(3, 1, 4).kvString("general.architecture", "llama")
	g.str("llama.context_length").u32(ggufUint64).u64(4096)
	g.str("llama.block_count").u32(ggufInt32).u32(2)
	g.str("general.file_type").u32(ggufUint32).u32(7)
	g.tensor("token_embd.weight", []uint64{32, 3}, 8, 0)
	out["other int types"] = finish(g)
	return out
}
