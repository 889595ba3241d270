/*
 * gemm_bf16.c - the mixed-precision matrix product behind cnn_gemm_bf16 and
 * cnn_gemm_bias_bf16 (see gemm.h): C = alpha * op(A) @ op(B) + beta * S with
 * the operands rounded to bfloat16 (round to nearest even) and every sum kept
 * in single precision; C, alpha, beta, the bias and the ReLU stay fp32. This
 * is what PyTorch's CPU autocast does for matrix products.
 *
 * Two kernels share one loop nest and one packed layout:
 *  amx     TDPBF16PS on AMX tiles: a 32 x 32 block of C is 2 x 2 tiles of
 *          16 x 16 fp32, fed per k step of 32 by two A tiles (16 rows x 32
 *          bf16) and two B tiles (16 pairs of k x 16 columns x 2 bf16: the
 *          VNNI layout, where each 32-bit lane holds two consecutive k)
 *  avx512  VDPBF16PS on zmm registers for CPUs with AVX512-BF16 but no AMX:
 *          8 x 32 sub-blocks (16 accumulators), one broadcast k pair of A
 *          against the same packed B rows. On a Sapphire Rapids core it
 *          runs at 0.55-0.65x of the fp32 kernel (VDPBF16PS has the FMAs'
 *          flops and packing comes on top), so isa.c uses it only where
 *          there is no AMX; on those CPUs it is not measured yet.
 *
 * Loop nest per band of C (the Goto/BLIS order; every operand is converted
 * once per k block and then reused from cache):
 *     for jc step NC: for pc (k blocks): pack op(B)[pc:+kc, jc:+nc]  (L2)
 *       for ic step MC: pack op(A)[ic:+mc, pc:+kc]                    (L2)
 *         for jr step 32: for ir step 32: block, then its fp32 writeback
 * K is cut into equal blocks of at most KC (from K alone), each padded with
 * zeros to a multiple of 32; rows past M and columns past N are zeros too, so
 * the blocks always run whole tiles and the writeback masks what is outside
 * C. A block's sums go through a 4 KB buffer to the AVX-512 writeback: C =
 * alpha*acc + beta*S in the first k block (S = C or the bias row; only
 * alpha*acc when beta == 0, which never reads C), C = alpha*acc + C in later
 * ones, max(C, 0) after the last when asked: the formulas of gemm_kernel.c.
 *
 * Threads split C into disjoint bands on the 32 x 32 grid, along its longer
 * side, as gemm_kernel.c does. Each element is summed by the same
 * instructions over the same k blocks whatever band holds it, so results are
 * bitwise identical for any pool size (the two kernels round differently
 * from each other and from fp32).
 *
 * Measured with AMX on one Sapphire Rapids core (bench_gemm_bf16): 1.3-5x
 * fp32 on the model's shapes with K >= 24 (gemm.c sends the others to
 * fp32). The tiles are rarely the limit: most of the time goes to reading
 * the fp32 operands while converting them (the dense layer's 11.5 MB
 * kernel, at about half this machine's 28 GB/s per core) and to writing
 * fp32 C (its 11.5 MB gradient). Software prefetch in the packers gained
 * under 3%, within noise.
 *
 * VCVTNE2PS2BF16, TDPBF16PS and VDPBF16PS read denormals as zero and flush
 * denormal results: magnitudes below 2^-126 count as 0.
 *
 * Packed layouts (uint16_t bf16 bits), in 1 KB pieces that are one tile each:
 *   A: ap[panel of 16 rows][k step][16 rows][32 k]
 *   B: bp[panel of 16 cols][k step][16 k pairs][16 cols][2 k]
 * Buffers are fixed thread-local arrays (768 KB per thread that runs this
 * product): the kernel cannot fail, so it cannot allocate.
 *
 * Compiled with -mavx512f/bw/dq/vl -mavx512bf16 -mamx-tile -mamx-bf16 (see
 * CMakeLists.txt), so nothing here may run before the dispatcher in gemm.c
 * has checked the CPU (cnn_isa_bf16 in isa.h): even a struct copy may become
 * a zmm move. AMX additionally needs Linux's per-process tile permission,
 * which isa.c requests when it reads the CPU.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "gemm.h"
#include "transpose16.h"

#define TR 16  /* rows of a tile (and columns of a C or B tile) */
#define TK 32  /* bf16 values along k per tile row: the k step */
#define TS 512 /* uint16_t per packed tile: 16 x 32 */
#define BLK 32 /* a block of C: 2 x 2 tiles */

/* Cache blocking, sized for a 48 KB L1d and 2 MB L2 per core (Sapphire
 * Rapids). KC: a k block; one 32-column B micro-panel (32 KB at KC = 512)
 * stays in L1 while A panels stream past it from L2. MC: a packed A block,
 * 256 KB. NC: a packed B block, 512 KB. */
#define KC 512
#define MC 256
#define NC 512

_Static_assert(KC % TK == 0 && MC % BLK == 0 && NC % BLK == 0, "blocks must hold whole tiles");

/* Below this many flops a pool costs more than it saves (the product runs
 * about twice as fast as fp32's, so the bar is higher than in
 * gemm_kernel.c). */
#define BF16_MIN_PARALLEL_FLOPS 1e6

/* Writeback flags, as in gemm_kernel.c. */
#define BF16_OVERWRITE 1
#define BF16_RELU 2

static _Thread_local _Alignas(64) uint16_t bf16_apack[MC * KC];
static _Thread_local _Alignas(64) uint16_t bf16_bpack[NC * KC];

/* The AMX palette: tiles 0-3 C (16 x 16 fp32), 4-5 A (16 x 32 bf16), 6-7 B
 * (16 k pairs x 16 columns x 2 bf16): all 16 rows of 64 bytes. */
typedef struct bf16_tilecfg {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} bf16_tilecfg;

static const _Alignas(64) bf16_tilecfg bf16_cfg = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

/* The first n lanes of 16 (n may be <= 0 or >= 16). */
static inline __mmask16 bf16_mask(int n) {
  return (__mmask16)(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u);
}

/* 16 floats from p, lanes past n zero and unread. */
static inline __m512 bf16_load(const float *p, int n) {
  return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(bf16_mask(n), p);
}

/* 32 bf16: lo's 16 values, then hi's, rounded to nearest even. */
static inline __m512i bf16_cvt(__m512 lo, __m512 hi) {
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* bf16_cvt(x, y) as 16 pairs (x[i], y[i]): the VNNI interleave. */
static inline __m512i bf16_pairs(__m512 x, __m512 y) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, bf16_cvt(x, y));
}

/* ---- packing ----------------------------------------------------------- */

/* op(A)[0:mc, 0:kc] = A (row-major, already offset to the block) into
 * 16-row panels of nks k steps; rows past mc and k past kc zero. Each row
 * is read along its length. */
static void bf16_pack_a(uint16_t *restrict ap, const float *restrict A, int lda, int mc, int kc,
                        int nks) {
  int mp = (mc + TR - 1) / TR * TR;
  for (int i = 0; i < mp; i++) {
    uint16_t *dst = ap + (size_t)(i / TR) * nks * TS + (size_t)(i % TR) * TK;
    const float *src = A + (size_t)i * lda;
    for (int s = 0, k = 0; s < nks; s++, k += TK, dst += TS) {
      __m512i v = _mm512_setzero_si512();
      if (i < mc) v = bf16_cvt(bf16_load(src + k, kc - k), bf16_load(src + k + 16, kc - k - 16));
      _mm512_store_si512(dst, v);
    }
  }
}

/* The same from A^T (A stored k-major, offset to the block): row k of A
 * holds op(A)[.][k]. Pairs of k rows become 16 pairs over i, which a
 * transpose turns into 16 rows of the tile. */
static void bf16_pack_at(uint16_t *restrict ap, const float *restrict A, int lda, int mc, int kc,
                         int nks) {
  for (int i0 = 0; i0 < mc; i0 += TR) {
    int n = mc - i0;
    uint16_t *dst = ap + (size_t)(i0 / TR) * nks * TS;
    for (int s = 0; s < nks; s++, dst += TS) {
      __m512i r[16];
      for (int q = 0; q < 16; q++) {
        int k = s * TK + 2 * q;
        const float *src = A + (size_t)k * lda + i0;
        __m512 x = k < kc ? bf16_load(src, n) : _mm512_setzero_ps();
        __m512 y = k + 1 < kc ? bf16_load(src + lda, n) : _mm512_setzero_ps();
        r[q] = bf16_pairs(x, y);
      }
      cnn_transpose16(r);
      for (int i = 0; i < 16; i++) _mm512_store_si512(dst + i * TK, r[i]);
    }
  }
}

/* op(B)[0:kc, 0:nc] = B (row-major, offset to the block) into 16-column
 * VNNI panels; k past kc and columns past nc zero. Reads two rows of B at a
 * time along their length, the pair four rows ahead fetched meanwhile (as in
 * gemm_kernel.c's pack: a dense kernel's block rows are short runs far
 * apart; its forward at batch 32 on one thread, interleaved pairs in two
 * sittings: medians 122-123 -> 133-146 GFLOP/s, on two no change); the
 * writes go to every panel, which sit in cache. */
static void bf16_pack_b(uint16_t *restrict bp, const float *restrict B, int ldb, int kc, int nc,
                        int nks) {
  size_t panel = (size_t)nks * TS;
  for (int s = 0; s < nks; s++)
    for (int q = 0; q < 16; q++) {
      int k = s * TK + 2 * q;
      const float *src = B + (size_t)k * ldb;
      uint16_t *dst = bp + (size_t)s * TS + q * TK;
      for (int j = 0; j < nc; j += TR, dst += panel) {
        __builtin_prefetch(src + 4 * (size_t)ldb + j);
        __builtin_prefetch(src + 5 * (size_t)ldb + j);
        __m512 x = k < kc ? bf16_load(src + j, nc - j) : _mm512_setzero_ps();
        __m512 y = k + 1 < kc ? bf16_load(src + ldb + j, nc - j) : _mm512_setzero_ps();
        _mm512_store_si512(dst, bf16_pairs(x, y));
      }
    }
}

/* The same from B^T (B stored n-major, offset to the block): row j of B is
 * column j of op(B), whose consecutive k pairs convert in place; a transpose
 * makes 16 such columns into 16 VNNI rows. */
static void bf16_pack_bt(uint16_t *restrict bp, const float *restrict B, int ldb, int kc, int nc,
                         int nks) {
  for (int j0 = 0; j0 < nc; j0 += TR) {
    uint16_t *dst = bp + (size_t)(j0 / TR) * nks * TS;
    for (int s = 0, k = 0; s < nks; s++, k += TK, dst += TS) {
      __m512i r[16];
      for (int j = 0; j < 16; j++) {
        const float *src = B + (size_t)(j0 + j) * ldb + k;
        r[j] = j0 + j < nc ? bf16_cvt(bf16_load(src, kc - k), bf16_load(src + 16, kc - k - 16))
                           : _mm512_setzero_si512();
      }
      cnn_transpose16(r);
      for (int q = 0; q < 16; q++) _mm512_store_si512(dst + q * TK, r[q]);
    }
  }
}

/* ---- blocks ------------------------------------------------------------ */

/* acc[32][32] = the block from mt A panels (a, then a + panel) and nt B
 * panels (b, b + panel), over nks k steps, on AMX tiles. mt and nt (1 or 2)
 * are literals at each instantiation (tile numbers must be). */
static inline __attribute__((always_inline)) void bf16_amx_block(const int mt, const int nt,
                                                                 float *acc, const uint16_t *a,
                                                                 const uint16_t *b, int nks) {
  const uint16_t *a1 = a + (size_t)nks * TS, *b1 = b + (size_t)nks * TS;
  _tile_zero(0);
  if (nt > 1) _tile_zero(1);
  if (mt > 1) _tile_zero(2);
  if (mt > 1 && nt > 1) _tile_zero(3);
  for (int s = 0; s < nks; s++) {
    size_t o = (size_t)s * TS;
    _tile_loadd(4, a + o, 64);
    _tile_loadd(6, b + o, 64);
    if (mt > 1) _tile_loadd(5, a1 + o, 64);
    if (nt > 1) _tile_loadd(7, b1 + o, 64);
    _tile_dpbf16ps(0, 4, 6);
    if (nt > 1) _tile_dpbf16ps(1, 4, 7);
    if (mt > 1) _tile_dpbf16ps(2, 5, 6);
    if (mt > 1 && nt > 1) _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, acc, BLK * 4);
  if (nt > 1) _tile_stored(1, acc + 16, BLK * 4);
  if (mt > 1) _tile_stored(2, acc + 16 * BLK, BLK * 4);
  if (mt > 1 && nt > 1) _tile_stored(3, acc + 16 * BLK + 16, BLK * 4);
}

/* acc[0:8][0:16*(1+wide)] from 8 rows of a packed A panel (a at the first)
 * and one or two B panels, on zmm: per k pair, each row's pair of A
 * broadcast against a row of 16 VNNI pairs of B. */
static inline __attribute__((always_inline)) void bf16_dp_rows8(const int wide, float *acc,
                                                                const uint16_t *a,
                                                                const uint16_t *b0,
                                                                const uint16_t *b1, int nks) {
#define BF16_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define BF16_DECL(r) __m512 c##r##_0 = _mm512_setzero_ps(), c##r##_1 = _mm512_setzero_ps();
  BF16_ROWS(BF16_DECL)
#undef BF16_DECL
  for (int s = 0; s < nks; s++) {
    const uint16_t *as = a + (size_t)s * TS, *bs0 = b0 + (size_t)s * TS, *bs1 = b1 + (size_t)s * TS;
    for (int q = 0; q < 16; q++) {
      __m512bh v0 = (__m512bh)_mm512_load_si512(bs0 + q * TK);
      __m512bh v1 = wide ? (__m512bh)_mm512_load_si512(bs1 + q * TK) : (__m512bh)v0;
      int32_t pair;
#define BF16_DP(r)                                           \
  memcpy(&pair, as + (r)*TK + 2 * q, sizeof pair);           \
  {                                                          \
    __m512bh va = (__m512bh)_mm512_set1_epi32(pair);         \
    c##r##_0 = _mm512_dpbf16_ps(c##r##_0, va, v0);           \
    if (wide) c##r##_1 = _mm512_dpbf16_ps(c##r##_1, va, v1); \
  }
      BF16_ROWS(BF16_DP)
#undef BF16_DP
    }
  }
#define BF16_STORE(r)                       \
  _mm512_store_ps(acc + (r)*BLK, c##r##_0); \
  if (wide) _mm512_store_ps(acc + (r)*BLK + 16, c##r##_1);
  BF16_ROWS(BF16_STORE)
#undef BF16_STORE
#undef BF16_ROWS
}

/* acc[32][32] as bf16_amx_block computes it, with AVX512-BF16. */
static void bf16_dp_block(int mt, int nt, float *acc, const uint16_t *a, const uint16_t *b,
                          int nks) {
  const uint16_t *b1 = b + (size_t)nks * TS;
  for (int h = 0; h < 2 * mt; h++) {
    const uint16_t *ah = a + (size_t)(h / 2) * nks * TS + (size_t)(h % 2) * 8 * TK;
    if (nt > 1)
      bf16_dp_rows8(1, acc + h * 8 * BLK, ah, b, b1, nks);
    else
      bf16_dp_rows8(0, acc + h * 8 * BLK, ah, b, b, nks);
  }
}

static void bf16_amx_any(int mt, int nt, float *acc, const uint16_t *a, const uint16_t *b,
                         int nks) {
  if (mt > 1 && nt > 1)
    bf16_amx_block(2, 2, acc, a, b, nks);
  else if (mt > 1)
    bf16_amx_block(2, 1, acc, a, b, nks);
  else if (nt > 1)
    bf16_amx_block(1, 2, acc, a, b, nks);
  else
    bf16_amx_block(1, 1, acc, a, b, nks);
}

/* ---- loop nest and threads ----------------------------------------------- */

typedef struct bf16_job {
  int amx; /* tiles (1) or AVX512-BF16 (0) */
  int ta, tb, M, N, K;
  float alpha, beta;
  const float *A; /* borrowed, like B, bias and C */
  int lda;
  const float *B;
  int ldb;
  const float *bias; /* NULL, or N values that stand for C in the first k block */
  int relu;
  float *C;
  int ldc;
  int kc;      /* the k block, from K alone */
  int split_m; /* bands along M (1) or N (0) */
  int ntiles;  /* 32-wide blocks along the split dimension */
  int ntasks;
} bf16_job;

/* C[i0:+mr, j0:+nr] from the block's sums: see the top of the file. */
static void bf16_write(const bf16_job *g, const float *acc, int i0, int j0, int mr, int nr,
                       int first, float beta, int flags) {
  const __m512 va = _mm512_set1_ps(g->alpha), vb = _mm512_set1_ps(beta);
  const __mmask16 m[2] = {bf16_mask(nr), bf16_mask(nr - 16)};
  const int halves = nr > 16 ? 2 : 1;
  for (int r = 0; r < mr; r++) {
    float *c = g->C + (size_t)(i0 + r) * g->ldc + j0;
    const float *s = first && g->bias ? g->bias + j0 : c;
    for (int h = 0; h < halves; h++) {
      __m512 x = _mm512_load_ps(acc + r * BLK + 16 * h);
      if (flags & BF16_OVERWRITE)
        x = _mm512_mul_ps(va, x);
      else
        x = _mm512_fmadd_ps(va, x, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m[h], s + 16 * h)));
      if (flags & BF16_RELU) x = _mm512_max_ps(x, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(c + 16 * h, m[h], x);
    }
  }
}

static const float *bf16_a_at(const bf16_job *g, int i, int k) {
  return g->ta ? g->A + (size_t)k * g->lda + i : g->A + (size_t)i * g->lda + k;
}
static const float *bf16_b_at(const bf16_job *g, int k, int j) {
  return g->tb ? g->B + (size_t)j * g->ldb + k : g->B + (size_t)k * g->ldb + j;
}

static void bf16_band(const bf16_job *g, int m0, int m1, int n0, int n1) {
  uint16_t *ap = bf16_apack, *bp = bf16_bpack;
  _Alignas(64) float acc[BLK * BLK];
  if (g->amx) _tile_loadconfig(&bf16_cfg);
  for (int jc = n0; jc < n1; jc += NC) {
    int nc = n1 - jc < NC ? n1 - jc : NC;
    for (int pc = 0; pc < g->K; pc += g->kc) {
      int kc = g->K - pc < g->kc ? g->K - pc : g->kc, nks = (kc + TK - 1) / TK;
      int first = pc == 0;
      int flags = (first && g->beta == 0.0f ? BF16_OVERWRITE : 0) |
                  (g->relu && pc + kc >= g->K ? BF16_RELU : 0);
      float beta = first ? g->beta : 1.0f;
      if (g->tb)
        bf16_pack_bt(bp, bf16_b_at(g, pc, jc), g->ldb, kc, nc, nks);
      else
        bf16_pack_b(bp, bf16_b_at(g, pc, jc), g->ldb, kc, nc, nks);
      for (int ic = m0; ic < m1; ic += MC) {
        int mc = m1 - ic < MC ? m1 - ic : MC;
        if (g->ta)
          bf16_pack_at(ap, bf16_a_at(g, ic, pc), g->lda, mc, kc, nks);
        else
          bf16_pack_a(ap, bf16_a_at(g, ic, pc), g->lda, mc, kc, nks);
        /* The tile loads are asm that the compiler does not see reading
         * memory: the packed stores must be done before them. */
        __asm__ volatile("" ::: "memory");
        for (int jr = 0; jr < nc; jr += BLK) {
          int nr = nc - jr < BLK ? nc - jr : BLK, nt = nr > TR ? 2 : 1;
          const uint16_t *b = bp + (size_t)(jr / TR) * nks * TS;
          for (int ir = 0; ir < mc; ir += BLK) {
            int mr = mc - ir < BLK ? mc - ir : BLK, mt = mr > TR ? 2 : 1;
            const uint16_t *a = ap + (size_t)(ir / TR) * nks * TS;
            if (g->amx)
              bf16_amx_any(mt, nt, acc, a, b, nks);
            else
              bf16_dp_block(mt, nt, acc, a, b, nks);
            bf16_write(g, acc, ic + ir, jc + jr, mr, nr, first, beta, flags);
          }
        }
      }
    }
  }
  /* Back to the init state: the next context switch saves no tile data. */
  if (g->amx) _tile_release();
}

static void bf16_task(void *ctx, int task, int thread) {
  const bf16_job *g = ctx;
  (void)thread; /* the packing buffers are thread-local */
  long long t0 = (long long)g->ntiles * task / g->ntasks;
  long long t1 = (long long)g->ntiles * (task + 1) / g->ntasks;
  if (g->split_m)
    bf16_band(g, (int)(t0 * BLK), (int)(t1 * BLK < g->M ? t1 * BLK : g->M), 0, g->N);
  else
    bf16_band(g, 0, g->M, (int)(t0 * BLK), (int)(t1 * BLK < g->N ? t1 * BLK : g->N));
}

static void bf16_run(int amx, cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta,
                     const float *bias, int relu, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) { /* no product: C = beta * S, as gemm_kernel.c */
    for (int i = 0; i < M; i++) {
      float *c = C + (size_t)i * ldc;
      for (int j = 0; j < N; j++) {
        float v = bias ? bias[j] : beta == 0.0f ? 0.0f : beta == 1.0f ? c[j] : beta * c[j];
        c[j] = relu ? (v > 0 ? v : 0) : v;
      }
    }
    return;
  }
  bf16_job g = {amx, ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, bias, relu, C, ldc, 0, 0, 0, 0};
  int nk = (K + KC - 1) / KC;
  g.kc = (K + nk - 1) / nk;
  int tm = (M + BLK - 1) / BLK, tn = (N + BLK - 1) / BLK;
  int nt = cnn_threads_size(pool);
  if (2.0 * M * N * K < BF16_MIN_PARALLEL_FLOPS) nt = 1;
  g.split_m = M >= N ? tm >= nt || tm >= tn : tn < nt && tm > tn;
  g.ntiles = g.split_m ? tm : tn;
  if (nt > g.ntiles) nt = g.ntiles;
  g.ntasks = nt;
  if (nt == 1)
    bf16_task(&g, 0, 0);
  else
    cnn_threads_run(pool, bf16_task, &g, nt);
}

void cnn_gemm_run_bf16_amx(CNN_GEMM_RUN_PARAMS) {
  bf16_run(1, pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, relu, C, ldc);
}

void cnn_gemm_run_bf16_avx512(CNN_GEMM_RUN_PARAMS) {
  bf16_run(0, pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, relu, C, ldc);
}

/* ---- products with B converted once (inference) --------------------------
 *
 * A trained layer's weights do not change between predictions, so a model
 * run for inference in bf16 converts them once (cnn_bf16_pack in gemm.c)
 * into 16-column VNNI panels that hold all of K:
 *   bp[panel][k pair][16 columns][2 k]
 * and a prediction then reads half the bytes of the fp32 weights and no fp32
 * copy at all. That matters most for one image at a time, where the dense
 * layer's product is a matrix-vector product whose time is the time to read
 * its weights: 11.5 MB as fp32, 5.8 MB as bf16, which two cores' L2 caches
 * hold between calls. Rows go four at a time, against four panels at a time
 * (16 accumulators), with VDPBF16PS: each row's k pair broadcast against a
 * row of B's pairs. Rows are converted to bf16 pairs PK_KB pairs at a time
 * into a thread-local buffer; when K needs more than one such block, the
 * partial sums wait in C (so a block's order of additions is fixed by K
 * alone, and results are bitwise identical for any pool size). */

#define PK_ROWS 4
#define PK_PANELS 4
#define PK_KB 4096 /* k pairs of A converted at a time (a multiple of 16) */

static _Thread_local _Alignas(64) uint16_t bf16_arows[PK_ROWS * 2 * PK_KB];

typedef struct bf16_packed_job {
  int M, N, K;
  const float *A; /* borrowed, like bp, bias and C */
  int lda;
  const uint16_t *bp;
  const float *bias;
  int relu;
  float *C;
  int ldc;
  int npanels, ntasks;
} bf16_packed_job;

/* Rows i0..i0+mr-1 of C over panels p..p+np-1, pairs kb..kb+nkb-1 (A's in
 * bf16_arows); mr and np are literals at each instantiation. */
static inline __attribute__((always_inline)) void bf16_packed_block(const int mr, const int np,
                                                                    const bf16_packed_job *g,
                                                                    int i0, int p, int kb,
                                                                    int nkb) {
  const size_t KP = (size_t)(g->K + 1) / 2, pstride = KP * 32;
  const uint16_t *b = g->bp + ((size_t)p * KP + kb) * 32;
  const uint32_t *a = (const uint32_t *)bf16_arows;
  const int last = kb + nkb >= (int)KP;
  __m512 acc[PK_ROWS][PK_PANELS];
  __mmask16 mask[PK_PANELS];
  for (int q = 0; q < np; q++) mask[q] = bf16_mask(g->N - 16 * (p + q));
  for (int r = 0; r < mr; r++)
    for (int q = 0; q < np; q++)
      acc[r][q] =
          kb == 0 ? _mm512_setzero_ps()
                  : _mm512_maskz_loadu_ps(mask[q], g->C + (size_t)(i0 + r) * g->ldc + 16 * (p + q));
  for (int kk = 0; kk < nkb; kk++) {
    __m512bh vb[PK_PANELS];
    for (int q = 0; q < np; q++)
      vb[q] = (__m512bh)_mm512_loadu_si512(b + q * pstride + (size_t)kk * 32);
    for (int r = 0; r < mr; r++) {
      __m512bh va = (__m512bh)_mm512_set1_epi32((int)a[r * PK_KB + kk]);
      for (int q = 0; q < np; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], va, vb[q]);
    }
  }
  for (int r = 0; r < mr; r++)
    for (int q = 0; q < np; q++) {
      int j = 16 * (p + q);
      __m512 x = acc[r][q];
      if (last && g->bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask[q], g->bias + j));
      if (last && g->relu) x = _mm512_max_ps(x, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(g->C + (size_t)(i0 + r) * g->ldc + j, mask[q], x);
    }
}

#define BF16_PACKED_ROWS(np)                     \
  switch (mr) {                                  \
  case 1:                                        \
    bf16_packed_block(1, np, g, i0, p, kb, nkb); \
    break;                                       \
  case 2:                                        \
    bf16_packed_block(2, np, g, i0, p, kb, nkb); \
    break;                                       \
  case 3:                                        \
    bf16_packed_block(3, np, g, i0, p, kb, nkb); \
    break;                                       \
  default:                                       \
    bf16_packed_block(4, np, g, i0, p, kb, nkb); \
    break;                                       \
  }

static void bf16_packed_panels(const bf16_packed_job *g, int p0, int p1) {
  const int KP = (g->K + 1) / 2;
  for (int i0 = 0; i0 < g->M; i0 += PK_ROWS) {
    int mr = g->M - i0 < PK_ROWS ? g->M - i0 : PK_ROWS;
    for (int kb = 0; kb < KP; kb += PK_KB) {
      int nkb = KP - kb < PK_KB ? KP - kb : PK_KB, nk = g->K - 2 * kb;
      if (nk > 2 * nkb) nk = 2 * nkb;
      for (int r = 0; r < mr; r++) {
        const float *src = g->A + (size_t)(i0 + r) * g->lda + 2 * (size_t)kb;
        uint16_t *dst = bf16_arows + (size_t)r * 2 * PK_KB;
        for (int k = 0; k < 2 * nkb; k += 32)
          _mm512_store_si512(
              dst + k, bf16_cvt(bf16_load(src + k, nk - k), bf16_load(src + k + 16, nk - k - 16)));
      }
      int p = p0;
      for (; p + PK_PANELS <= p1; p += PK_PANELS) BF16_PACKED_ROWS(PK_PANELS)
      for (; p < p1; p++) BF16_PACKED_ROWS(1)
    }
  }
}
#undef BF16_PACKED_ROWS

static void bf16_packed_task(void *ctx, int task, int thread) {
  const bf16_packed_job *g = ctx;
  (void)thread; /* the row buffer is thread-local */
  int groups = (g->npanels + PK_PANELS - 1) / PK_PANELS;
  int p0 = PK_PANELS * (int)((long long)groups * task / g->ntasks);
  int p1 = PK_PANELS * (int)((long long)groups * (task + 1) / g->ntasks);
  bf16_packed_panels(g, p0, p1 < g->npanels ? p1 : g->npanels);
}

void cnn_gemm_run_bf16_packed(cnn_threads *pool, int M, int N, int K, const float *A, int lda,
                              const uint16_t *bp, const float *bias, int relu, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) { /* no product: C = the bias row (or 0), then the ReLU */
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        float v = bias ? bias[j] : 0.0f;
        C[(size_t)i * ldc + j] = relu ? (v > 0 ? v : 0) : v;
      }
    return;
  }
  bf16_packed_job g = {M, N, K, A, lda, bp, bias, relu, C, ldc, (N + 15) / 16, 1};
  int nt = cnn_threads_size(pool);
  /* Each task a whole number of 4-panel groups, and enough work to pay
   * for waking a thread. */
  int groups = (g.npanels + PK_PANELS - 1) / PK_PANELS;
  if (2.0 * M * N * K < BF16_MIN_PARALLEL_FLOPS / 4) nt = 1;
  if (nt > groups) nt = groups;
  g.ntasks = nt;
  if (nt == 1)
    bf16_packed_panels(&g, 0, g.npanels);
  else
    cnn_threads_run(pool, bf16_packed_task, &g, nt);
}
