// A tiled flash-attention kernel for ggml's CPU backend (see ggmlfa.go).
//
// ggml's own CPU kernel (ggml_compute_forward_flash_attn_ext_f16_one_chunk
// in the pinned module) walks one query row at a time: for every row it
// reads every key and value of the prefix again, one f16 dot product and
// one f16 multiply-add per position. Over a prompt that is slow; for a
// decode step (a row or a few per sequence) it is the right shape, and it
// keeps those. This kernel takes a tile of query rows of one head and a tile
// of keys at a time: the keys and values of a tile are converted to f32
// once and used by every row of the query tile, the scores and the weighted
// values are accumulated in registers (AVX-512 or AVX2 with F16C; plain
// loops the compiler vectorizes elsewhere), and the softmax's exponentials
// come from ggml's vectorized ggml_vec_soft_max_f32. Tiles the mask hides
// from every row (the future of a causal prompt) are skipped, and rows the
// mask hides a tile from (another sequence's) skip that tile.
//
// It takes what asi1d's contexts produce (f32 queries, f16 keys and values,
// an f16 mask or none; no ALiBi, no logit soft-capping, no attention sinks;
// head sizes up to 256) for batches of at least FA_MINROWS query rows, and
// leaves anything else to ggml's kernel.
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "ggml-cpu.h"
#include "ggml-cpu-impl.h"
#include "vec.h"

#include "ggmlfa.h"

enum {
    FA_TQ = 32,     // query rows per tile
    FA_TK = 64,     // keys per tile
    FA_MAXD = 256,  // largest head size taken
    FA_MINROWS = 32, // fewer query rows (decode steps) go to ggml's kernel
};

#if defined(__AVX512F__) && defined(__F16C__)
#include <immintrin.h>
#define FA_AVX512 1
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>
#define FA_AVX2 1
#endif

// fa_scores adds q . K^T to s[0..nk) and returns the largest score: KT is
// the key tile transposed ([DK][FA_TK]). The tile's scores stay in
// registers over the d loop.
static inline float fa_scores(float * restrict s, const float * restrict q, const float * restrict KT, int64_t DK, int64_t nk) {
#if defined(FA_AVX512)
    if (nk == FA_TK) {
        __m512 a0 = _mm512_loadu_ps(s), a1 = _mm512_loadu_ps(s + 16), a2 = _mm512_loadu_ps(s + 32), a3 = _mm512_loadu_ps(s + 48);
        for (int64_t d = 0; d < DK; d++) {
            const __m512 qd = _mm512_set1_ps(q[d]);
            const float * kt = KT + d*FA_TK;
            a0 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(kt), a0);
            a1 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(kt + 16), a1);
            a2 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(kt + 32), a2);
            a3 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(kt + 48), a3);
        }
        _mm512_storeu_ps(s, a0); _mm512_storeu_ps(s + 16, a1); _mm512_storeu_ps(s + 32, a2); _mm512_storeu_ps(s + 48, a3);
        return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(a2, a3)));
    }
#elif defined(FA_AVX2)
    if (nk == FA_TK) {
        for (int64_t c0 = 0; c0 < FA_TK; c0 += 32) {
            __m256 a0 = _mm256_loadu_ps(s + c0), a1 = _mm256_loadu_ps(s + c0 + 8), a2 = _mm256_loadu_ps(s + c0 + 16), a3 = _mm256_loadu_ps(s + c0 + 24);
            for (int64_t d = 0; d < DK; d++) {
                const __m256 qd = _mm256_set1_ps(q[d]);
                const float * kt = KT + d*FA_TK + c0;
                a0 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kt), a0);
                a1 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kt + 8), a1);
                a2 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kt + 16), a2);
                a3 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kt + 24), a3);
            }
            _mm256_storeu_ps(s + c0, a0); _mm256_storeu_ps(s + c0 + 8, a1); _mm256_storeu_ps(s + c0 + 16, a2); _mm256_storeu_ps(s + c0 + 24, a3);
        }
        float mx = -INFINITY;
        for (int64_t c = 0; c < FA_TK; c++) {
            mx = s[c] > mx ? s[c] : mx;
        }
        return mx;
    }
#endif
    for (int64_t d = 0; d < DK; d++) {
        const float qd = q[d];
        const float * restrict kt = KT + d*FA_TK;
        for (int64_t c = 0; c < nk; c++) {
            s[c] += qd*kt[c];
        }
    }
    float mx = -INFINITY;
    for (int64_t c = 0; c < nk; c++) {
        mx = s[c] > mx ? s[c] : mx;
    }
    return mx;
}

// fa_accumulate adds sum over c of P[c] times VT[c] to o[0..DV), 64
// columns of o in registers at a time.
static inline void fa_accumulate(float * restrict o, const float * restrict P, const float * restrict VT, int64_t DV, int64_t nk) {
    int64_t d0 = 0;
#if defined(FA_AVX512)
    for (; d0 + 63 < DV; d0 += 64) {
        __m512 a0 = _mm512_loadu_ps(o + d0), a1 = _mm512_loadu_ps(o + d0 + 16), a2 = _mm512_loadu_ps(o + d0 + 32), a3 = _mm512_loadu_ps(o + d0 + 48);
        for (int64_t c = 0; c < nk; c++) {
            const __m512 p = _mm512_set1_ps(P[c]);
            const float * vr = VT + c*DV + d0;
            a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr), a0);
            a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 16), a1);
            a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 32), a2);
            a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 48), a3);
        }
        _mm512_storeu_ps(o + d0, a0); _mm512_storeu_ps(o + d0 + 16, a1); _mm512_storeu_ps(o + d0 + 32, a2); _mm512_storeu_ps(o + d0 + 48, a3);
    }
#elif defined(FA_AVX2)
    for (; d0 + 31 < DV; d0 += 32) {
        __m256 a0 = _mm256_loadu_ps(o + d0), a1 = _mm256_loadu_ps(o + d0 + 8), a2 = _mm256_loadu_ps(o + d0 + 16), a3 = _mm256_loadu_ps(o + d0 + 24);
        for (int64_t c = 0; c < nk; c++) {
            const __m256 p = _mm256_set1_ps(P[c]);
            const float * vr = VT + c*DV + d0;
            a0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr), a0);
            a1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr + 8), a1);
            a2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr + 16), a2);
            a3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr + 24), a3);
        }
        _mm256_storeu_ps(o + d0, a0); _mm256_storeu_ps(o + d0 + 8, a1); _mm256_storeu_ps(o + d0 + 16, a2); _mm256_storeu_ps(o + d0 + 24, a3);
    }
#endif
    for (int64_t c = 0; c < nk; c++) {
        const float p = P[c];
        const float * restrict vr = VT + c*DV;
        for (int64_t d = d0; d < DV; d++) {
            o[d] += p*vr[d];
        }
    }
}

void __real_ggml_compute_forward_flash_attn_ext(const struct ggml_compute_params * params, struct ggml_tensor * dst);


static int fa_mode = -1; // 0: ggml's kernel always, 1: this one where it applies

int asi1d_fa_tiled_enabled(void) {
    if (fa_mode < 0) {
        const char * e = getenv("ASI1D_FA_KERNEL");
        fa_mode = (e != NULL && strcmp(e, "ggml") == 0) ? 0 : 1;
    }
    return fa_mode;
}

void asi1d_fa_set_tiled(int on) { fa_mode = on ? 1 : 0; }

static long long fa_calls_tiled, fa_calls_ggml;

long long asi1d_fa_calls(int tiled) { return tiled ? __atomic_load_n(&fa_calls_tiled, __ATOMIC_RELAXED) : __atomic_load_n(&fa_calls_ggml, __ATOMIC_RELAXED); }

static bool fa_applies(const struct ggml_tensor * dst) {
    const struct ggml_tensor * q = dst->src[0];
    const struct ggml_tensor * k = dst->src[1];
    const struct ggml_tensor * v = dst->src[2];
    const struct ggml_tensor * mask = dst->src[3];
    const struct ggml_tensor * sinks = dst->src[4];
    float max_bias, softcap;
    memcpy(&max_bias, (const float *) dst->op_params + 1, sizeof(float));
    memcpy(&softcap, (const float *) dst->op_params + 2, sizeof(float));
    return asi1d_fa_tiled_enabled() &&
        q->type == GGML_TYPE_F32 && k->type == GGML_TYPE_F16 && v->type == GGML_TYPE_F16 &&
        dst->type == GGML_TYPE_F32 &&
        (mask == NULL || mask->type == GGML_TYPE_F16) && sinks == NULL &&
        max_bias == 0.0f && softcap == 0.0f &&
        k->ne[0] <= FA_MAXD && v->ne[0] <= FA_MAXD && q->ne[0] == k->ne[0] &&
        q->nb[0] == sizeof(float) && k->nb[0] == sizeof(ggml_fp16_t) && v->nb[0] == sizeof(ggml_fp16_t) &&
        dst->nb[0] == sizeof(float) &&
        q->ne[2] % k->ne[2] == 0 && q->ne[2] % v->ne[2] == 0 &&
        q->ne[3] % k->ne[3] == 0 && q->ne[3] % v->ne[3] == 0;
}

// fa_tile computes the rows [q0, q0+nq) of head iq2 (batch iq3).
static void fa_tile(const struct ggml_tensor * dst, int64_t iq3, int64_t iq2, int64_t q0, int64_t nq, float * buf) {
    const struct ggml_tensor * q = dst->src[0];
    const struct ggml_tensor * k = dst->src[1];
    const struct ggml_tensor * v = dst->src[2];
    const struct ggml_tensor * mask = dst->src[3];
    const int64_t DK = k->ne[0], DV = v->ne[0], NKV = k->ne[1];
    float scale;
    memcpy(&scale, (const float *) dst->op_params + 0, sizeof(float));

    float * restrict Q  = buf;                // [FA_TQ][DK], scaled
    float * restrict KT = Q + FA_TQ*DK;       // [DK][FA_TK], transposed
    float * restrict VT = KT + DK*FA_TK;      // [FA_TK][DV]
    float * restrict S  = VT + FA_TK*DV;      // [FA_TQ][FA_TK]
    float * restrict P  = S + FA_TQ*FA_TK;    // [FA_TK]
    float * restrict O  = P + FA_TK;          // [FA_TQ][DV]
    float * restrict M  = O + FA_TQ*DV;       // [FA_TQ]
    float * restrict L  = M + FA_TQ;          // [FA_TQ]
    float * restrict row = L + FA_TQ;         // [FA_MAXD]

    const int64_t ik2 = iq2 / (q->ne[2] / k->ne[2]), ik3 = iq3 / (q->ne[3] / k->ne[3]);
    const int64_t iv2 = iq2 / (q->ne[2] / v->ne[2]), iv3 = iq3 / (q->ne[3] / v->ne[3]);

    const ggml_fp16_t * mrow[FA_TQ];
    bool seen[FA_TQ]; // the row sees a key of the tile
    for (int64_t r = 0; r < nq; r++) {
        const float * pq = (const float *) ((const char *) q->data + (q0 + r)*q->nb[1] + iq2*q->nb[2] + iq3*q->nb[3]);
        for (int64_t d = 0; d < DK; d++) {
            Q[r*DK + d] = pq[d]*scale;
        }
        mrow[r] = mask ? (const ggml_fp16_t *) ((const char *) mask->data + (q0 + r)*mask->nb[1] +
                (iq2 % mask->ne[2])*mask->nb[2] + (iq3 % mask->ne[3])*mask->nb[3]) : NULL;
        M[r] = -INFINITY;
        L[r] = 0.0f;
    }
    memset(O, 0, sizeof(float)*nq*DV);

    for (int64_t c0 = 0; c0 < NKV; c0 += FA_TK) {
        const int64_t nk = NKV - c0 < FA_TK ? NKV - c0 : FA_TK;
        // The mask of the tile, and whether it hides all of it.
        bool any = false;
        for (int64_t r = 0; r < nq; r++) {
            float * restrict s = S + r*FA_TK;
            seen[r] = mask == NULL;
            if (mask) {
                // Read the f16 bits first: most tiles are all hidden (the
                // future) or all open (the past), and neither needs converting.
                const uint16_t * mb = (const uint16_t *) (mrow[r] + c0);
                int hidden = 0, open = 0;
                for (int64_t c = 0; c < nk; c++) {
                    hidden += mb[c] == 0xFC00; // -inf
                    open += (mb[c] & 0x7FFF) == 0; // +0 or -0
                }
                seen[r] = hidden < nk;
                if (open == nk) {
                    memset(s, 0, sizeof(float)*nk);
                } else if (seen[r]) {
                    ggml_cpu_fp16_to_fp32(mrow[r] + c0, s, nk);
                }
            } else {
                memset(s, 0, sizeof(float)*nk);
            }
            any |= seen[r];
        }
        if (!any) {
            continue;
        }
        for (int64_t c = 0; c < nk; c++) {
            const ggml_fp16_t * kc = (const ggml_fp16_t *) ((const char *) k->data + (c0 + c)*k->nb[1] + ik2*k->nb[2] + ik3*k->nb[3]);
            ggml_cpu_fp16_to_fp32(kc, row, DK);
            for (int64_t d = 0; d < DK; d++) {
                KT[d*FA_TK + c] = row[d];
            }
            const ggml_fp16_t * vc = (const ggml_fp16_t *) ((const char *) v->data + (c0 + c)*v->nb[1] + iv2*v->nb[2] + iv3*v->nb[3]);
            ggml_cpu_fp16_to_fp32(vc, VT + c*DV, DV);
        }
        for (int64_t r = 0; r < nq; r++) {
            if (!seen[r]) {
                continue; // a row of another sequence, or the future
            }
            float * restrict s = S + r*FA_TK;
            const float * restrict qr = Q + r*DK;
            // s += q . K^T (the mask is already in s)
            const float smax = fa_scores(s, qr, KT, DK, nk);
            const float mx = smax > M[r] ? smax : M[r];
            if (mx == -INFINITY) {
                continue; // every key so far is hidden from this row
            }
            const float sum = (float) ggml_vec_soft_max_f32((int) nk, P, s, mx);
            float * restrict o = O + r*DV;
            if (mx != M[r]) {
                const float alpha = expf(M[r] - mx); // 0 when M was -inf
                L[r] *= alpha;
                for (int64_t d = 0; d < DV; d++) {
                    o[d] *= alpha;
                }
                M[r] = mx;
            }
            L[r] += sum;
            fa_accumulate(o, P, VT, DV, nk);
        }
    }
    // dst is permuted: [DV, n_head, n_q, ne3]
    const int64_t ne1 = dst->ne[1], ne2 = dst->ne[2];
    for (int64_t r = 0; r < nq; r++) {
        const float inv = L[r] == 0.0f ? 0.0f : 1.0f/L[r];
        float * out = (float *) ((char *) dst->data + (iq3*ne2*ne1 + iq2 + (q0 + r)*ne1)*dst->nb[1]);
        const float * o = O + r*DV;
        for (int64_t d = 0; d < DV; d++) {
            out[d] = o[d]*inv;
        }
    }
}

void __wrap_ggml_compute_forward_flash_attn_ext(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    if (!fa_applies(dst) || dst->src[0]->ne[1] < FA_MINROWS) {
        if (params->ith == 0) {
            __atomic_add_fetch(&fa_calls_ggml, 1, __ATOMIC_RELAXED);
        }
        __real_ggml_compute_forward_flash_attn_ext(params, dst);
        return;
    }
    if (params->ith == 0) {
        __atomic_add_fetch(&fa_calls_tiled, 1, __ATOMIC_RELAXED);
    }
    const struct ggml_tensor * q = dst->src[0];
    const int64_t DK = dst->src[1]->ne[0], DV = dst->src[2]->ne[0];
    const int64_t N = q->ne[1], nhead = q->ne[2], n3 = q->ne[3];
    const int64_t ntq = (N + FA_TQ - 1)/FA_TQ;
    const int64_t units = ntq*nhead*n3;
    // Units run query tile by query tile, heads inside, and go round the
    // threads in turn: the causal prompt's later tiles (more keys) are
    // spread over all threads.
    float * buf = NULL;
    for (int64_t u = params->ith; u < units; u += params->nth) {
        if (buf == NULL) {
            const size_t n = FA_TQ*DK + DK*FA_TK + FA_TK*DV + FA_TQ*FA_TK + FA_TK + FA_TQ*DV + 2*FA_TQ + FA_MAXD;
            buf = (float *) malloc(n*sizeof(float));
            if (buf == NULL) {
                GGML_ABORT("asi1d flash attention: out of memory for %zu floats", n);
            }
        }
        const int64_t tq = u / (nhead*n3);
        const int64_t rest = u % (nhead*n3);
        const int64_t iq3 = rest / nhead, iq2 = rest % nhead;
        const int64_t q0 = tq*FA_TQ;
        const int64_t nq = N - q0 < FA_TQ ? N - q0 : FA_TQ;
        fa_tile(dst, iq3, iq2, q0, nq, buf);
    }
    free(buf);
}
