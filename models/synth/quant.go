package synth

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// ggmlType is a ggml tensor type id as GGUF stores it.
type ggmlType uint32

const (
	ggmlF32  ggmlType = 0
	ggmlF16  ggmlType = 1
	ggmlQ4_0 ggmlType = 2
	ggmlQ8_0 ggmlType = 8
)

// blockSize is the number of weights in one quantization block (QK4_0 and
// QK8_0 are both 32).
const blockSize = 32

// Bytes per block of 32 weights: an fp16 scale and the quants.
const (
	q8BlockBytes = 2 + 32 // block_q8_0: d, int8 qs[32]
	q4BlockBytes = 2 + 16 // block_q4_0: d, uint8 qs[16] (two 4-bit quants each)
)

// rowBytes is the size in bytes of n weights of type t (n a multiple of 32
// for the quantized types).
func rowBytes(t ggmlType, n int64) int64 {
	switch t {
	case ggmlF32:
		return 4 * n
	case ggmlF16:
		return 2 * n
	case ggmlQ8_0:
		return n / blockSize * q8BlockBytes
	case ggmlQ4_0:
		return n / blockSize * q4BlockBytes
	}
	panic("synth: unknown ggml type")
}

// f32ToF16 converts to IEEE 754 half precision, rounding to nearest even,
// as ggml's GGML_FP32_TO_FP16 does. Overflow gives infinity.
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	e := int((b >> 23) & 0xff)
	mant := b & 0x7fffff
	if e == 0xff { // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	exp := e - 127 + 15
	if exp >= 0x1f {
		return sign | 0x7c00
	}
	if exp <= 0 { // subnormal half (or zero)
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is still the right value
	}
	return sign | uint16(h)
}

// f16ToF32 converts an IEEE 754 half to float32 exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / 1024 / 16384 // mant * 2^-24
		if sign != 0 {
			return -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// encodeF32 writes x as little-endian float32.
func encodeF32(dst []byte, x []float32) {
	for i, v := range x {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

// encodeF16 writes x as little-endian fp16.
func encodeF16(dst []byte, x []float32) {
	for i, v := range x {
		binary.LittleEndian.PutUint16(dst[2*i:], f32ToF16(v))
	}
}

// quantizeQ8_0 is ggml's quantize_row_q8_0_ref: per block of 32, d =
// max|x|/127, q = round(x/d).
func quantizeQ8_0(dst []byte, x []float32) {
	for b := 0; b < len(x)/blockSize; b++ {
		xs := x[b*blockSize : (b+1)*blockSize]
		out := dst[b*q8BlockBytes : (b+1)*q8BlockBytes]
		var amax float32
		for _, v := range xs {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(out, f32ToF16(d))
		for j, v := range xs {
			out[2+j] = byte(int8(math.Round(float64(v * id))))
		}
	}
}

// quantizeQ4_0 is ggml's quantize_row_q4_0_ref: per block of 32, d =
// max/-8 where max is the value of largest magnitude, q = min(15,
// trunc(x/d+8.5)); byte j holds element j in its low nibble and element
// j+16 in its high nibble.
func quantizeQ4_0(dst []byte, x []float32) {
	for b := 0; b < len(x)/blockSize; b++ {
		xs := x[b*blockSize : (b+1)*blockSize]
		out := dst[b*q4BlockBytes : (b+1)*q4BlockBytes]
		var amax, mx float32
		for _, v := range xs {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, mx = a, v
			}
		}
		d := mx / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(out, f32ToF16(d))
		for j := range blockSize / 2 {
			x0 := xs[j] * id
			x1 := xs[j+blockSize/2] * id
			q0 := min(15, int8(x0+8.5))
			q1 := min(15, int8(x1+8.5))
			out[2+j] = byte(q0) | byte(q1)<<4
		}
	}
}

// encode writes the float values x in type t (len(x) a multiple of 32 for
// the quantized types).
func encode(t ggmlType, dst []byte, x []float32) {
	switch t {
	case ggmlF32:
		encodeF32(dst, x)
	case ggmlF16:
		encodeF16(dst, x)
	case ggmlQ8_0:
		quantizeQ8_0(dst, x)
	case ggmlQ4_0:
		quantizeQ4_0(dst, x)
	default:
		panic("synth: unknown ggml type")
	}
}

// Dummy weights are uniform with standard deviation weightStd, generated
// directly in the target encoding from PCG output. Signs of block scales
// are random, so quantized weights have mean zero.
const weightStd = 0.02

var (
	// f16Table maps a random byte k to (k-127.5)/127.5 * a, a uniform
	// distribution on [-a, a] with standard deviation weightStd.
	f16Table [256]uint16
	// q8Scale is d for random int8 quants in [-127, 127] (standard
	// deviation about 73.5): weights then have standard deviation weightStd.
	q8Scale = [2]uint16{f32ToF16(weightStd / 73.5), f32ToF16(-weightStd / 73.5)}
	// q4Scale is d for random nibbles 0..15 (values -8..7, standard
	// deviation sqrt(255/12) = 4.61).
	q4Scale = [2]uint16{f32ToF16(weightStd / 4.61), f32ToF16(-weightStd / 4.61)}
)

func init() {
	a := weightStd * math.Sqrt(3)
	for k := range f16Table {
		f16Table[k] = f32ToF16(float32((float64(k) - 127.5) / 127.5 * a))
	}
}

// randomF16 fills dst (2 bytes per weight) with random fp16 weights.
func randomF16(dst []byte, r *rand.PCG) {
	n := len(dst) / 2
	i := 0
	for ; i+8 <= n; i += 8 {
		u := r.Uint64()
		d := dst[2*i : 2*i+16]
		binary.LittleEndian.PutUint64(d, uint64(f16Table[byte(u)])|uint64(f16Table[byte(u>>8)])<<16|
			uint64(f16Table[byte(u>>16)])<<32|uint64(f16Table[byte(u>>24)])<<48)
		binary.LittleEndian.PutUint64(d[8:], uint64(f16Table[byte(u>>32)])|uint64(f16Table[byte(u>>40)])<<16|
			uint64(f16Table[byte(u>>48)])<<32|uint64(f16Table[byte(u>>56)])<<48)
	}
	if i < n {
		u := r.Uint64()
		for ; i < n; i++ {
			binary.LittleEndian.PutUint16(dst[2*i:], f16Table[byte(u)])
			u >>= 8
		}
	}
}

// no80 replaces every byte 0x80 (int8 -128, which ggml's quantizer never
// produces) of x by 0x81 (-127).
func no80(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	m := x ^ hi // bytes that were 0x80 are now 0x00
	// Flags every zero byte of m, and possibly a 0x01 byte above one (x was
	// 0x81 there: setting bit 0 changes nothing).
	z := (m - lo) & ^m & hi
	return x | z>>7
}

// randomQ8_0 fills dst (whole blocks) with random Q8_0 blocks.
func randomQ8_0(dst []byte, r *rand.PCG) {
	var signs uint64
	for b := 0; b < len(dst)/q8BlockBytes; b++ {
		if b%64 == 0 {
			signs = r.Uint64()
		}
		out := dst[b*q8BlockBytes : (b+1)*q8BlockBytes]
		binary.LittleEndian.PutUint16(out, q8Scale[signs&1])
		signs >>= 1
		binary.LittleEndian.PutUint64(out[2:], no80(r.Uint64()))
		binary.LittleEndian.PutUint64(out[10:], no80(r.Uint64()))
		binary.LittleEndian.PutUint64(out[18:], no80(r.Uint64()))
		binary.LittleEndian.PutUint64(out[26:], no80(r.Uint64()))
	}
}

// randomQ4_0 fills dst (whole blocks) with random Q4_0 blocks.
func randomQ4_0(dst []byte, r *rand.PCG) {
	var signs uint64
	for b := 0; b < len(dst)/q4BlockBytes; b++ {
		if b%64 == 0 {
			signs = r.Uint64()
		}
		out := dst[b*q4BlockBytes : (b+1)*q4BlockBytes]
		binary.LittleEndian.PutUint16(out, q4Scale[signs&1])
		signs >>= 1
		binary.LittleEndian.PutUint64(out[2:], r.Uint64())
		binary.LittleEndian.PutUint64(out[10:], r.Uint64())
	}
}

// randomFill fills dst with random weights of type t.
func randomFill(t ggmlType, dst []byte, r *rand.PCG) {
	switch t {
	case ggmlF32: // the small tables llama.cpp adds to activations (bert.go)
		for i := 0; i+4 <= len(dst); i += 4 {
			binary.LittleEndian.PutUint32(dst[i:], math.Float32bits(uniform(r)))
		}
	case ggmlF16:
		randomF16(dst, r)
	case ggmlQ8_0:
		randomQ8_0(dst, r)
	case ggmlQ4_0:
		randomQ4_0(dst, r)
	default:
		panic("synth: no random fill for this type")
	}
}

// uniform returns a random float32 uniform on [-a, a) with standard
// deviation weightStd.
func uniform(r *rand.PCG) float32 {
	const a = weightStd * 1.7320508075688772
	return float32((float64(r.Uint64()>>11)/(1<<53)*2 - 1) * a)
}
