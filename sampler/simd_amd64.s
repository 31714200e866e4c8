//go:build amd64 && !purego

#include "textflag.h"

// AVX2 kernels for kernels.go. Each works on n elements, n a positive
// multiple of 8 (maxAVX2: of 32, the exp kernels: of 16); the Go wrappers
// handle the rest.

// func maxAVX2(x *float32, n int) float32
// The largest non-NaN value (-Inf if none). VMAXPS returns its second
// source operand (Go: the first) when either is NaN, so the accumulator is
// kept there.
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0xff800000, AX
	MOVL AX, X0
	VBROADCASTSS X0, Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3
loop:
	VMOVUPS 0(SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VMAXPS Y0, Y4, Y0
	VMAXPS Y1, Y5, Y1
	VMAXPS Y2, Y6, Y2
	VMAXPS Y3, Y7, Y3
	ADDQ $128, SI
	SUBQ $32, CX
	JNZ loop
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VMAXPS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+16(FP)
	RET

// func indexGTAVX2(x *float32, n int, v float32) int
// The first i with x[i] > v (ordered: NaN never), or n. Go's operand order
// is Intel's reversed: VCMPPS $LT_OQ, x, v, dst is dst = v < x.
TEXT ·indexGTAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS v+16(FP), Y8
	XORQ DX, DX
	MOVQ CX, BX
	ANDQ $~31, BX
	JZ tail8
loop32:
	VCMPPS $0x11, 0(SI)(DX*4), Y8, Y0
	VCMPPS $0x11, 32(SI)(DX*4), Y8, Y1
	VCMPPS $0x11, 64(SI)(DX*4), Y8, Y2
	VCMPPS $0x11, 96(SI)(DX*4), Y8, Y3
	VORPS Y0, Y1, Y4
	VORPS Y2, Y3, Y5
	VORPS Y4, Y5, Y4
	VMOVMSKPS Y4, AX
	TESTL AX, AX
	JNZ found32
	ADDQ $32, DX
	CMPQ DX, BX
	JLT loop32
tail8:
	CMPQ DX, CX
	JGE none
	VCMPPS $0x11, 0(SI)(DX*4), Y8, Y0
	VMOVMSKPS Y0, AX
	TESTL AX, AX
	JNZ found
	ADDQ $8, DX
	JMP tail8
found32:
	VMOVMSKPS Y0, AX
	TESTL AX, AX
	JNZ found
	ADDQ $8, DX
	VMOVMSKPS Y1, AX
	TESTL AX, AX
	JNZ found
	ADDQ $8, DX
	VMOVMSKPS Y2, AX
	TESTL AX, AX
	JNZ found
	ADDQ $8, DX
	VMOVMSKPS Y3, AX
found:
	BSFL AX, AX
	ADDQ AX, DX
	VZEROUPPER
	MOVQ DX, ret+24(FP)
	RET
none:
	VZEROUPPER
	MOVQ CX, ret+24(FP)
	RET

// Offsets of the pre-broadcast constants in expConsts (8 float32 each).
#define C_M 0
#define C_INVT 32
#define C_LO 64
#define C_EXPLO 96
#define C_LOG2E 128
#define C_LN2 160
#define C_P5 192
#define C_P4 224
#define C_P3 256
#define C_P2 288
#define C_P1 320
#define C_P0 352

// func expAVX2(dst, src *float32, n int, c *expConsts) (sumLo, sumAll float64)
// func expBothAVX2: the same signature.
// dst[i] = e_i masked to x_i >= lo, where x_i = (src[i]-m)*invT and
// e_i = 2^k * P(x_i - k*ln2), k = round(x_i*log2e), P a degree 5
// polynomial for exp on [-ln2/2, ln2/2] (Taylor to degree 7, economized by
// Chebyshev: 2.3e-7 relative in float32), evaluated with fused
// multiply-adds; the reduction uses the exact product k*ln2 with ln2
// rounded to float32 (2.4e-7 more at x = expLo, less near 0), and 2^k is
// applied by adding k to the exponent field (exact except for weights
// below e^-86.9, which may be off by up to 2x). sumLo sums dst. expBothAVX2 also
// returns sumAll, the sum of e_i masked to x_i >= expLo (expAVX2: 0). n is
// a multiple of 16; tokens i and i+8 of each group of 16 are added in
// float32, then summed in 8 float64 lanes reduced as
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
TEXT ·expAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ c+24(FP), BX
	VXORPD Y12, Y12, Y12
	VXORPD Y13, Y13, Y13
	VXORPD Y14, Y14, Y14
	VXORPD Y15, Y15, Y15
loop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y6
	VSUBPS C_M(BX), Y0, Y0
	VSUBPS C_M(BX), Y6, Y6
	VMULPS C_INVT(BX), Y0, Y0
	VMULPS C_INVT(BX), Y6, Y6
	VMULPS C_LOG2E(BX), Y0, Y1
	VMULPS C_LOG2E(BX), Y6, Y7
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y7, Y7
	VCVTDQ2PS Y1, Y2
	VCVTDQ2PS Y7, Y8
	VMOVAPS Y0, Y3
	VMOVAPS Y6, Y9
	VFNMADD231PS C_LN2(BX), Y2, Y3
	VFNMADD231PS C_LN2(BX), Y8, Y9
	VMOVUPS C_P5(BX), Y4
	VMOVUPS C_P5(BX), Y10
	VFMADD213PS C_P4(BX), Y3, Y4
	VFMADD213PS C_P4(BX), Y9, Y10
	VFMADD213PS C_P3(BX), Y3, Y4
	VFMADD213PS C_P3(BX), Y9, Y10
	VFMADD213PS C_P2(BX), Y3, Y4
	VFMADD213PS C_P2(BX), Y9, Y10
	VFMADD213PS C_P1(BX), Y3, Y4
	VFMADD213PS C_P1(BX), Y9, Y10
	VFMADD213PS C_P0(BX), Y3, Y4
	VFMADD213PS C_P0(BX), Y9, Y10
	VPSLLD $23, Y1, Y1
	VPSLLD $23, Y7, Y7
	VPADDD Y1, Y4, Y4
	VPADDD Y7, Y10, Y10
	VCMPPS $0x1D, C_LO(BX), Y0, Y5
	VCMPPS $0x1D, C_LO(BX), Y6, Y11
	VANDPS Y5, Y4, Y4
	VANDPS Y11, Y10, Y10
	VMOVUPS Y4, 0(DI)
	VMOVUPS Y10, 32(DI)
	VADDPS Y10, Y4, Y4
	VCVTPS2PD X4, Y1
	VEXTRACTF128 $1, Y4, X2
	VCVTPS2PD X2, Y2
	VADDPD Y1, Y12, Y12
	VADDPD Y2, Y13, Y13
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JNZ loop
	VADDPD Y13, Y12, Y12
	VEXTRACTF128 $1, Y12, X13
	VADDPD X13, X12, X12
	VPERMILPD $1, X12, X13
	VADDSD X13, X12, X12
	VADDPD Y15, Y14, Y14
	VEXTRACTF128 $1, Y14, X15
	VADDPD X15, X14, X14
	VPERMILPD $1, X14, X15
	VADDSD X15, X14, X14
	VZEROUPPER
	MOVSD X12, sumLo+32(FP)
	MOVSD X14, sumAll+40(FP)
	RET


TEXT ·expBothAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ c+24(FP), BX
	VXORPD Y12, Y12, Y12
	VXORPD Y13, Y13, Y13
	VXORPD Y14, Y14, Y14
	VXORPD Y15, Y15, Y15
loop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y6
	VSUBPS C_M(BX), Y0, Y0
	VSUBPS C_M(BX), Y6, Y6
	VMULPS C_INVT(BX), Y0, Y0
	VMULPS C_INVT(BX), Y6, Y6
	VMULPS C_LOG2E(BX), Y0, Y1
	VMULPS C_LOG2E(BX), Y6, Y7
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y7, Y7
	VCVTDQ2PS Y1, Y2
	VCVTDQ2PS Y7, Y8
	VMOVAPS Y0, Y3
	VMOVAPS Y6, Y9
	VFNMADD231PS C_LN2(BX), Y2, Y3
	VFNMADD231PS C_LN2(BX), Y8, Y9
	VMOVUPS C_P5(BX), Y4
	VMOVUPS C_P5(BX), Y10
	VFMADD213PS C_P4(BX), Y3, Y4
	VFMADD213PS C_P4(BX), Y9, Y10
	VFMADD213PS C_P3(BX), Y3, Y4
	VFMADD213PS C_P3(BX), Y9, Y10
	VFMADD213PS C_P2(BX), Y3, Y4
	VFMADD213PS C_P2(BX), Y9, Y10
	VFMADD213PS C_P1(BX), Y3, Y4
	VFMADD213PS C_P1(BX), Y9, Y10
	VFMADD213PS C_P0(BX), Y3, Y4
	VFMADD213PS C_P0(BX), Y9, Y10
	VPSLLD $23, Y1, Y1
	VPSLLD $23, Y7, Y7
	VPADDD Y1, Y4, Y4
	VPADDD Y7, Y10, Y10
	VCMPPS $0x1D, C_EXPLO(BX), Y0, Y5
	VCMPPS $0x1D, C_EXPLO(BX), Y6, Y11
	VANDPS Y5, Y4, Y3
	VANDPS Y11, Y10, Y9
	VCMPPS $0x1D, C_LO(BX), Y0, Y5
	VCMPPS $0x1D, C_LO(BX), Y6, Y11
	VANDPS Y5, Y4, Y4
	VANDPS Y11, Y10, Y10
	VMOVUPS Y4, 0(DI)
	VMOVUPS Y10, 32(DI)
	VADDPS Y10, Y4, Y4
	VCVTPS2PD X4, Y1
	VEXTRACTF128 $1, Y4, X2
	VCVTPS2PD X2, Y2
	VADDPD Y1, Y12, Y12
	VADDPD Y2, Y13, Y13
	VADDPS Y9, Y3, Y3
	VCVTPS2PD X3, Y7
	VEXTRACTF128 $1, Y3, X8
	VCVTPS2PD X8, Y8
	VADDPD Y7, Y14, Y14
	VADDPD Y8, Y15, Y15
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JNZ loop
	VADDPD Y13, Y12, Y12
	VEXTRACTF128 $1, Y12, X13
	VADDPD X13, X12, X12
	VPERMILPD $1, X12, X13
	VADDSD X13, X12, X12
	VADDPD Y15, Y14, Y14
	VEXTRACTF128 $1, Y14, X15
	VADDPD X15, X14, X14
	VPERMILPD $1, X14, X15
	VADDSD X15, X14, X14
	VZEROUPPER
	MOVSD X12, sumLo+32(FP)
	MOVSD X14, sumAll+40(FP)
	RET


// func massAVX2(l, w *float32, n int, c float32) (above float64, eq int)
// above: the sum of w[i] over l[i] > c; eq: the number of l[i] == c. Each
// run of up to 256 tokens is summed in 8 float32 lanes (lane j: i%8 == j,
// at most 32 terms each), then added to 8 float64 lanes, reduced as in
// expAVX2.
TEXT ·massAVX2(SB), NOSPLIT, $0-48
	MOVQ l+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS c+24(FP), Y15
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	VPXOR Y12, Y12, Y12
outer:
	MOVQ CX, DX
	CMPQ DX, $256
	JLE chunk
	MOVQ $256, DX
chunk:
	SUBQ DX, CX
	VXORPS Y6, Y6, Y6
loop:
	VMOVUPS 0(SI), Y0
	VCMPPS $0x1E, Y15, Y0, Y1 // l > c
	VCMPPS $0x00, Y15, Y0, Y2 // l == c
	VANDPS 0(DI), Y1, Y3
	VADDPS Y3, Y6, Y6
	VPSUBD Y2, Y12, Y12
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, DX
	JNZ loop
	VCVTPS2PD X6, Y4
	VEXTRACTF128 $1, Y6, X5
	VCVTPS2PD X5, Y5
	VADDPD Y4, Y10, Y10
	VADDPD Y5, Y11, Y11
	TESTQ CX, CX
	JNZ outer
	VADDPD Y11, Y10, Y10
	VEXTRACTF128 $1, Y10, X11
	VADDPD X11, X10, X10
	VPERMILPD $1, X10, X11
	VADDSD X11, X10, X10
	VEXTRACTI128 $1, Y12, X13
	VPADDD X13, X12, X12
	VPSHUFD $0x4E, X12, X13
	VPADDD X13, X12, X12
	VPSHUFD $0xB1, X12, X13
	VPADDD X13, X12, X12
	VMOVD X12, AX
	VZEROUPPER
	MOVSD X10, above+32(FP)
	MOVQ AX, eq+40(FP)
	RET

// func collectGTAVX2(x *float32, n int, v float32, out *int32) int
// Writes the indices i with x[i] > v (ordered) to out, ascending, and
// returns their number.
TEXT ·collectGTAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS v+16(FP), Y8
	MOVQ out+24(FP), DI
	XORQ DX, DX // i
	XORQ R8, R8 // count
loop:
	VCMPPS $0x11, 0(SI)(DX*4), Y8, Y0
	VMOVMSKPS Y0, AX
	TESTL AX, AX
	JZ next
bits:
	BSFL AX, R9
	ADDQ DX, R9
	MOVL R9, 0(DI)(R8*4)
	INCQ R8
	LEAL -1(AX), R10
	ANDL R10, AX
	JNZ bits
next:
	ADDQ $8, DX
	CMPQ DX, CX
	JLT loop
	VZEROUPPER
	MOVQ R8, ret+32(FP)
	RET

// func expMaxAVX2(dst, src *float32, n int, c *expConsts) (sum float64, bm float32)
// expAVX2 relative to the block's own maximum bm (the largest non-NaN
// src[i], -Inf if none), which it finds first: dst[i] = exp((src[i]-bm)*invT)
// masked to x >= lo; sum as in expAVX2. With bm = -Inf dst and sum are
// garbage (the caller clears them). n is a multiple of 16.
TEXT ·expMaxAVX2(SB), NOSPLIT, $0-44
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ c+24(FP), BX
	MOVL $0xff800000, AX
	MOVL AX, X14
	VBROADCASTSS X14, Y14
	VMOVAPS Y14, Y15
	MOVQ SI, DX
	MOVQ CX, R8
mloop:
	VMOVUPS 0(DX), Y0
	VMOVUPS 32(DX), Y1
	VMAXPS Y14, Y0, Y14
	VMAXPS Y15, Y1, Y15
	ADDQ $64, DX
	SUBQ $16, R8
	JNZ mloop
	VMAXPS Y15, Y14, Y14
	VEXTRACTF128 $1, Y14, X15
	VMAXPS X15, X14, X14
	VPERMILPS $0x4E, X14, X15
	VMAXPS X15, X14, X14
	VPERMILPS $0xB1, X14, X15
	VMAXPS X15, X14, X14
	MOVSS X14, bm+40(FP)
	VBROADCASTSS X14, Y14
	VXORPD Y12, Y12, Y12
	VXORPD Y13, Y13, Y13
eloop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y6
	VSUBPS Y14, Y0, Y0
	VSUBPS Y14, Y6, Y6
	VMULPS C_INVT(BX), Y0, Y0
	VMULPS C_INVT(BX), Y6, Y6
	VMULPS C_LOG2E(BX), Y0, Y1
	VMULPS C_LOG2E(BX), Y6, Y7
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y7, Y7
	VCVTDQ2PS Y1, Y2
	VCVTDQ2PS Y7, Y8
	VMOVAPS Y0, Y3
	VMOVAPS Y6, Y9
	VFNMADD231PS C_LN2(BX), Y2, Y3
	VFNMADD231PS C_LN2(BX), Y8, Y9
	VMOVUPS C_P5(BX), Y4
	VMOVUPS C_P5(BX), Y10
	VFMADD213PS C_P4(BX), Y3, Y4
	VFMADD213PS C_P4(BX), Y9, Y10
	VFMADD213PS C_P3(BX), Y3, Y4
	VFMADD213PS C_P3(BX), Y9, Y10
	VFMADD213PS C_P2(BX), Y3, Y4
	VFMADD213PS C_P2(BX), Y9, Y10
	VFMADD213PS C_P1(BX), Y3, Y4
	VFMADD213PS C_P1(BX), Y9, Y10
	VFMADD213PS C_P0(BX), Y3, Y4
	VFMADD213PS C_P0(BX), Y9, Y10
	VPSLLD $23, Y1, Y1
	VPSLLD $23, Y7, Y7
	VPADDD Y1, Y4, Y4
	VPADDD Y7, Y10, Y10
	VCMPPS $0x1D, C_LO(BX), Y0, Y5
	VCMPPS $0x1D, C_LO(BX), Y6, Y11
	VANDPS Y5, Y4, Y4
	VANDPS Y11, Y10, Y10
	VMOVUPS Y4, 0(DI)
	VMOVUPS Y10, 32(DI)
	VADDPS Y10, Y4, Y4
	VCVTPS2PD X4, Y1
	VEXTRACTF128 $1, Y4, X2
	VCVTPS2PD X2, Y2
	VADDPD Y1, Y12, Y12
	VADDPD Y2, Y13, Y13
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JNZ eloop
	VADDPD Y13, Y12, Y12
	VEXTRACTF128 $1, Y12, X13
	VADDPD X13, X12, X12
	VPERMILPD $1, X12, X13
	VADDSD X13, X12, X12
	VZEROUPPER
	MOVSD X12, sum+32(FP)
	RET
