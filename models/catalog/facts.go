package catalog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"

	"github.com/ollama/ollama/fs/ggml"
)

// Facts are what a model's GGUF header says about it.
type Facts struct {
	Arch     string // general.architecture ("llama")
	Name     string // general.name
	FileType string // quantization: "Q4_0", "Q8_0", "F16", "F32"...
	CtxTrain int    // trained context length
	Layers   int    // block count
	Embd     int    // embedding width
	Heads    int    // attention heads (the most of any layer)
	HeadsKV  int    // key/value heads (the most of any layer)
	Vocab    int    // vocabulary size
	Params   uint64 // parameters (elements of every tensor)
}

// Header limits: a hostile header must not make ReadFacts allocate much
// more than the file's own size.
const (
	// maxArraySize is the longest metadata array fs/ggml keeps in memory;
	// longer ones (the vocabulary) are skipped, their length kept.
	maxArraySize = 1024
	// maxString is the longest metadata string accepted (chat templates
	// are a few KiB).
	maxString = 16 << 20
	// maxName is the longest key or tensor name accepted.
	maxName = 64 << 10
	// maxDims is GGML_MAX_DIMS.
	maxDims = 4
)

// GGUF metadata value types.
const (
	ggufUint8 uint32 = iota
	ggufInt8
	ggufUint16
	ggufInt16
	ggufUint32
	ggufInt32
	ggufFloat32
	ggufBool
	ggufString
	ggufArray
	ggufUint64
	ggufInt64
	ggufFloat64
)

// scalarSize is the byte size of each scalar metadata type.
var scalarSize = map[uint32]uint64{
	ggufUint8: 1, ggufInt8: 1, ggufUint16: 2, ggufInt16: 2, ggufUint32: 4, ggufInt32: 4,
	ggufFloat32: 4, ggufBool: 1, ggufUint64: 8, ggufInt64: 8, ggufFloat64: 8,
}

// ReadFacts reads the GGUF header of the file at path. It checks what
// llama.cpp would refuse before loading: the magic and version, every
// length in the header against the file, and that every tensor's data lies
// within the file (a truncated file is an error). It never panics; its
// errors say what is wrong in words.
func ReadFacts(path string) (Facts, error) {
	file, err := os.Open(path)
	if err != nil {
		return Facts{}, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return Facts{}, err
	}
	if !fi.Mode().IsRegular() {
		return Facts{}, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := safeFacts(file, fi.Size())
	if err != nil {
		return Facts{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// safeFacts is readFacts with any panic turned into an error.
func safeFacts(rs io.ReadSeeker, size int64) (f Facts, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = Facts{}, fmt.Errorf("malformed GGUF header (%v)", r)
		}
	}()
	return readFacts(rs, size)
}

// readFacts walks the header with bounds checks first (fs/ggml trusts the
// lengths it reads: a string length or a dimension count in a hostile
// header would allocate before reading), then decodes the metadata with
// fs/ggml.
func readFacts(rs io.ReadSeeker, size int64) (Facts, error) {
	h, err := walkHeader(rs, size)
	if err != nil {
		return Facts{}, err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return Facts{}, err
	}
	g, err := ggml.Decode(rs, maxArraySize)
	if err != nil {
		return Facts{}, fmt.Errorf("decode GGUF header: %w", err)
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
		return Facts{}, errors.New("no general.architecture in the header: not a model file")
	}
	f.Heads = maxUint(kv, "attention.head_count")
	f.HeadsKV = maxUint(kv, "attention.head_count_kv")
	if f.HeadsKV == 0 {
		f.HeadsKV = f.Heads
	}
	f.Vocab = int(kv.Uint("vocab_size"))
	if f.Vocab == 0 {
		f.Vocab = h.arrayLen["tokenizer.ggml.tokens"]
	}
	if f.Vocab == 0 && h.tokenEmbdRows > 0 {
		f.Vocab = h.tokenEmbdRows
	}
	if _, ok := kv["general.file_type"]; ok {
		if s := ggml.FileType(kv.Uint("general.file_type")).String(); s != "unknown" {
			f.FileType = s
		}
	}
	if f.FileType == "" {
		f.FileType = h.dominantType()
	}
	return f, nil
}

// maxUint is the largest value of a metadata key that holds a number or
// an array of numbers (per-layer head counts); 0 when absent.
func maxUint(kv ggml.KV, key string) int {
	vs := kv.UintOrArrayValueAsArray(key, 0)
	m := uint32(0)
	for _, v := range vs {
		m = max(m, v)
	}
	return int(m)
}

// header is what walkHeader learns.
type header struct {
	arrayLen      map[string]int    // metadata arrays' lengths
	typeBytes     map[uint32]uint64 // tensor data bytes per tensor type
	tokenEmbdRows int               // token_embd.weight's second dimension
}

// dominantType names the tensor type holding the most bytes.
func (h *header) dominantType() string {
	var best uint32
	var most uint64
	for t, n := range h.typeBytes {
		if n > most || (n == most && t < best) {
			best, most = t, n
		}
	}
	if most == 0 {
		return "unknown"
	}
	return ggml.TensorType(best).String()
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

// str reads a string of at most limit bytes; keep says whether to return
// it (names) or only skip it.
func (h *hreader) str(limit uint64, keep bool, what string) (string, error) {
	n, err := h.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > limit {
		return "", fmt.Errorf("%s at byte %d claims %d bytes (the limit is %d)", what, h.off-8, n, limit)
	}
	if n > h.left() {
		return "", fmt.Errorf("%s (%d bytes at byte %d) runs past the end of the file (%d bytes)", what, n, h.off, h.size)
	}
	if !keep {
		return "", h.skip(n, what)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		return "", fmt.Errorf("reading %s: %w", what, err)
	}
	h.off += int64(n)
	return string(b), nil
}

// walkHeader checks a GGUF header against the file's size without
// allocating more than the names it reads: magic, version, every metadata
// value's length, every tensor's dimensions, type and data range.
func walkHeader(r io.Reader, size int64) (*header, error) {
	h := &hreader{r: bufio.NewReaderSize(r, 64<<10), size: size}
	out := &header{arrayLen: map[string]int{}, typeBytes: map[uint32]uint64{}}
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
	alignment := uint64(32)
	for i := uint64(0); i < nKV; i++ {
		key, err := h.str(maxName, true, fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return nil, err
		}
		typ, err := h.u32("the type of " + key)
		if err != nil {
			return nil, err
		}
		switch {
		case typ == ggufString:
			if _, err := h.str(maxString, false, "the value of "+key); err != nil {
				return nil, err
			}
		case typ == ggufArray:
			et, err := h.u32("the element type of " + key)
			if err != nil {
				return nil, err
			}
			n, err := h.u64("the length of " + key)
			if err != nil {
				return nil, err
			}
			switch {
			case et == ggufString:
				if n > h.left()/8 {
					return nil, fmt.Errorf("array %s claims %d strings, more than the file can hold", key, n)
				}
				for j := uint64(0); j < n; j++ {
					if _, err := h.str(maxString, false, fmt.Sprintf("%s[%d]", key, j)); err != nil {
						return nil, err
					}
				}
			case scalarSize[et] > 0:
				if n > h.left()/scalarSize[et] {
					return nil, fmt.Errorf("array %s claims %d elements, more than the file can hold", key, n)
				}
				if err := h.skip(n*scalarSize[et], "array "+key); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("array %s has element type %d, which GGUF does not define (nested arrays are not supported)", key, et)
			}
			out.arrayLen[key] = int(n)
		case scalarSize[typ] > 0:
			if key == "general.alignment" && typ == ggufUint32 {
				v, err := h.u32(key)
				if err != nil {
					return nil, err
				}
				if v == 0 || v&(v-1) != 0 {
					return nil, fmt.Errorf("general.alignment %d is not a power of two", v)
				}
				alignment = uint64(v)
				continue
			}
			if err := h.skip(scalarSize[typ], "the value of "+key); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("metadata %s has type %d, which GGUF does not define", key, typ)
		}
	}

	type tensor struct {
		name   string
		kind   uint32
		offset uint64
		bytes  uint64
	}
	// Each tensor takes at least 24 header bytes: a count beyond that is a
	// lie, and checking it first bounds the slice below.
	if nTensors > h.left()/24 {
		return nil, fmt.Errorf("the header claims %d tensors, more than the file can hold", nTensors)
	}
	tensors := make([]tensor, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		name, err := h.str(maxName, true, fmt.Sprintf("the name of tensor %d", i))
		if err != nil {
			return nil, err
		}
		dims, err := h.u32("the dimensions of " + name)
		if err != nil {
			return nil, err
		}
		if dims > maxDims {
			return nil, fmt.Errorf("tensor %q has %d dimensions (at most %d)", name, dims, maxDims)
		}
		var shape [maxDims]uint64
		elems := uint64(1)
		for d := range dims {
			if shape[d], err = h.u64("the shape of " + name); err != nil {
				return nil, err
			}
			hi, lo := bits.Mul64(elems, shape[d])
			if hi != 0 || lo > 1<<62 {
				return nil, fmt.Errorf("tensor %q has an impossible shape %v", name, shape[:dims])
			}
			elems = lo
		}
		kind, err := h.u32("the type of " + name)
		if err != nil {
			return nil, err
		}
		tt := ggml.TensorType(kind)
		bs, ts := tt.BlockSize(), tt.TypeSize()
		if ts == 0 || kind == 4 || kind == 5 || (kind >= 31 && kind <= 33) || (kind >= 36 && kind <= 38) {
			return nil, fmt.Errorf("tensor %q has type %d, which this build does not know", name, kind)
		}
		if dims > 0 && shape[0]%bs != 0 {
			return nil, fmt.Errorf("tensor %q: row length %d is not a multiple of its type's block size %d", name, shape[0], bs)
		}
		offset, err := h.u64("the offset of " + name)
		if err != nil {
			return nil, err
		}
		if offset%alignment != 0 {
			return nil, fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", name, offset, alignment)
		}
		nbytes := elems / bs * ts // elems <= 2^62, ts <= 300: no overflow
		tensors = append(tensors, tensor{name: name, kind: kind, offset: offset, bytes: nbytes})
		if name == "token_embd.weight" && dims >= 2 {
			out.tokenEmbdRows = int(shape[1])
		}
	}
	dataStart := (uint64(h.off) + alignment - 1) / alignment * alignment
	for _, t := range tensors {
		end, carry := bits.Add64(dataStart, t.offset, 0)
		end, carry2 := bits.Add64(end, t.bytes, 0)
		if carry != 0 || carry2 != 0 || end > uint64(size) {
			return nil, fmt.Errorf("tensor %q (%d bytes at offset %d) runs past the end of the file (%d bytes): the file is truncated or damaged",
				t.name, t.bytes, dataStart+t.offset, size)
		}
		out.typeBytes[t.kind] += t.bytes
	}
	return out, nil
}
