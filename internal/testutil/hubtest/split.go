package hubtest

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// scalar sizes of GGUF value types 0..12 (8 string and 9 array: 0).
var scalarSize = []int{1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8}

func parseGGUF(d []byte) (*ggufFile, error) {
	errShort := errors.New("not a GGUF file or truncated")
	pos := 0
	need := func(n int) bool { return n >= 0 && pos+n <= len(d) }
	u32 := func() uint32 { v := binary.LittleEndian.Uint32(d[pos:]); pos += 4; return v }
	u64 := func() uint64 { v := binary.LittleEndian.Uint64(d[pos:]); pos += 8; return v }
	if !need(24) || string(d[:4]) != "GGUF" {
		return nil, errShort
	}
	pos = 4
	g := &ggufFile{version: u32(), align: 32}
	nt, nkv := u64(), u64()
	g.nkv = nkv
	str := func() (string, bool) {
		if !need(8) {
			return "", false
		}
		n := int(u64())
		if !need(n) {
			return "", false
		}
		s := string(d[pos : pos+n])
		pos += n
		return s, true
	}
	var skip func(typ uint32) bool
	skip = func(typ uint32) bool {
		switch {
		case typ == 8:
			_, ok := str()
			return ok
		case typ == 9:
			if !need(12) {
				return false
			}
			et, n := u32(), u64()
			for range n {
				if !skip(et) {
					return false
				}
			}
			return true
		case int(typ) < len(scalarSize):
			if !need(scalarSize[typ]) {
				return false
			}
			pos += scalarSize[typ]
			return true
		}
		return false
	}
	kvStart := pos
	for range nkv {
		start := pos
		key, ok := str()
		if !ok || !need(4) {
			return nil, errShort
		}
		typ := u32()
		if key == "general.alignment" && typ == 4 && need(4) {
			g.align = int(binary.LittleEndian.Uint32(d[pos:]))
		}
		if !skip(typ) {
			return nil, errShort
		}
		if key == "general.alignment" {
			g.alignKV = d[start:pos]
		}
	}
	g.kvs = d[kvStart:pos]
	for range nt {
		start := pos
		if _, ok := str(); !ok || !need(4) {
			return nil, errShort
		}
		dims := int(u32())
		if !need(8*dims + 12) {
			return nil, errShort
		}
		pos += 8*dims + 4
		info := d[start:pos]
		g.tensors = append(g.tensors, ggufTensor{info: info, off: u64()})
	}
	dataStart := (pos + g.align - 1) / g.align * g.align
	for i := range g.tensors {
		end := uint64(len(d) - dataStart)
		if i+1 < len(g.tensors) {
			end = g.tensors[i+1].off
		}
		if end < g.tensors[i].off || uint64(dataStart)+end > uint64(len(d)) {
			return nil, errors.New("tensors are not stored in the order of their infos")
		}
		g.tensors[i].data = d[uint64(dataStart)+g.tensors[i].off : uint64(dataStart)+end]
	}
	return g, nil
}
