package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
)

// builder writes GGUF headers by hand.
type builder struct{ bytes.Buffer }

func newBuilder(nTensors, nKV uint64) *builder {
	b := &builder{}
	b.WriteString("GGUF")
	return b.u32(3).u64(nTensors).u64(nKV)
}
func (b *builder) u8(v uint8) *builder   { b.WriteByte(v); return b }
func (b *builder) u16(v uint16) *builder { binary.Write(b, binary.LittleEndian, v); return b }
func (b *builder) u32(v uint32) *builder { binary.Write(b, binary.LittleEndian, v); return b }
func (b *builder) u64(v uint64) *builder { binary.Write(b, binary.LittleEndian, v); return b }
func (b *builder) str(s string) *builder { b.u64(uint64(len(s))); b.WriteString(s); return b }
func (b *builder) key(k string, t ValueType) *builder {
	return b.str(k).u32(uint32(t))
}
func (b *builder) tensor(name string, shape []uint64, kind uint32, offset uint64) *builder {
	b.str(name).u32(uint32(len(shape)))
	for _, d := range shape {
		b.u64(d)
	}
	return b.u32(kind).u64(offset)
}
func (b *builder) align(a int) *builder { b.Write(make([]byte, (a-b.Len()%a)%a)); return b }

// The tensor type table agrees with the pinned module's fs/ggml (which
// mirrors ggml's type traits) on every type this build accepts, and the
// names agree for file types too.
func TestTypesMatchGGML(t *testing.T) {
	removed := []uint32{4, 5, 31, 32, 33, 36, 37, 38}
	for id := range uint32(64) {
		tt, gt := TensorType(id), ggml.TensorType(id)
		want := gt.TypeSize() != 0 && !slices.Contains(removed, id)
		if tt.Known() != want {
			t.Errorf("type %d: known %v, want %v", id, tt.Known(), want)
			continue
		}
		if want && (tt.BlockSize() != gt.BlockSize() || tt.TypeSize() != gt.TypeSize() || tt.String() != gt.String()) {
			t.Errorf("type %d: %s %d/%d, fs/ggml %s %d/%d", id, tt, tt.BlockSize(), tt.TypeSize(), gt, gt.BlockSize(), gt.TypeSize())
		}
		if FileType(id).String() != ggml.FileType(id).String() {
			t.Errorf("file type %d: %s, fs/ggml %s", id, FileType(id), ggml.FileType(id))
		}
	}
}

// TestRead reads every value type, kept and skipped arrays, and checks the
// byte ranges of the entries and tensor infos.
func TestRead(t *testing.T) {
	b := newBuilder(2, 16)
	b.key("general.architecture", String).str("llama")
	b.key("u8", Uint8).u8(200)
	b.key("i8", Int8).u8(0xff)
	b.key("u16", Uint16).u16(60000)
	b.key("i16", Int16).u16(0xfffe)
	b.key("u32", Uint32).u32(7)
	b.key("i32", Int32).u32(0xfffffffd)
	b.key("f32", Float32).u32(math.Float32bits(1.5))
	b.key("bool", Bool).u8(1)
	b.key("u64", Uint64).u64(1 << 40)
	b.key("i64", Int64).u64(math.MaxUint64)
	b.key("f64", Float64).u64(math.Float64bits(-2.25))
	b.key("heads", Array).u32(uint32(Int32)).u64(3).u32(4).u32(8).u32(2)
	b.key("tokens", Array).u32(uint32(String)).u64(3).str("a").str("bc").str("")
	b.key("general.alignment", Uint32).u32(64)
	b.key("u32", Uint32).u32(9) // a repeated key: the last one counts
	infoStart := int64(b.Len())
	b.tensor("token_embd.weight", []uint64{32, 3}, 8 /* Q8_0 */, 0)
	b.tensor("norm", []uint64{32}, 0, 128)
	infoEnd := int64(b.Len())
	b.align(64)
	dataStart := int64(b.Len())
	b.Write(make([]byte, 128+128))
	data := b.Bytes()

	f, err := Read(bytes.NewReader(data), int64(len(data)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"general.architecture": "llama", "u8": uint8(200), "i8": int8(-1), "u16": uint16(60000), "i16": int16(-2),
		"u32": uint32(9), "i32": int32(-3), "f32": float32(1.5), "bool": true, "u64": uint64(1 << 40), "i64": int64(-1),
		"f64": -2.25, "heads": []int32{4, 8, 2}, "tokens": []string{"a", "bc", ""}, "general.alignment": uint32(64),
	}
	for k, v := range want {
		kv, ok := f.KV(k)
		if !ok || !reflect.DeepEqual(kv.Value, v) {
			t.Errorf("%s = %#v, want %#v", k, kv.Value, v)
		}
	}
	if len(f.KVs) != 16 || f.Version != 3 || f.Alignment != 64 || f.DataStart != dataStart {
		t.Errorf("%d entries, version %d, alignment %d, data at %d (want %d)", len(f.KVs), f.Version, f.Alignment, f.DataStart, dataStart)
	}
	if got := f.Uint32s("heads"); !slices.Equal(got, []uint32{4, 8, 2}) {
		t.Errorf("Uint32s(heads) = %v", got)
	}
	if got := f.Uint32s("u32"); !slices.Equal(got, []uint32{9}) {
		t.Errorf("Uint32s(u32) = %v", got)
	}
	if _, ok := f.Uint32("u64"); ok || f.String("u32") != "" || f.ArrayLen("tokens") != 3 || f.ArrayLen("u32") != 0 {
		t.Error("typed accessors convert across types")
	}
	// The entries' byte ranges tile the metadata section.
	if f.KVs[0].Start != 24 || f.KVs[len(f.KVs)-1].End != infoStart {
		t.Errorf("metadata from %d to %d, want 24 to %d", f.KVs[0].Start, f.KVs[len(f.KVs)-1].End, infoStart)
	}
	for i := 1; i < len(f.KVs); i++ {
		if f.KVs[i].Start != f.KVs[i-1].End {
			t.Errorf("entry %d starts at %d, the previous ends at %d", i, f.KVs[i].Start, f.KVs[i-1].End)
		}
	}
	if !bytes.HasPrefix(data[f.KVs[1].Start:f.KVs[1].End], []byte{2, 0, 0, 0, 0, 0, 0, 0, 'u', '8'}) {
		t.Errorf("entry u8 bytes %q", data[f.KVs[1].Start:f.KVs[1].End])
	}
	ts := f.Tensors
	if len(ts) != 2 || ts[0].InfoStart != infoStart || ts[0].InfoEnd != ts[1].InfoStart || ts[1].InfoEnd != infoEnd {
		t.Fatalf("tensor infos %+v", ts)
	}
	if ts[0].Type.String() != "Q8_0" || ts[0].Size != 3*34 || ts[0].Elements() != 96 || ts[1].Offset != 128 || ts[1].Size != 128 {
		t.Errorf("tensors %+v", ts)
	}
	if f.Params() != 96+32 {
		t.Errorf("params %d", f.Params())
	}

	// Arrays over MaxArray keep their type and length, not their values;
	// a negative MaxArray keeps every array.
	f, err = Read(bytes.NewReader(data), int64(len(data)), Options{MaxArray: 2})
	if err != nil {
		t.Fatal(err)
	}
	if kv, _ := f.KV("tokens"); kv.Value != nil || kv.Len != 3 || kv.Elem != String {
		t.Errorf("tokens over MaxArray: %+v", kv)
	}
	if f.Uint32s("heads") != nil {
		t.Error("heads over MaxArray have values")
	}
	f, err = Read(bytes.NewReader(data), int64(len(data)), Options{MaxArray: -1})
	if err != nil || f.ArrayLen("tokens") != 3 || f.Uint32s("heads") == nil {
		t.Fatalf("MaxArray -1: %v", err)
	}
	// One byte short: the last tensor runs past the end.
	if _, err := Read(bytes.NewReader(data), int64(len(data)-1), Options{}); err == nil || !strings.Contains(err.Error(), `tensor "norm"`) {
		t.Errorf("short file: %v", err)
	}
}

// FuzzRead: Read never panics, and what it accepts is consistent: the
// entries tile the metadata, the tensor infos follow, every tensor's data
// lies in the file.
func FuzzRead(f *testing.F) {
	b := newBuilder(1, 2)
	b.key("general.architecture", String).str("llama")
	b.key("h", Array).u32(uint32(Uint32)).u64(2).u32(4).u32(8)
	b.tensor("token_embd.weight", []uint64{4, 2}, 0, 0).align(32)
	b.Write(make([]byte, 32))
	f.Add(b.Bytes())
	f.Add(newBuilder(0, 1).key("k", String).u64(1 << 40).Bytes())
	f.Add(newBuilder(1, 0).str("t").u32(1 << 31).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Read(bytes.NewReader(data), int64(len(data)), Options{MaxArray: -1})
		if err != nil {
			return
		}
		end := int64(24)
		for _, kv := range g.KVs {
			if kv.Start != end || kv.End <= kv.Start {
				t.Fatalf("entry %q at %d-%d after %d", kv.Key, kv.Start, kv.End, end)
			}
			end = kv.End
		}
		for _, ts := range g.Tensors {
			if ts.InfoStart != end || ts.InfoEnd <= ts.InfoStart {
				t.Fatalf("tensor %q info at %d-%d after %d", ts.Name, ts.InfoStart, ts.InfoEnd, end)
			}
			end = ts.InfoEnd
			if uint64(g.DataStart)+ts.Offset+ts.Size > uint64(len(data)) {
				t.Fatalf("tensor %q past the end", ts.Name)
			}
		}
		if g.DataStart < end || g.DataStart%int64(g.Alignment) != 0 {
			t.Fatalf("data at %d, header ends at %d", g.DataStart, end)
		}
	})
}
