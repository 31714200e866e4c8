package hubtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/asi1d/asi1d/models/gguf"
)

// SplitGGUF splits a GGUF file (version 2 or 3) into n parts as llama.cpp's
// gguf-split does: the first part holds every metadata key and the first
// tensors, the others only the split keys (split.no, split.count,
// split.tensors.count) and their tensors; each part is a GGUF file of its
// own. Name them PREFIX-00001-of-0000N.gguf ... for llama.cpp to load them
// as one model.
func SplitGGUF(data []byte, n int) ([][]byte, error) {
	g, err := parseGGUF(data)
	if err != nil {
		return nil, err
	}
	if n < 2 || n > len(g.tensors) {
		return nil, fmt.Errorf("cannot split %d tensors into %d parts", len(g.tensors), n)
	}
	parts := make([][]byte, n)
	per := (len(g.tensors) + n - 1) / n
	for i := range n {
		lo, hi := i*per, min((i+1)*per, len(g.tensors))
		if lo >= hi {
			return nil, fmt.Errorf("cannot split %d tensors into %d parts", len(g.tensors), n)
		}
		var b []byte
		b = append(b, "GGUF"...)
		b = binary.LittleEndian.AppendUint32(b, g.version)
		b = binary.LittleEndian.AppendUint64(b, uint64(hi-lo))
		nkv := uint64(3)
		if i == 0 {
			nkv += g.nkv
		} else if g.alignKV != nil {
			nkv++
		}
		b = binary.LittleEndian.AppendUint64(b, nkv)
		if i == 0 {
			b = append(b, g.kvs...)
		} else if g.alignKV != nil {
			b = append(b, g.alignKV...)
		}
		b = appendKV(b, "split.no", 2, binary.LittleEndian.AppendUint16(nil, uint16(i)))
		b = appendKV(b, "split.count", 2, binary.LittleEndian.AppendUint16(nil, uint16(n)))
		b = appendKV(b, "split.tensors.count", 5, binary.LittleEndian.AppendUint32(nil, uint32(len(g.tensors))))
		off := uint64(0)
		for _, t := range g.tensors[lo:hi] {
			b = append(b, t.info...)
			b = binary.LittleEndian.AppendUint64(b, off)
			off += uint64(len(t.data))
		}
		for len(b)%g.align != 0 {
			b = append(b, 0)
		}
		for _, t := range g.tensors[lo:hi] {
			b = append(b, t.data...)
		}
		parts[i] = b
	}
	return parts, nil
}

func appendKV(b []byte, key string, typ uint32, val []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.LittleEndian.AppendUint32(b, typ)
	return append(b, val...)
}

type ggufTensor struct {
	info []byte // name, dims, type: the tensor info without its offset
	off  uint64
	data []byte // its bytes up to the next tensor's (padding included)
}

type ggufFile struct {
	version uint32
	nkv     uint64
	kvs     []byte // every key-value pair, as in the file
	alignKV []byte // general.alignment's pair, when the file has one
	align   int
	tensors []ggufTensor
}

// parseGGUF reads the file with the one GGUF reader (models/gguf) and
// keeps the bytes SplitGGUF copies: the metadata entries, the tensor
// infos without their offsets, and each tensor's data.
func parseGGUF(d []byte) (*ggufFile, error) {
	f, err := gguf.Read(bytes.NewReader(d), int64(len(d)), gguf.Options{})
	if err != nil {
		return nil, err
	}
	g := &ggufFile{version: f.Version, nkv: uint64(len(f.KVs)), align: int(f.Alignment)}
	if len(f.KVs) > 0 {
		g.kvs = d[f.KVs[0].Start:f.KVs[len(f.KVs)-1].End]
	}
	if kv, ok := f.KV("general.alignment"); ok {
		g.alignKV = d[kv.Start:kv.End]
	}
	for _, t := range f.Tensors {
		g.tensors = append(g.tensors, ggufTensor{info: d[t.InfoStart : t.InfoEnd-8], off: t.Offset})
	}
	dataStart := uint64(f.DataStart)
	for i := range g.tensors {
		end := uint64(len(d)) - dataStart
		if i+1 < len(g.tensors) {
			end = g.tensors[i+1].off
		}
		if end < g.tensors[i].off {
			return nil, errors.New("tensors are not stored in the order of their infos")
		}
		g.tensors[i].data = d[dataStart+g.tensors[i].off : dataStart+end]
	}
	return g, nil
}
