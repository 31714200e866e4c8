package catalog

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/asi1d/asi1d/models/gguf"
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
func safeFacts(r io.Reader, size int64) (f Facts, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = Facts{}, fmt.Errorf("malformed GGUF header (%v)", r)
		}
	}()
	return readFacts(r, size)
}

// readFacts reads the header with the one GGUF reader (models/gguf) and
// takes the facts from it: the architecture's keys (<arch>.context_length,
// <arch>.block_count...) as uint32, as llama.cpp writes them, and the
// fallbacks below where a key is missing.
func readFacts(r io.Reader, size int64) (Facts, error) {
	g, err := gguf.Read(r, size, gguf.Options{})
	if err != nil {
		return Facts{}, err
	}
	f := Facts{
		Arch:   g.String("general.architecture"),
		Name:   g.String("general.name"),
		Params: g.Params(),
	}
	if f.Arch == "" {
		return Facts{}, errors.New("no general.architecture in the header: not a model file")
	}
	archUint := func(key string) int {
		v, _ := g.Uint32(f.Arch + "." + key)
		return int(v)
	}
	f.CtxTrain = archUint("context_length")
	f.Layers = archUint("block_count")
	f.Embd = archUint("embedding_length")
	// Head counts may be per layer (an array): the most of any layer.
	f.Heads = maxOf(g.Uint32s(f.Arch + ".attention.head_count"))
	f.HeadsKV = maxOf(g.Uint32s(f.Arch + ".attention.head_count_kv"))
	if f.HeadsKV == 0 {
		f.HeadsKV = f.Heads
	}
	f.Vocab = archUint("vocab_size")
	if f.Vocab == 0 {
		f.Vocab = g.ArrayLen("tokenizer.ggml.tokens")
	}
	if f.Vocab == 0 {
		for _, t := range g.Tensors {
			if t.Name == "token_embd.weight" && len(t.Shape) >= 2 {
				f.Vocab = int(t.Shape[1])
			}
		}
	}
	if _, ok := g.KV("general.file_type"); ok {
		// A file type stored as another type than uint32 reads as 0 (F32),
		// as fs/ggml read it.
		ft, _ := g.Uint32("general.file_type")
		if s := gguf.FileType(ft).String(); s != "unknown" {
			f.FileType = s
		}
	}
	if f.FileType == "" {
		f.FileType = dominantType(g.Tensors)
	}
	return f, nil
}

// maxOf is the largest of vs; 0 for none.
func maxOf(vs []uint32) int {
	m := uint32(0)
	for _, v := range vs {
		m = max(m, v)
	}
	return int(m)
}

// dominantType names the tensor type holding the most bytes.
func dominantType(ts []gguf.Tensor) string {
	bytesOf := map[gguf.TensorType]uint64{}
	for _, t := range ts {
		bytesOf[t.Type] += t.Size
	}
	var best gguf.TensorType
	var most uint64
	for t, n := range bytesOf {
		if n > most || (n == most && t < best) {
			best, most = t, n
		}
	}
	if most == 0 {
		return "unknown"
	}
	return best.String()
}
