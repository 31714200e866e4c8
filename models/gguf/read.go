package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// Options tune Read.
type Options struct {
	// MaxArray is the longest array whose values Read keeps (0:
	// DefaultMaxArray; negative: every array). Longer arrays are skipped;
	// their type and length are kept.
	MaxArray int
}

// Read reads the GGUF header at the start of r, a file of size bytes. It
// checks what llama.cpp would refuse before loading: the magic and
// version, every length in the header against the file, every tensor's
// dimensions, type and alignment, and that every tensor's data lies
// within the file. Its errors say what is wrong in words.
func Read(r io.Reader, size int64, o Options) (*File, error) {
	maxArray := o.MaxArray
	if maxArray == 0 {
		maxArray = DefaultMaxArray
	}
	h := &hreader{r: bufio.NewReaderSize(r, 64<<10), size: size}
	if size < 4 {
		return nil, fmt.Errorf("not a GGUF file: only %d bytes", size)
	}
	magic, err := h.read(4, "the magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != "GGUF" {
		return nil, fmt.Errorf("not a GGUF file: it starts with %q, not \"GGUF\"", magic)
	}
	version, err := h.u32("the version")
	if err != nil {
		return nil, err
	}
	switch {
	case version == 1:
		return nil, errors.New("GGUF version 1 is no longer supported (llama.cpp refuses it too): convert the model again")
	case version != 2 && version != 3:
		return nil, fmt.Errorf("unsupported GGUF version %d (big-endian or damaged file?)", version)
	}
	nTensors, err := h.u64("the tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := h.u64("the metadata count")
	if err != nil {
		return nil, err
	}
	f := &File{Version: version, Alignment: 32, index: map[string]int{}}
	// KVs grows as entries are read (each takes at least 12 bytes of the
	// file): a hostile count allocates nothing ahead.
	for i := uint64(0); i < nKV; i++ {
		kv, err := h.kv(i, maxArray)
		if err != nil {
			return nil, err
		}
		if kv.Key == "general.alignment" && kv.Type == Uint32 {
			v := kv.Value.(uint32)
			if v == 0 || v&(v-1) != 0 {
				return nil, fmt.Errorf("general.alignment %d is not a power of two", v)
			}
			f.Alignment = uint64(v)
		}
		f.index[kv.Key] = len(f.KVs)
		f.KVs = append(f.KVs, kv)
	}

	// Each tensor takes at least 24 header bytes: a count beyond that is a
	// lie, and checking it first bounds the slice below.
	if nTensors > h.left()/24 {
		return nil, fmt.Errorf("the header claims %d tensors, more than the file can hold", nTensors)
	}
	f.Tensors = make([]Tensor, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		t, err := h.tensor(i, f.Alignment)
		if err != nil {
			return nil, err
		}
		f.Tensors = append(f.Tensors, t)
	}
	dataStart := (uint64(h.off) + f.Alignment - 1) / f.Alignment * f.Alignment
	f.DataStart = int64(dataStart)
	for _, t := range f.Tensors {
		end, carry := bits.Add64(dataStart, t.Offset, 0)
		end, carry2 := bits.Add64(end, t.Size, 0)
		if carry != 0 || carry2 != 0 || end > uint64(size) {
			return nil, fmt.Errorf("tensor %q (%d bytes at offset %d) runs past the end of the file (%d bytes): the file is truncated or damaged",
				t.Name, t.Size, dataStart+t.Offset, size)
		}
	}
	return f, nil
}

// kv reads metadata entry i.
func (h *hreader) kv(i uint64, maxArray int) (KV, error) {
	kv := KV{Start: h.off}
	var err error
	if kv.Key, err = h.str(MaxName, fmt.Sprintf("metadata key %d", i)); err != nil {
		return kv, err
	}
	typ, err := h.u32("the type of " + kv.Key)
	if err != nil {
		return kv, err
	}
	kv.Type = ValueType(typ)
	switch {
	case kv.Type == String:
		if kv.Value, err = h.str(MaxString, "the value of "+kv.Key); err != nil {
			return kv, err
		}
	case kv.Type == Array:
		et, err := h.u32("the element type of " + kv.Key)
		if err != nil {
			return kv, err
		}
		kv.Elem = ValueType(et)
		n, err := h.u64("the length of " + kv.Key)
		if err != nil {
			return kv, err
		}
		if kv.Value, err = h.array(kv.Key, kv.Elem, n, maxArray); err != nil {
			return kv, err
		}
		kv.Len = int(n) // n <= the file's size: array checked it
	case kv.Type.scalarSize() > 0:
		if kv.Value, err = h.scalar(kv.Type, "the value of "+kv.Key); err != nil {
			return kv, err
		}
	default:
		return kv, fmt.Errorf("metadata %s has type %d, which GGUF does not define", kv.Key, typ)
	}
	kv.End = h.off
	return kv, nil
}

// array reads an array of n elements of type et: its values when n <=
// maxArray (or maxArray < 0), else nothing.
func (h *hreader) array(key string, et ValueType, n uint64, maxArray int) (any, error) {
	keep := maxArray < 0 || n <= uint64(maxArray)
	switch {
	case et == String:
		if n > h.left()/8 {
			return nil, fmt.Errorf("array %s claims %d strings, more than the file can hold", key, n)
		}
		var out []string
		if keep {
			out = make([]string, 0, n)
		}
		for j := uint64(0); j < n; j++ {
			what := fmt.Sprintf("%s[%d]", key, j)
			if !keep {
				if err := h.skipStr(MaxString, what); err != nil {
					return nil, err
				}
				continue
			}
			s, err := h.str(MaxString, what)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		if !keep {
			return nil, nil
		}
		return out, nil
	case et.scalarSize() > 0:
		es := et.scalarSize()
		if n > h.left()/es {
			return nil, fmt.Errorf("array %s claims %d elements, more than the file can hold", key, n)
		}
		if !keep {
			return nil, h.skip(n*es, "array "+key)
		}
		return scalars(h, et, int(n), "array "+key)
	default:
		return nil, fmt.Errorf("array %s has element type %d, which GGUF does not define (nested arrays are not supported)", key, et)
	}
}

// scalars reads n scalars of type et as a slice of their Go type.
func scalars(h *hreader, et ValueType, n int, what string) (any, error) {
	switch et {
	case Uint8:
		return readN(h, n, what, func(b []byte) uint8 { return b[0] }, 1)
	case Int8:
		return readN(h, n, what, func(b []byte) int8 { return int8(b[0]) }, 1)
	case Bool:
		return readN(h, n, what, func(b []byte) bool { return b[0] != 0 }, 1)
	case Uint16:
		return readN(h, n, what, binary.LittleEndian.Uint16, 2)
	case Int16:
		return readN(h, n, what, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) }, 2)
	case Uint32:
		return readN(h, n, what, binary.LittleEndian.Uint32, 4)
	case Int32:
		return readN(h, n, what, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) }, 4)
	case Float32:
		return readN(h, n, what, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }, 4)
	case Uint64:
		return readN(h, n, what, binary.LittleEndian.Uint64, 8)
	case Int64:
		return readN(h, n, what, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) }, 8)
	case Float64:
		return readN(h, n, what, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }, 8)
	}
	return nil, fmt.Errorf("%s: type %d is not a scalar", what, et)
}

func readN[T any](h *hreader, n int, what string, conv func([]byte) T, size int) ([]T, error) {
	out := make([]T, n)
	for i := range out {
		b, err := h.read(size, what)
		if err != nil {
			return nil, err
		}
		out[i] = conv(b)
	}
	return out, nil
}

// scalar reads one scalar of type t.
func (h *hreader) scalar(t ValueType, what string) (any, error) {
	v, err := scalars(h, t, 1, what)
	if err != nil {
		return nil, err
	}
	switch s := v.(type) {
	case []uint8:
		return s[0], nil
	case []int8:
		return s[0], nil
	case []bool:
		return s[0], nil
	case []uint16:
		return s[0], nil
	case []int16:
		return s[0], nil
	case []uint32:
		return s[0], nil
	case []int32:
		return s[0], nil
	case []float32:
		return s[0], nil
	case []uint64:
		return s[0], nil
	case []int64:
		return s[0], nil
	case []float64:
		return s[0], nil
	}
	return nil, fmt.Errorf("%s: type %d is not a scalar", what, t)
}

// tensor reads tensor info i.
func (h *hreader) tensor(i uint64, alignment uint64) (Tensor, error) {
	t := Tensor{InfoStart: h.off}
	var err error
	if t.Name, err = h.str(MaxName, fmt.Sprintf("the name of tensor %d", i)); err != nil {
		return t, err
	}
	name := t.Name
	dims, err := h.u32("the dimensions of " + name)
	if err != nil {
		return t, err
	}
	if dims > MaxDims {
		return t, fmt.Errorf("tensor %q has %d dimensions (at most %d)", name, dims, MaxDims)
	}
	t.Shape = make([]uint64, dims)
	elems := uint64(1)
	for d := range t.Shape {
		if t.Shape[d], err = h.u64("the shape of " + name); err != nil {
			return t, err
		}
		hi, lo := bits.Mul64(elems, t.Shape[d])
		if hi != 0 || lo > 1<<62 {
			return t, fmt.Errorf("tensor %q has an impossible shape %v", name, t.Shape[:d+1])
		}
		elems = lo
	}
	kind, err := h.u32("the type of " + name)
	if err != nil {
		return t, err
	}
	t.Type = TensorType(kind)
	if !t.Type.Known() {
		return t, fmt.Errorf("tensor %q has type %d, which this build does not know", name, kind)
	}
	bs, ts := t.Type.BlockSize(), t.Type.TypeSize()
	if dims > 0 && t.Shape[0]%bs != 0 {
		return t, fmt.Errorf("tensor %q: row length %d is not a multiple of its type's block size %d", name, t.Shape[0], bs)
	}
	if t.Offset, err = h.u64("the offset of " + name); err != nil {
		return t, err
	}
	if t.Offset%alignment != 0 {
		return t, fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", name, t.Offset, alignment)
	}
	t.Size = elems / bs * ts // elems <= 2^62, ts <= 300: no overflow
	t.InfoEnd = h.off
	return t, nil
}

// hreader reads a header and counts the bytes read.
type hreader struct {
	r    *bufio.Reader
	off  int64
	size int64
	buf  [8]byte
}

func (h *hreader) left() uint64 { return uint64(max(0, h.size-h.off)) }

func (h *hreader) read(n int, what string) ([]byte, error) {
	if _, err := io.ReadFull(h.r, h.buf[:n]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("the file ends inside the header (reading %s at byte %d): truncated or not a GGUF file", what, h.off)
		}
		return nil, err
	}
	h.off += int64(n)
	return h.buf[:n], nil
}

func (h *hreader) u32(what string) (uint32, error) {
	b, err := h.read(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (h *hreader) u64(what string) (uint64, error) {
	b, err := h.read(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (h *hreader) skip(n uint64, what string) error {
	if n > h.left() {
		return fmt.Errorf("%s (%d bytes at byte %d) runs past the end of the file (%d bytes)", what, n, h.off, h.size)
	}
	if _, err := h.r.Discard(int(n)); err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	h.off += int64(n)
	return nil
}

// strLen reads a string's length and checks it against limit and the file.
func (h *hreader) strLen(limit uint64, what string) (uint64, error) {
	n, err := h.u64(what + " length")
	if err != nil {
		return 0, err
	}
	if n > limit {
		return 0, fmt.Errorf("%s at byte %d claims %d bytes (the limit is %d)", what, h.off-8, n, limit)
	}
	if n > h.left() {
		return 0, fmt.Errorf("%s (%d bytes at byte %d) runs past the end of the file (%d bytes)", what, n, h.off, h.size)
	}
	return n, nil
}

// str reads a string of at most limit bytes.
func (h *hreader) str(limit uint64, what string) (string, error) {
	n, err := h.strLen(limit, what)
	if err != nil {
		return "", err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		return "", fmt.Errorf("reading %s: %w", what, err)
	}
	h.off += int64(n)
	return string(b), nil
}

// skipStr skips a string of at most limit bytes.
func (h *hreader) skipStr(limit uint64, what string) error {
	n, err := h.strLen(limit, what)
	if err != nil {
		return err
	}
	return h.skip(n, what)
}
