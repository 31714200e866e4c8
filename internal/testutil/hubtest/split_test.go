package hubtest

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/asi1d/asi1d/models/gguf"
	"github.com/asi1d/asi1d/models/synth"
)

// Each part of a split is a GGUF file of its own: the first holds every
// metadata entry of the model, every part the split keys, and the parts'
// tensors are the model's, in order, with the same bytes.
func TestSplitGGUF(t *testing.T) {
	var buf bytes.Buffer
	if err := synth.Write(&buf, synth.Options{Preset: "tiny", Type: "q8_0"}); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()
	read := func(b []byte) *gguf.File {
		t.Helper()
		f, err := gguf.Read(bytes.NewReader(b), int64(len(b)), gguf.Options{MaxArray: -1})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	model := read(whole)
	parts, err := SplitGGUF(whole, 3)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []gguf.Tensor
	var data [][]byte
	for i, p := range parts {
		f := read(p)
		if no, _ := f.KV("split.no"); no.Value != uint16(i) {
			t.Errorf("part %d: split.no %v", i, no.Value)
		}
		if n, _ := f.KV("split.tensors.count"); n.Value != int32(len(model.Tensors)) {
			t.Errorf("part %d: split.tensors.count %v", i, n.Value)
		}
		if i == 0 {
			for _, kv := range model.KVs {
				got, ok := f.KV(kv.Key)
				if !ok || !reflect.DeepEqual(got.Value, kv.Value) {
					t.Errorf("part 1 lacks %s", kv.Key)
				}
			}
		} else if _, ok := f.KV("general.architecture"); ok {
			t.Errorf("part %d has the model's metadata", i+1)
		}
		for _, ts := range f.Tensors {
			tensors = append(tensors, ts)
			data = append(data, p[f.DataStart+int64(ts.Offset):][:ts.Size])
		}
	}
	if len(tensors) != len(model.Tensors) {
		t.Fatalf("%d tensors in the parts, %d in the model", len(tensors), len(model.Tensors))
	}
	for i, want := range model.Tensors {
		got := tensors[i]
		if got.Name != want.Name || got.Type != want.Type || !reflect.DeepEqual(got.Shape, want.Shape) {
			t.Errorf("tensor %d: %s %v %s, want %s %v %s", i, got.Name, got.Shape, got.Type, want.Name, want.Shape, want.Type)
		}
		if !bytes.Equal(data[i], whole[model.DataStart+int64(want.Offset):][:want.Size]) {
			t.Errorf("tensor %s: data differs", want.Name)
		}
	}
	if _, err := SplitGGUF(whole[:len(whole)-1], 2); err == nil {
		t.Error("a truncated file splits")
	}
	if _, err := SplitGGUF(whole, len(model.Tensors)+1); err == nil {
		t.Error("more parts than tensors")
	}
}
