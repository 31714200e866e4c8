// Package gguf reads the header of a GGUF file: its metadata and its
// tensor infos. It is asi1d's one GGUF reader (the catalog's model facts,
// the test helper that splits models, the synth model tests).
//
// It reads hostile files safely: every length in the header is checked
// against the file's size before anything is allocated for it, so a header
// cannot make Read allocate much more than the file holds, and every
// tensor's data must lie within the file (a truncated file is an error).
// The pinned ollama module's fs/ggml decoder trusts those lengths, which
// is why this reader exists.
package gguf

// ValueType is the type of a metadata value.
type ValueType uint32

// GGUF metadata value types.
const (
	Uint8 ValueType = iota
	Int8
	Uint16
	Int16
	Uint32
	Int32
	Float32
	Bool
	String
	Array
	Uint64
	Int64
	Float64
)

// scalarSize is the byte size of each scalar value type (0: not a scalar).
func (t ValueType) scalarSize() uint64 {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16:
		return 2
	case Uint32, Int32, Float32:
		return 4
	case Uint64, Int64, Float64:
		return 8
	}
	return 0
}

// Limits of what Read accepts.
const (
	// DefaultMaxArray is the longest metadata array Read keeps by default;
	// longer ones (the vocabulary) are skipped, their length kept.
	DefaultMaxArray = 1024
	// MaxString is the longest metadata string accepted (chat templates
	// are a few KiB).
	MaxString = 16 << 20
	// MaxName is the longest key or tensor name accepted.
	MaxName = 64 << 10
	// MaxDims is GGML_MAX_DIMS.
	MaxDims = 4
)

// KV is one metadata entry.
type KV struct {
	Key  string
	Type ValueType
	// Elem and Len are an array's element type and length.
	Elem ValueType
	Len  int
	// Value is the value as Go reads it: uint8, int8, uint16, int16,
	// uint32, int32, float32, bool, string, uint64, int64 or float64, or
	// for an array a slice of one of them; nil for an array longer than
	// Options.MaxArray.
	Value any
	// Start and End are the entry's bytes in the file (key to value).
	Start, End int64
}

// Tensor is one tensor info.
type Tensor struct {
	Name  string
	Shape []uint64 // innermost dimension first
	Type  TensorType
	// Offset is where the data starts, from File.DataStart; Size its bytes.
	Offset, Size uint64
	// InfoStart and InfoEnd are the info's bytes in the file; its last 8
	// bytes are the offset.
	InfoStart, InfoEnd int64
}

// Elements is the number of elements of the tensor.
func (t Tensor) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is a GGUF header.
type File struct {
	Version uint32
	KVs     []KV // in file order
	Tensors []Tensor
	// Alignment is general.alignment (32 when absent); DataStart is where
	// the tensor data begins (the header's end, aligned).
	Alignment uint64
	DataStart int64
	index     map[string]int // key -> its last entry in KVs
}

// KV is the entry of key (the last one, should a file repeat a key).
func (f *File) KV(key string) (KV, bool) {
	i, ok := f.index[key]
	if !ok {
		return KV{}, false
	}
	return f.KVs[i], true
}

// String is key's value when it is a string, else "".
func (f *File) String(key string) string {
	kv, _ := f.KV(key)
	s, _ := kv.Value.(string)
	return s
}

// Uint32 is key's value when it is a uint32 (GGUF's type for counts and
// lengths); other integer types are not converted.
func (f *File) Uint32(key string) (uint32, bool) {
	kv, _ := f.KV(key)
	v, ok := kv.Value.(uint32)
	return v, ok
}

// Uint32s is key's value as a list: a uint32 alone, or a kept array of
// uint32 or int32 (per-layer values such as head counts); nil otherwise.
func (f *File) Uint32s(key string) []uint32 {
	kv, _ := f.KV(key)
	switch v := kv.Value.(type) {
	case uint32:
		return []uint32{v}
	case []uint32:
		return v
	case []int32:
		out := make([]uint32, len(v))
		for i, x := range v {
			out[i] = uint32(x)
		}
		return out
	}
	return nil
}

// ArrayLen is the length of key's value when it is an array, else 0.
func (f *File) ArrayLen(key string) int {
	kv, _ := f.KV(key)
	if kv.Type != Array {
		return 0
	}
	return kv.Len
}

// Params is the number of parameters: the elements of every tensor.
func (f *File) Params() uint64 {
	var n uint64
	for _, t := range f.Tensors {
		n += t.Elements()
	}
	return n
}
