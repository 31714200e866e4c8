// asi1d's flash-attention kernels for ggml's CPU backend (see ggmlfa.go).
//
// ggml's own CPU kernel (ggml_compute_forward_flash_attn_ext_f16_one_chunk
// in the pinned module) walks one query row at a time: for every row it
// reads every key and value of the prefix again, one f16 dot product, one
// exponential and one f16 multiply-add per position. Over a prompt that is
// slow, and even a decode step lost to the attention without flash.
//
// Batches of FA_MINROWS query rows or more (prompts) go through fa_tile: a
// tile of query rows of one head against a tile of keys at a time. Each
// thread converts a key/value tile to f32 (keys transposed) once and keeps
// it (fa_kv) for every query tile and every query head of that KV head it
// computes; the scores and the weighted values are accumulated in registers
// (AVX-512 or AVX2 with F16C; plain loops the compiler vectorizes
// elsewhere), and the softmax's exponentials come from ggml's vectorized
// ggml_vec_soft_max_f32. Tiles the mask hides from every row (the future of
// a causal prompt) are skipped, and rows the mask hides a tile from
// (another sequence's) skip that tile.
//
// Smaller batches (decode steps), and batches whose rows see few of the
// keys of the tiles they touch (fa_sparse: the decode steps of many
// sequences in a shared KV pool), go through fa_row, a row at a time: the
// scores of the keys its mask shows (f16 keys converted in registers), one
// softmax, then the sum of their values in f32, with the rows fetched ahead
// (fa_prefetch_row).
//
// Both take what asi1d's contexts produce (f32 queries, f16 keys and
// values, an f16 mask or none; no ALiBi, no logit soft-capping, no
// attention sinks; head sizes up to 256) and leave anything else to ggml's
// kernel.
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
    FA_MINROWS = 8,  // fewer query rows (decode steps) go to fa_rows, as do sparse batches
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


static int fa_mode = -1; // 0: ggml's kernel always, 1: asi1d's where they apply

int asi1d_fa_tiled_enabled(void) {
    if (fa_mode < 0) {
        const char * e = getenv("ASI1D_FA_KERNEL");
        fa_mode = (e != NULL && strcmp(e, "ggml") == 0) ? 0 : 1;
    }
    return fa_mode;
}

void asi1d_fa_set_tiled(int on) { fa_mode = on ? 1 : 0; }

const char * asi1d_fa_isa(void) {
#if defined(FA_AVX512)
    return "avx512";
#elif defined(FA_AVX2)
    return "avx2";
#else
    return "portable";
#endif
}

static long long fa_calls[3]; // by kernel: 0 ggml's, 1 tiled, 2 row

long long asi1d_fa_calls(int kernel) { return kernel >= 0 && kernel < 3 ? __atomic_load_n(&fa_calls[kernel], __ATOMIC_RELAXED) : -1; }

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
        k->ne[2] == v->ne[2] && k->ne[3] == v->ne[3] && k->ne[1] == v->ne[1] &&
        q->ne[2] % k->ne[2] == 0 && q->ne[3] % k->ne[3] == 0;
}

// fa_op is what the kernels read of a flash-attention op.
typedef struct {
    const struct ggml_tensor * dst, * q, * k, * v, * mask;
    int64_t DK, DV, NKV; // head sizes of keys and values, keys
    float scale;
} fa_op;

static fa_op fa_op_of(const struct ggml_tensor * dst) {
    fa_op op = { dst, dst->src[0], dst->src[1], dst->src[2], dst->src[3], dst->src[1]->ne[0], dst->src[2]->ne[0], dst->src[1]->ne[1], 0.0f };
    memcpy(&op.scale, (const float *) dst->op_params + 0, sizeof(float));
    return op;
}

// fa_out is where row iq1 of head iq2 (batch iq3) goes: dst is permuted,
// [DV, n_head, n_q, ne3].
static float * fa_out(const struct ggml_tensor * dst, int64_t iq3, int64_t iq2, int64_t iq1) {
    return (float *) ((char *) dst->data + (iq3*dst->ne[2]*dst->ne[1] + iq2 + iq1*dst->ne[1])*dst->nb[1]);
}

// fa_prefetch_row asks for the f16 row of n values at row, FA_AHEAD rows
// before it is read, to be brought into the cache. A head's rows in the KV
// cache are the row size of all KV heads apart, so reading them crosses a
// page every few rows, where the CPU's own stride prefetchers stop: without
// this a decode step's attention waited on memory (2x slower on the small
// model at depth 1,536).
enum { FA_AHEAD = 8 };

static inline void fa_prefetch_row(const void * row, int64_t n) {
    for (int64_t b = 0; b < n*(int64_t) sizeof(ggml_fp16_t); b += 64) {
        __builtin_prefetch((const char *) row + b);
    }
}

// fa_kv is one thread's f32 copy of the key and value tiles of one KV head:
// a tile is converted from f16 (and its keys transposed) the first time a
// query tile of the thread needs it, and then serves every later query
// tile and every query head that shares the KV head. Converting per query
// tile, as before, read the strided f16 rows of the cache again and again
// and cost a third of the kernel's time. Tiles past the cache's room
// (very long contexts) are converted into one scratch tile each time.
typedef struct {
    int64_t ik2, ik3;  // the KV head held; -1 before the first
    int64_t ntiles;    // tiles the cache has room for
    int64_t tf;        // floats per tile: DK*FA_TK (keys, transposed) + FA_TK*DV
    float * tiles;     // [ntiles + 1][tf], the last one the scratch
    bool * done;       // [ntiles]
} fa_kv;

enum { FA_CACHE_FLOATS = 1 << 21 }; // 8 MiB per thread at most

static int64_t fa_cache_tiles = -1; // tests: the cache's room in tiles (-1: FA_CACHE_FLOATS)

void asi1d_fa_set_cache_tiles(long long n) { __atomic_store_n(&fa_cache_tiles, n, __ATOMIC_RELAXED); }

// fa_kv_tile returns the keys (transposed, [DK][FA_TK]) of tile t of KV head
// (ik2, ik3), the values ([FA_TK][DV]) following them at DK*FA_TK.
static const float * fa_kv_tile(fa_kv * kv, const struct ggml_tensor * k, const struct ggml_tensor * v,
        int64_t ik2, int64_t ik3, int64_t t, int64_t nk, float * restrict row) {
    if (kv->ik2 != ik2 || kv->ik3 != ik3) {
        memset(kv->done, 0, sizeof(bool)*kv->ntiles);
        kv->ik2 = ik2;
        kv->ik3 = ik3;
    }
    const bool cached = t < kv->ntiles;
    float * restrict KT = kv->tiles + (cached ? t : kv->ntiles)*kv->tf;
    if (cached && kv->done[t]) {
        return KT;
    }
    const int64_t DK = k->ne[0], DV = v->ne[0], c0 = t*FA_TK;
    float * restrict VT = KT + DK*FA_TK;
    for (int64_t c = 0; c < nk; c++) {
        const ggml_fp16_t * kc = (const ggml_fp16_t *) ((const char *) k->data + (c0 + c)*k->nb[1] + ik2*k->nb[2] + ik3*k->nb[3]);
        const ggml_fp16_t * vc = (const ggml_fp16_t *) ((const char *) v->data + (c0 + c)*v->nb[1] + ik2*v->nb[2] + ik3*v->nb[3]);
        fa_prefetch_row((const char *) kc + FA_AHEAD*k->nb[1], DK);
        fa_prefetch_row((const char *) vc + FA_AHEAD*v->nb[1], DV);
        ggml_cpu_fp16_to_fp32(kc, row, DK);
        for (int64_t d = 0; d < DK; d++) {
            KT[d*FA_TK + c] = row[d];
        }
        ggml_cpu_fp16_to_fp32(vc, VT + c*DV, DV);
    }
    if (cached) {
        kv->done[t] = true;
    }
    return KT;
}

// fa_tile computes the rows [q0, q0+nq) of head iq2 (batch iq3).
static void fa_tile(const fa_op * op, int64_t iq3, int64_t iq2, int64_t q0, int64_t nq, float * buf, fa_kv * kv) {
    const struct ggml_tensor * q = op->q, * k = op->k, * v = op->v, * mask = op->mask;
    const int64_t DK = op->DK, DV = op->DV, NKV = op->NKV;
    const float scale = op->scale;

    float * restrict Q  = buf;                // [FA_TQ][DK], scaled
    float * restrict S  = Q + FA_TQ*DK;       // [FA_TQ][FA_TK]
    float * restrict P  = S + FA_TQ*FA_TK;    // [FA_TK]
    float * restrict O  = P + FA_TK;          // [FA_TQ][DV]
    float * restrict M  = O + FA_TQ*DV;       // [FA_TQ]
    float * restrict L  = M + FA_TQ;          // [FA_TQ]
    float * restrict row = L + FA_TQ;         // [FA_MAXD]

    const int64_t ik2 = iq2 / (q->ne[2] / k->ne[2]), ik3 = iq3 / (q->ne[3] / k->ne[3]);

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
        const float * restrict KT = fa_kv_tile(kv, k, v, ik2, ik3, c0/FA_TK, nk, row);
        const float * restrict VT = KT + DK*FA_TK;
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
    for (int64_t r = 0; r < nq; r++) {
        const float inv = L[r] == 0.0f ? 0.0f : 1.0f/L[r];
        float * out = fa_out(op->dst, iq3, iq2, q0 + r);
        const float * o = O + r*DV;
        for (int64_t d = 0; d < DV; d++) {
            out[d] = o[d]*inv;
        }
    }
}

// fa_dot16 is q . k for an f32 q and an f16 k of n values.
static inline float fa_dot16(const float * restrict q, const ggml_fp16_t * restrict k, int64_t n) {
    int64_t d = 0;
    float sum = 0.0f;
#if defined(FA_AVX512)
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (; d + 31 < n; d += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (k + d))), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d + 16), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (k + d + 16))), a1);
    }
    for (; d + 15 < n; d += 16) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (k + d))), a0);
    }
    sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#elif defined(FA_AVX2)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; d + 15 < n; d += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (k + d))), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (k + d + 8))), a1);
    }
    const __m256 a = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    sum = _mm_cvtss_f32(h);
#endif
    for (; d < n; d++) {
        sum += q[d]*GGML_CPU_FP16_TO_FP32(k[d]);
    }
    return sum;
}

// fa_mad16 adds p times the f16 row v to o[0..n).
static inline void fa_mad16(float * restrict o, float p, const ggml_fp16_t * restrict v, int64_t n) {
    int64_t d = 0;
#if defined(FA_AVX512)
    const __m512 pv = _mm512_set1_ps(p);
    for (; d + 15 < n; d += 16) {
        _mm512_storeu_ps(o + d, _mm512_fmadd_ps(pv, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (v + d))), _mm512_loadu_ps(o + d)));
    }
#elif defined(FA_AVX2)
    const __m256 pv = _mm256_set1_ps(p);
    for (; d + 7 < n; d += 8) {
        _mm256_storeu_ps(o + d, _mm256_fmadd_ps(pv, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (v + d))), _mm256_loadu_ps(o + d)));
    }
#endif
    for (; d < n; d++) {
        o[d] += p*GGML_CPU_FP16_TO_FP32(v[d]);
    }
}

// fa_row computes query row iq1 of head iq2 (batch iq3) the plain way, for
// batches too small for tiles (decode steps) and for rows that see few of
// the keys around them: it lists the keys the mask does not hide, computes
// their scores (f16 keys converted in registers), one softmax, then sums
// the values the softmax did not zero in f32. It reads each key and value
// the row sees once, with none of ggml's kernel's per-key exponential and
// f16 accumulator. s and idx have room for the keys, o for DV.
static void fa_row(const fa_op * op, int64_t iq3, int64_t iq2, int64_t iq1, float * restrict s, int32_t * restrict idx, float * restrict o) {
    const struct ggml_tensor * q = op->q, * k = op->k, * v = op->v, * mask = op->mask;
    const int64_t DK = op->DK, DV = op->DV, NKV = op->NKV;
    const float scale = op->scale;
    const int64_t ik2 = iq2 / (q->ne[2] / k->ne[2]), ik3 = iq3 / (q->ne[3] / k->ne[3]);
    const float * pq = (const float *) ((const char *) q->data + iq1*q->nb[1] + iq2*q->nb[2] + iq3*q->nb[3]);
    const ggml_fp16_t * mr = mask ? (const ggml_fp16_t *) ((const char *) mask->data + iq1*mask->nb[1] +
            (iq2 % mask->ne[2])*mask->nb[2] + (iq3 % mask->ne[3])*mask->nb[3]) : NULL;
    const char * kb = (const char *) k->data + ik2*k->nb[2] + ik3*k->nb[3];
    const char * vb = (const char *) v->data + ik2*v->nb[2] + ik3*v->nb[3];
    const size_t kn = k->nb[1], vn = v->nb[1];
    int64_t nv = 0;
    for (int64_t c = 0; c < NKV; c++) {
        if (mr == NULL || ((const uint16_t *) mr)[c] != 0xFC00) { // -inf: hidden, not read
            idx[nv++] = (int32_t) c;
        }
    }
    float mx = -INFINITY;
    for (int64_t i = 0; i < nv; i++) {
        if (i + FA_AHEAD < nv) {
            fa_prefetch_row(kb + idx[i + FA_AHEAD]*kn, DK);
        }
        const int64_t c = idx[i];
        s[i] = fa_dot16(pq, (const ggml_fp16_t *) (kb + c*kn), DK)*scale + (mr ? GGML_CPU_FP16_TO_FP32(mr[c]) : 0.0f);
        mx = s[i] > mx ? s[i] : mx;
    }
    memset(o, 0, sizeof(float)*DV);
    float inv = 0.0f;
    if (mx != -INFINITY) {
        const float sum = (float) ggml_vec_soft_max_f32((int) nv, s, s, mx);
        for (int64_t i = 0; i < nv; i++) {
            if (i + FA_AHEAD < nv) {
                fa_prefetch_row(vb + idx[i + FA_AHEAD]*vn, DV);
            }
            if (s[i] != 0.0f) {
                fa_mad16(o, s[i], (const ggml_fp16_t *) (vb + idx[i]*vn), DV);
            }
        }
        inv = 1.0f/sum;
    }
    float * out = fa_out(op->dst, iq3, iq2, iq1);
    for (int64_t d = 0; d < DV; d++) {
        out[d] = o[d]*inv;
    }
}

// fa_rows computes a batch with fa_row: each thread takes a run of the
// (batch, head, row) units, in that order, so the rows of a head, which
// read the same keys, go to one thread.
static void fa_rows(const struct ggml_compute_params * params, const fa_op * op) {
    const struct ggml_tensor * q = op->q;
    const int64_t N = q->ne[1], nhead = q->ne[2], units = N*nhead*q->ne[3];
    const int64_t u0 = units*params->ith/params->nth, u1 = units*(params->ith + 1)/params->nth;
    if (u0 >= u1) {
        return;
    }
    const int64_t NKV = op->NKV, DV = op->DV;
    float * s = (float *) malloc(sizeof(float)*(2*NKV + DV)); // scores, key indices, output
    if (s == NULL) {
        GGML_ABORT("asi1d flash attention: out of memory for %lld floats", (long long) (2*NKV + DV));
    }
    for (int64_t u = u0; u < u1; u++) {
        fa_row(op, u/(N*nhead), (u/N) % nhead, u % N, s, (int32_t *) (s + NKV), s + 2*NKV);
    }
    free(s);
}

// fa_sparse reports whether the rows see few of the keys of the key tiles
// they see (under a quarter): decode steps of many sequences in a shared KV
// pool, whose cells interleave, so that each tile holds a key or two of
// every sequence. The tiled kernel would compute whole tiles for them;
// fa_row reads just the keys each row sees. Batches of more than
// FA_SPARSE_ROWS rows (prompts) are taken as dense without looking.
enum { FA_SPARSE_ROWS = 128 };

static bool fa_sparse(const fa_op * op) {
    const struct ggml_tensor * q = op->q, * mask = op->mask;
    if (mask == NULL || q->ne[1] > FA_SPARSE_ROWS) {
        return false;
    }
    int64_t seen = 0, tiles = 0;
    for (int64_t iq3 = 0; iq3 < q->ne[3]; iq3++) {
        for (int64_t r = 0; r < q->ne[1]; r++) {
            const uint16_t * mr = (const uint16_t *) ((const char *) mask->data + r*mask->nb[1] + (iq3 % mask->ne[3])*mask->nb[3]);
            for (int64_t c0 = 0; c0 < op->NKV; c0 += FA_TK) {
                const int64_t c1 = c0 + FA_TK < op->NKV ? c0 + FA_TK : op->NKV;
                int64_t n = 0;
                for (int64_t c = c0; c < c1; c++) {
                    n += mr[c] != 0xFC00;
                }
                seen += n;
                tiles += n > 0;
            }
        }
    }
    return 4*seen < tiles*FA_TK;
}

// fa_cost estimates the key tiles query tile tq sees: all of them without
// a mask, else those up to its last row in a causal prompt that ends at the
// last key (what a prompt chunk's mask is). It only balances the threads.
static int64_t fa_cost(bool masked, int64_t N, int64_t NKV, int64_t tq) {
    const int64_t ntk = (NKV + FA_TK - 1)/FA_TK;
    if (!masked) {
        return ntk;
    }
    const int64_t qend = (tq + 1)*FA_TQ < N ? (tq + 1)*FA_TQ : N;
    const int64_t n = (NKV - N + qend + FA_TK - 1)/FA_TK;
    return n < 1 ? 1 : n > ntk ? ntk : n;
}

void __wrap_ggml_compute_forward_flash_attn_ext(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    if (!fa_applies(dst)) {
        if (params->ith == 0) {
            __atomic_add_fetch(&fa_calls[0], 1, __ATOMIC_RELAXED);
        }
        __real_ggml_compute_forward_flash_attn_ext(params, dst);
        return;
    }
    const fa_op op = fa_op_of(dst);
    if (op.q->ne[1] < FA_MINROWS || fa_sparse(&op)) {
        if (params->ith == 0) {
            __atomic_add_fetch(&fa_calls[2], 1, __ATOMIC_RELAXED);
        }
        fa_rows(params, &op);
        return;
    }
    if (params->ith == 0) {
        __atomic_add_fetch(&fa_calls[1], 1, __ATOMIC_RELAXED);
    }
    const struct ggml_tensor * q = op.q, * k = op.k;
    const bool masked = op.mask != NULL;
    const int64_t DK = op.DK, DV = op.DV, NKV = op.NKV;
    const int64_t N = q->ne[1], nhead = q->ne[2], n3 = q->ne[3];
    const int64_t rk2 = nhead/k->ne[2];
    const int64_t ntq = (N + FA_TQ - 1)/FA_TQ;
    // The units (a query tile of a head) go in KV-head order, so that the
    // query tiles and heads that share a KV head's keys and values follow
    // each other, and each thread takes a run of them of about an equal
    // share of the estimated work: it converts the keys and values of the
    // few KV heads it meets once.
    int64_t per_head = 0;
    for (int64_t tq = 0; tq < ntq; tq++) {
        per_head += fa_cost(masked, N, NKV, tq);
    }
    const int64_t total = per_head*nhead*n3;
    float * buf = NULL;
    fa_kv kv = { .ik2 = -1, .ik3 = -1 };
    int64_t at = 0; // the estimated work before the unit
    for (int64_t iq3 = 0; iq3 < n3; iq3++) {
        for (int64_t ik2 = 0; ik2 < k->ne[2]; ik2++) {
            for (int64_t tq = 0; tq < ntq; tq++) {
                const int64_t w = fa_cost(masked, N, NKV, tq);
                for (int64_t j = 0; j < rk2; j++, at += w) {
                    // the unit belongs to the thread whose share holds its middle
                    if ((2*at + w)*params->nth / (2*total) != params->ith) {
                        continue;
                    }
                    if (buf == NULL) {
                        kv.tf = DK*FA_TK + FA_TK*DV;
                        const int64_t ntk = (NKV + FA_TK - 1)/FA_TK;
                        const int64_t room = __atomic_load_n(&fa_cache_tiles, __ATOMIC_RELAXED);
                        kv.ntiles = room >= 0 ? room : FA_CACHE_FLOATS/kv.tf;
                        kv.ntiles = kv.ntiles < ntk ? kv.ntiles : ntk;
                        const size_t n = FA_TQ*DK + FA_TQ*FA_TK + FA_TK + FA_TQ*DV + 2*FA_TQ + FA_MAXD + (kv.ntiles + 1)*kv.tf;
                        buf = (float *) malloc(n*sizeof(float));
                        kv.done = (bool *) malloc(kv.ntiles > 0 ? (size_t) kv.ntiles : 1);
                        if (buf == NULL || kv.done == NULL) {
                            GGML_ABORT("asi1d flash attention: out of memory for %zu floats", n);
                        }
                        kv.tiles = buf + FA_TQ*DK + FA_TQ*FA_TK + FA_TK + FA_TQ*DV + 2*FA_TQ + FA_MAXD;
                    }
                    const int64_t q0 = tq*FA_TQ;
                    const int64_t nq = N - q0 < FA_TQ ? N - q0 : FA_TQ;
                    fa_tile(&op, iq3, ik2*rk2 + j, q0, nq, buf, &kv);
                }
            }
        }
    }
    free(kv.done);
    free(buf);
}
