package catalog

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/models/gguf"
)

// GGUF value types, as the header builder writes them.
const (
	ggufUint32 = uint32(gguf.Uint32)
	ggufInt32  = uint32(gguf.Int32)
	ggufString = uint32(gguf.String)
	ggufArray  = uint32(gguf.Array)
	ggufUint64 = uint32(gguf.Uint64)
)

// ggufBuilder builds GGUF headers by hand for the hostile cases.
type ggufBuilder struct{ bytes.Buffer }

func newGGUF(version uint32, nTensors, nKV uint64) *ggufBuilder {
	g := &ggufBuilder{}
	g.WriteString("GGUF")
	g.u32(version)
	g.u64(nTensors)
	g.u64(nKV)
	return g
}
func (g *ggufBuilder) u32(v uint32) *ggufBuilder { binary.Write(g, binary.LittleEndian, v); return g }
func (g *ggufBuilder) u64(v uint64) *ggufBuilder { binary.Write(g, binary.LittleEndian, v); return g }
func (g *ggufBuilder) str(s string) *ggufBuilder { g.u64(uint64(len(s))); g.WriteString(s); return g }
func (g *ggufBuilder) kvString(k, v string) *ggufBuilder {
	g.str(k)
	g.u32(ggufString)
	return g.str(v)
}

// tensor writes a tensor info: name, dims, shape, type, offset.
func (g *ggufBuilder) tensor(name string, shape []uint64, kind uint32, offset uint64) *ggufBuilder {
	g.str(name)
	g.u32(uint32(len(shape)))
	for _, d := range shape {
		g.u64(d)
	}
	g.u32(kind)
	return g.u64(offset)
}

func (g *ggufBuilder) pad(n int) *ggufBuilder { g.Write(make([]byte, n)); return g }

func factsOfBytes(b []byte) (Facts, error) { return safeFacts(bytes.NewReader(b), int64(len(b))) }

func TestReadFactsHostile(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a GGUF file"},
		{"wrong magic", []byte("GGML0000000000000000000000"), `not a GGUF file: it starts with "GGML"`},
		{"version 1", newGGUF(1, 0, 0).Bytes(), "version 1 is no longer supported"},
		{"big-endian", newGGUF(3<<24, 0, 0).Bytes(), "unsupported GGUF version"},
		{"header ends", newGGUF(3, 0, 1).Bytes()[:20], "ends inside the header"},
		{"huge key", newGGUF(3, 0, 1).u64(1 << 62).Bytes(), "claims 4611686018427387904 bytes"},
		{"huge string", newGGUF(3, 0, 1).str("k").u32(ggufString).u64(1 << 40).Bytes(), "claims 1099511627776 bytes"},
		{"string past end", newGGUF(3, 0, 1).str("k").u32(ggufString).u64(1000).Bytes(), "runs past the end of the file"},
		{"huge array", newGGUF(3, 0, 1).str("k").u32(ggufArray).u32(ggufUint64).u64(1 << 61).Bytes(), "more than the file can hold"},
		{"huge string array", newGGUF(3, 0, 1).str("k").u32(ggufArray).u32(ggufString).u64(1 << 61).Bytes(), "more than the file can hold"},
		{"nested array", newGGUF(3, 0, 1).str("k").u32(ggufArray).u32(ggufArray).u64(1).Bytes(), "nested arrays"},
		{"bad type", newGGUF(3, 0, 1).str("k").u32(99).Bytes(), "type 99"},
		{"bad alignment", newGGUF(3, 0, 1).str("general.alignment").u32(ggufUint32).u32(3).Bytes(), "not a power of two"},
		{"huge tensor count", newGGUF(3, 1<<60, 0).pad(64).Bytes(), "more than the file can hold"},
		{"huge dims", newGGUF(3, 1, 0).str("t").u32(1 << 31).pad(64).Bytes(), "2147483648 dimensions"},
		{"shape overflow", newGGUF(3, 1, 0).tensor("t", []uint64{1 << 40, 1 << 40}, 0, 0).pad(64).Bytes(), "impossible shape"},
		{"unknown tensor type", newGGUF(3, 1, 0).tensor("t", []uint64{32}, 77, 0).pad(64).Bytes(), "type 77"},
		{"tensor past end", newGGUF(3, 1, 1).kvString("general.architecture", "llama").tensor("t", []uint64{1000}, 0, 0).pad(64).Bytes(), `tensor "t" (4000 bytes`},
		{"offset overflow", newGGUF(3, 1, 0).tensor("t", []uint64{32}, 0, 1<<63|1<<62|32).pad(64).Bytes(), "runs past the end"},
		{"unaligned offset", newGGUF(3, 1, 0).tensor("t", []uint64{32}, 0, 3).pad(64).Bytes(), "not a multiple of the alignment"},
		{"block size", newGGUF(3, 1, 0).tensor("t", []uint64{33}, 8 /* Q8_0 */, 0).pad(64).Bytes(), "block size 32"},
		{"no architecture", newGGUF(3, 0, 1).kvString("general.name", "x").Bytes(), "no general.architecture"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := factsOfBytes(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReadFactsMinimal(t *testing.T) {
	// A valid hand-built header: one F32 tensor of 8 elements.
	g := newGGUF(3, 1, 2).kvString("general.architecture", "llama")
	g.str("llama.block_count").u32(ggufUint32).u32(3)
	g.tensor("token_embd.weight", []uint64{4, 2}, 0, 0)
	g.pad((32 - g.Len()%32) % 32).pad(32)
	f, err := factsOfBytes(g.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Arch != "llama" || f.Layers != 3 || f.Vocab != 2 || f.Params != 8 || f.FileType != "F32" {
		t.Fatalf("facts %+v", f)
	}
	// One byte short: the tensor runs past the end.
	if _, err := factsOfBytes(g.Bytes()[:g.Len()-1]); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("short file: %v", err)
	}
}

func TestReadFactsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	writeSynth(t, p, narrowQ4)
	f, err := ReadFacts(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.FileType != "Q4_0" || f.Embd != 32 || f.Heads != 2 || f.HeadsKV != 2 || f.Vocab != 512 || f.CtxTrain == 0 {
		t.Fatalf("facts %+v", f)
	}
	if _, err := ReadFacts(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadFacts(dir): %v", err)
	}
	if _, err := ReadFacts(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Errorf("ReadFacts(missing): %v", err)
	}
	// Every truncation of the header and data is an error, never a panic.
	b, _ := os.ReadFile(p)
	for _, n := range []int{3, 4, 8, 24, 100, 1000, 5000, len(b) / 2, len(b) - 1} {
		if _, err := factsOfBytes(b[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
}

func FuzzReadFacts(f *testing.F) {
	g := newGGUF(3, 1, 2).kvString("general.architecture", "llama")
	g.str("llama.attention.head_count").u32(ggufArray).u32(ggufUint32).u64(2).u32(4).u32(8)
	g.tensor("token_embd.weight", []uint64{4, 2}, 0, 0)
	g.pad((32 - g.Len()%32) % 32).pad(32)
	f.Add(g.Bytes())
	f.Add(newGGUF(3, 0, 1).str("k").u32(ggufString).u64(1 << 40).Bytes())
	f.Add(newGGUF(3, 1, 0).str("t").u32(1 << 31).pad(64).Bytes())
	f.Add(corruptBytes(512, 2))
	b := synthBytes(f, synthTinyF16Small)
	f.Add(b[:min(len(b), 4096)])
	f.Fuzz(func(t *testing.T, b []byte) {
		facts, err := factsOfBytes(b)
		if err != nil {
			return
		}
		if facts.Arch == "" {
			t.Fatalf("no error and no architecture: %+v", facts)
		}
		// What ReadFacts accepts, fs/ggml reads the same.
		want, err := oracleFacts(bytes.NewReader(b))
		if err != nil || facts != want {
			t.Fatalf("facts %+v, oracle %+v (%v)", facts, want, err)
		}
	})
}
