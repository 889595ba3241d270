/*
 * gemm_kernel.c - the blocked matrix product behind cnn_gemm and
 * cnn_gemm_bias (see gemm.h): C = alpha * op(A) @ op(B) + beta * C in single
 * precision, row-major, for one instruction set.
 *
 * The unit of work is a tile: MR x NR elements of C held in registers while a
 * micro-kernel sums kc rank-1 updates (one FMA chain per element, in k order),
 * then writes C = alpha*acc + beta*C (first k block; only alpha*acc when
 * beta == 0) or C = alpha*acc + C (later k blocks). K is cut into equal blocks
 * of at most KC, so kc depends on K alone. B reaches the kernel packed
 * (NR-column panels, k-major, zero-padded past N) unless a band has a single
 * row of tiles (see below); A is read in place through two strides, except
 * in the blocked nest below, which packs it.
 *
 * Loop nests, chosen per band of C (all give every element the same
 * arithmetic, so the choice never changes a result):
 *
 *  one row of C (batch-1 inference, row-major B): B streamed in place
 *     along its rows (vector builds)
 *  one row of tiles (<= MR rows, row-major B): tiles read B in place
 *     (packing would copy each element to use it once); a last narrow tile
 *     is packed
 *
 *  direct A  (every row-major A; A^T when its B block fits L2)
 *     for jc step ncd: for pc: pack B[pc:+kc, jc:+ncd]  (kc*ncd floats fit L2)
 *       few rows (<= MC; dense layers):  for jr: for ir: tile
 *           (A's k block sits in L1/L2; each B panel, once in L1, serves all rows;
 *           whole tiles fetch the next block of row-major B into L2 meanwhile)
 *       many rows (convolutions):        for ir: for jr: tile
 *           (MR rows of A, once in L1, sweep the B block in L2)
 *       K <= 10 (AVX-512; the first convolution): for jr: every row
 *           (the B panel in registers, rows streamed: gemm_kreg)
 *  blocked   (A^T with wide B: the Goto/BLIS order)
 *     for jc step NC: for pc: pack B (L3); for ic step MC: pack A (L2)
 *       for jr: for ir: tile
 *
 * Two shapes run as C^T = op(B)^T @ op(A)^T, with the same arithmetic per
 * element (gemm_run): a narrow C (the output layer's 10 columns would fill
 * 10 of a tile's lanes) and a dense layer's input gradient at small batches
 * (which then reads its kernel in place instead of transposing it). A
 * narrow C with A transposed and one k block (the output layer's weight
 * gradient) computes C^T's tiles and turns each back in registers
 * (gemm_at_narrow_block), so no C^T is stored.
 *
 * Measured on the model's shapes, packing a row-major A never paid: each A
 * row meets few B panels (N is 32..576 in convolutions) and dense layers have
 * few rows. Packing reads its source along memory, row by row, never down a
 * strided panel, which on wide operands defeats the hardware prefetchers.
 *
 * Threads: C is split into disjoint bands along M or along N, with band edges
 * on the tile grid anchored at (0, 0). So every element lies in a tile of the
 * same height and width, summed over the same k blocks in the same order,
 * whatever the pool size: results are bitwise identical for any number of
 * threads. Each thread packs what its band needs. The split runs along the
 * longer side of C: the big operand along it (A for M, B for N) is divided
 * between the threads, and only the small one is read by all of them; but
 * a small B goes to every thread rather than a part of each row of C. A
 * single row of C (batch-1 inference), or of tiles too narrow to give each
 * thread columns (the first convolution's weight gradient), is split by k
 * block instead: each block's sums start from zero, go to a buffer and are
 * written back in k order by the caller, the arithmetic of one thread.
 *
 * Packing buffers are fixed-size thread-local arrays (MC*KC + KC*NC floats,
 * 1.8 MB per thread that ever calls cnn_gemm): the kernel cannot fail, so it
 * cannot allocate, and the pool's threads and any caller thread each get
 * their own.
 *
 * This file is compiled once per instruction set (GEMM_ISA, set by CMake
 * with the matching -m flags; see isa.h) into cnn_gemm_run_<isa>, which
 * gemm.c dispatches to: 0 = baseline (a portable C tile the compiler
 * vectorises, 4x8), 1 = AVX2+FMA (6x16: 12 ymm accumulators), 2 = AVX-512
 * (12x32: 24 zmm accumulators, tails through mask registers). The vector
 * code is written once over the GV_* operations below, so the AVX2 and
 * AVX-512 kernels are the same logic at two widths; with the same k blocks
 * (KC does not depend on the ISA) and one FMA chain per element, they give
 * the same results bit for bit. Never -ffast-math: beta == 0 must ignore NaN
 * in C, and FMA contraction must not differ between code paths.
 */
#include <stddef.h>
#include <string.h>

#include "gemm.h"

#ifndef GEMM_ISA
#error "GEMM_ISA must be 0 (baseline), 1 (avx2) or 2 (avx512): see CMakeLists.txt"
#endif

#if GEMM_ISA == 2
#include <immintrin.h>

#include "transpose16.h"
#define GEMM_VEC 1
#define GEMM_RUN cnn_gemm_run_avx512
#define GEMM_RUN_PACKED cnn_gemm_run_packed_avx512
#define GEMM_PACK cnn_gemm_pack_avx512
#define GEMM_PACKED_SIZE cnn_gemm_packed_size_avx512
#define VW 16 /* floats per vector */
#define MR 12 /* rows of a C tile: 24 zmm accumulators + 2 for B + 1 for A */
typedef __m512 gv;
typedef __mmask16 gm;
#define GV_ZERO() _mm512_setzero_ps()
#define GV_SET1(x) _mm512_set1_ps(x)
#define GV_LOAD(p) _mm512_loadu_ps(p)
#define GV_LOADA(p) _mm512_load_ps(p)
#define GV_STORE(p, v) _mm512_storeu_ps(p, v)
#define GV_STOREA(p, v) _mm512_store_ps(p, v)
#define GV_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define GV_MUL(a, b) _mm512_mul_ps(a, b)
#define GV_ADD(a, b) _mm512_add_ps(a, b)
#define GV_MAX(a, b) _mm512_max_ps(a, b)
/* The first n lanes (n may be <= 0 or >= VW). */
#define GV_MASK(n) ((gm)((n) >= VW ? 0xFFFFu : (n) <= 0 ? 0u : (1u << (n)) - 1u))
#define GV_MLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define GV_MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#elif GEMM_ISA == 1
#include <immintrin.h>
#define GEMM_VEC 1
#define GEMM_RUN cnn_gemm_run_avx2
#define GEMM_RUN_PACKED cnn_gemm_run_packed_avx2
#define GEMM_PACK cnn_gemm_pack_avx2
#define GEMM_PACKED_SIZE cnn_gemm_packed_size_avx2
#define VW 8
#define MR 6 /* rows of a C tile: 12 ymm accumulators + 2 for B + 1 for A */
typedef __m256 gv;
typedef __m256i gm;
#define GV_ZERO() _mm256_setzero_ps()
#define GV_SET1(x) _mm256_set1_ps(x)
#define GV_LOAD(p) _mm256_loadu_ps(p)
#define GV_LOADA(p) _mm256_load_ps(p)
#define GV_STORE(p, v) _mm256_storeu_ps(p, v)
#define GV_STOREA(p, v) _mm256_store_ps(p, v)
#define GV_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define GV_MUL(a, b) _mm256_mul_ps(a, b)
#define GV_ADD(a, b) _mm256_add_ps(a, b)
#define GV_MAX(a, b) _mm256_max_ps(a, b)
#define GV_MASK(n) \
  _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define GV_MLOAD(p, m) _mm256_maskload_ps(p, m)
#define GV_MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#else
#define GEMM_VEC 0
#define GEMM_RUN cnn_gemm_run_baseline
#define GEMM_RUN_PACKED cnn_gemm_run_packed_baseline
#define GEMM_PACK cnn_gemm_pack_baseline
#define GEMM_PACKED_SIZE cnn_gemm_packed_size_baseline
#define VW 4
#define MR 4
#endif
#define NR (2 * VW) /* columns of a C tile: two vectors */

/* Returns its second operand for NaN, so a fused ReLU maps NaN to 0. */
#define GV_RELU(a) GV_MAX(a, GV_ZERO())

/* Cache blocking, sized for 32 KB L1d and 512 KB L2 per core (AVX2
 * machines; AVX-512 ones have 48 KB and 1-2 MB). KC: the depth of a k block,
 * the same for every instruction set so that they sum in the same order; a
 * B panel (KC*NR*4 = 24 KB with AVX2, 48 KB with AVX-512) stays in L1 or L2
 * while tiles use it (256..512 measured within 4% of each other with AVX2;
 * 384 cuts K = 576, the dense layer, into 2 x 288). MC: a packed A block
 * (MC*KC*4 = 216 KB) stays in L2.
 * NC: the blocked nest's B block (KC*NC*4 = 1.5 MB) stays in L3. L2B: the
 * direct nest's B block (256 KB) stays in L2 beside A. */
#define KC 384
#define MC 144
#define NC 1024
#define L2B (64 * 1024)

/* How a tile's writeback treats C (see gemm_row_vec): overwrite it (the
 * first k block with beta == 0) rather than add beta times its source; and
 * clamp at 0 (the last k block of a product with a fused ReLU). */
#define GEMM_OVERWRITE 1
#define GEMM_RELU 2

/* Below this many flops (2*M*N*K, about 6 us of one core) handing work to
 * the pool costs more than it saves; measured on the model's shapes (the
 * third convolution at batch 1, 6.6e5 flops: 12 -> 8 us on 2 threads). */
#define GEMM_MIN_PARALLEL_FLOPS 5e5

/* An op(B) of at most this many floats (256 KB) is cheap for every thread
 * to pack whole (see gemm_run's split). */
#define GEMM_SMALL_B (64 * 1024)

_Static_assert(MC % MR == 0 && NC % NR == 0, "blocks must hold whole tiles");

/* Packed panels; 64-byte aligned for aligned vector loads. */
static _Thread_local _Alignas(64) float gemm_apack[MC * KC];
static _Thread_local _Alignas(64) float gemm_bpack[KC * NC];
#if GEMM_VEC
/* C^T of a narrow product (gemm_run), at most GEMM_CT floats. */
#define GEMM_CT 4096
static _Thread_local _Alignas(64) float gemm_ct[GEMM_CT];
#endif

/* ---- packing ----------------------------------------------------------- */

/* Packs op(A)[0:mc, 0:kc] = A^T (A stored k-major, already offset to the
 * block) into MR-row micro-panels ap[panel][k][i], rows past mc zero. Only
 * the blocked nest packs A, and only a transposed one: a row-major A is
 * always read in place. op(A) rows are runs of memory, so this walks A along
 * them, k by k; the writes scatter over panels that sit in cache. */
static void gemm_pack_at(float *restrict ap, const float *restrict A, int lda, int mc, int kc) {
  int full = mc / MR * MR, mr = mc - full; /* whole panels, then the rows left */
  for (int k = 0; k < kc; k++) {
    const float *src = A + (size_t)k * lda;
    float *dst = ap + (size_t)k * MR;
    for (int ir = 0; ir < full; ir += MR, dst += (size_t)MR * kc)
      for (int i = 0; i < MR; i++) dst[i] = src[ir + i];
    if (mr)
      for (int i = 0; i < MR; i++) dst[i] = i < mr ? src[full + i] : 0.0f;
  }
}

#if GEMM_VEC
/* dst[kk*NR + i] = src[i*lds + kk] for i < 8, kk < nk <= 8: an 8x8
 * transpose, of which only the first nk columns of src are read (masked
 * loads) and the first nk rows of dst written. */
static inline void gemm_transpose8(float *restrict dst, const float *restrict src, size_t lds,
                                   int nk) {
  const __m256i m =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(nk), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 r0 = _mm256_maskload_ps(src, m), r1 = _mm256_maskload_ps(src + lds, m);
  __m256 r2 = _mm256_maskload_ps(src + 2 * lds, m), r3 = _mm256_maskload_ps(src + 3 * lds, m);
  __m256 r4 = _mm256_maskload_ps(src + 4 * lds, m), r5 = _mm256_maskload_ps(src + 5 * lds, m);
  __m256 r6 = _mm256_maskload_ps(src + 6 * lds, m), r7 = _mm256_maskload_ps(src + 7 * lds, m);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  __m256 out[8] = {_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                   _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                   _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                   _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
  for (int kk = 0; kk < nk; kk++) _mm256_store_ps(dst + kk * NR, out[kk]);
}
#endif

/* Packs op(B)[0:kc, 0:nc] into NR-column micro-panels bp[panel][k][j],
 * columns past nc zero. */
static void gemm_pack_b(float *restrict bp, const float *restrict B, int ldb, int tb, int kc,
                        int nc) {
  int full = nc / NR * NR, nr = nc - full;
  if (!tb) {
    /* op(B) rows are rows of B: read each along its length, the row four
     * ahead fetched meanwhile: a block's rows are short runs far apart (the
     * first dense layer's kernel: 896 bytes every 20 KB), too short for the
     * hardware prefetchers (its forward at batch 32, interleaved pairs: 6
     * to 15 % faster on one thread and on two, on a Zen 4). */
    for (int k = 0; k < kc; k++) {
      const float *src = B + (size_t)k * ldb;
      float *dst = bp + (size_t)k * NR;
      for (int jr = 0; jr < full; jr += NR, dst += (size_t)NR * kc) {
        for (int l = 0; l < NR; l += 16) __builtin_prefetch(src + 4 * (size_t)ldb + jr + l);
        for (int j = 0; j < NR; j++) dst[j] = src[jr + j];
      }
      if (nr) {
#if GEMM_VEC
        /* Masked loads read no byte past the row (measured: the scalar
         * select loop took 70% of a 32x16x5000 product with zmm). */
        GV_STORE(dst, GV_MLOAD(src + full, GV_MASK(nr)));
        GV_STORE(dst + VW, GV_MLOAD(src + full + VW, GV_MASK(nr - VW)));
#else
        for (int j = 0; j < NR; j++) dst[j] = j < nr ? src[full + j] : 0.0f;
#endif
      }
    }
    return;
  }
  /* op(B) columns are rows of B: a transpose, 8x8 blocks where possible. */
  for (int jr = 0; jr < nc; jr += NR, bp += (size_t)NR * kc) {
    int n = nc - jr < NR ? nc - jr : NR, k0 = 0;
#if GEMM_VEC
    if (n == NR) {
      const float *src = B + (size_t)jr * ldb;
      for (; k0 < kc; k0 += 8)
        for (int j8 = 0; j8 < NR; j8 += 8)
          gemm_transpose8(bp + (size_t)k0 * NR + j8, src + (size_t)j8 * ldb + k0, (size_t)ldb,
                          kc - k0 < 8 ? kc - k0 : 8);
    }
#endif
    for (int j = 0; j < n; j++) {
      const float *src = B + (size_t)(jr + j) * ldb;
      for (int k = k0; k < kc; k++) bp[(size_t)k * NR + j] = src[k];
    }
    for (int j = n; j < NR; j++)
      for (int k = 0; k < kc; k++) bp[(size_t)k * NR + j] = 0.0f;
  }
}

/* ---- micro-kernels ------------------------------------------------------- */

#if GEMM_VEC

/* One row of a tile's writeback: C[i][0:nr] = alpha*acc + beta*S, or
 * alpha*acc with GEMM_OVERWRITE, where S is C itself or the bias row (si),
 * then max(., 0) with GEMM_RELU; partial rows go through masks, with the
 * same arithmetic as full ones. */
static inline __attribute__((always_inline)) void gemm_row_vec(float *ci, const float *si, gv c0,
                                                               gv c1, gv va, gv vb, int flags,
                                                               int full, gm m0, gm m1) {
  gv r0, r1;
  if (flags & GEMM_OVERWRITE) {
    r0 = GV_MUL(va, c0);
    r1 = GV_MUL(va, c1);
  } else if (full) {
    r0 = GV_FMA(va, c0, GV_MUL(vb, GV_LOAD(si)));
    r1 = GV_FMA(va, c1, GV_MUL(vb, GV_LOAD(si + VW)));
  } else {
    r0 = GV_FMA(va, c0, GV_MUL(vb, GV_MLOAD(si, m0)));
    r1 = GV_FMA(va, c1, GV_MUL(vb, GV_MLOAD(si + VW, m1)));
  }
  if (flags & GEMM_RELU) {
    r0 = GV_RELU(r0);
    r1 = GV_RELU(r1);
  }
  if (full) {
    GV_STORE(ci, r0);
    GV_STORE(ci + VW, r1);
  } else {
    GV_MSTORE(ci, m0, r0);
    GV_MSTORE(ci + VW, m1, r1);
  }
}

/* Rows of B that a tile fetches into L2 while it runs, spread over its k
 * loop: `rows` runs of n floats, ld apart, from p (NULL: none). */
typedef struct gemm_ahead {
  const float *p;
  size_t ld;
  int n, rows;
} gemm_ahead;

/* Rows of a tile, for the X-macros below. */
#if MR == 12
#define GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#else
#define GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#endif

/* The MR x NR tile: c<i>_<h> = sum_k A(i, k) * B(k, h*VW : h*VW+VW), A(i, k)
 * at a[i*rsa + k*csa] and B(k, j) at b[k*rsb + j] (rsb = NR when packed).
 * `mr` and the strides are literals or loop invariants at each
 * instantiation; accumulators are named variables (not an array) so that
 * they surely live in registers. */
static inline __attribute__((always_inline)) void gemm_tile_vec(
    const int mr, const int wide, int nr, int kc, const float *restrict a, size_t rsa, size_t csa,
    const float *restrict b, size_t rsb, float *c, int ldc, const float *s, size_t lds, float alpha,
    float beta, int flags, gemm_ahead ah) {
#define GEMM_DECL(i) gv c##i##_0 = GV_ZERO(), c##i##_1 = GV_ZERO();
  GEMM_ROWS(GEMM_DECL)
#undef GEMM_DECL
  /* Fetches the tile of C now, so that its writeback does not wait on
   * memory: the first dense layer's weight gradient (576 x 5000, K = 32)
   * writes 11.5 MB that no cache holds, 8% faster on one thread (a
   * prefetch for writing measured no better). */
#define GEMM_PF_ROW(i)                                                \
  if (mr > i) {                                                       \
    __builtin_prefetch(c + (size_t)i * ldc, 0, 3);                    \
    if (wide) __builtin_prefetch(c + (size_t)i * ldc + NR - 1, 0, 3); \
  }
  GEMM_ROWS(GEMM_PF_ROW)
#undef GEMM_PF_ROW
  int gap = ah.p && ah.rows ? kc / ah.rows : 0, wait = 0;
  for (int k = 0; k < kc; k++) {
    if (ah.p && ah.rows && --wait <= 0) {
      for (int j = 0; j < ah.n; j += 16) __builtin_prefetch(ah.p + j, 0, 2);
      __builtin_prefetch(ah.p + ah.n - 1, 0, 2);
      ah.p += ah.ld;
      ah.rows--;
      wait = gap;
    }
    gv b0 = GV_LOAD(b), b1 = wide ? GV_LOAD(b + VW) : GV_ZERO(), ai;
    /* Keeps b0 and b1 in registers. For small mr GCC otherwise folds the
     * loads into every FMA as memory operands, which saturates the load
     * ports (measured 30% slower at mr = 4 with AVX2). */
    __asm__("" : "+v"(b0), "+v"(b1));
#define GEMM_FMA_ROW(i)                            \
  if (mr > i) {                                    \
    ai = GV_SET1(a[i * rsa]);                      \
    c##i##_0 = GV_FMA(ai, b0, c##i##_0);           \
    if (wide) c##i##_1 = GV_FMA(ai, b1, c##i##_1); \
  }
    GEMM_ROWS(GEMM_FMA_ROW)
#undef GEMM_FMA_ROW
    a += csa;
    b += rsb;
  }

  gv va = GV_SET1(alpha), vb = GV_SET1(beta);
  gm m0 = GV_MASK(nr), m1 = GV_MASK(nr - VW);
  int full = nr == NR;
#define GEMM_WRITE_ROW(i) \
  if (mr > i)             \
    gemm_row_vec(c + (size_t)i * ldc, s + i * lds, c##i##_0, c##i##_1, va, vb, flags, full, m0, m1);
  GEMM_ROWS(GEMM_WRITE_ROW)
#undef GEMM_WRITE_ROW
}

/* One row of C from B read in place along its rows: acc[j] += a_k * B[k][j]
 * for k in order, then the writeback of the tile; every element gets the
 * tile's arithmetic (one FMA chain in k order), so the result is the same
 * bit for bit. Batch-1 inference streams each dense kernel once, and a tile
 * would walk B down its columns: 64 bytes per 20 KB row, a TLB miss each.
 * Here up to GEMM_STREAM columns are summed in a buffer that stays in L1 (24
 * KB), and B is read along its rows: for the notebook's dense layer whole
 * rows, so the 11.5 MB kernel streams from start to end (measured with AVX2:
 * 2048-column chunks 25% slower, 512 50%). */
#define GEMM_STREAM 6144
static _Thread_local _Alignas(64) float gemm_acc[GEMM_STREAM];

/* acc[0:nc] = sum over k < kc of a_k * B[k][0:nc], in k order: the chain of
 * FMAs a tile would run for each element, from zero. acc is 64-byte aligned
 * with room for nc rounded up to VW. */
static void gemm_row_acc(int kc, int nc, const float *restrict a, size_t csa,
                         const float *restrict b, size_t ldb, float *restrict acc) {
  int full = nc / VW * VW, tail = nc - full;
  /* The last nc % VW columns go through masked loads (lanes past nc read as
   * zero, never from memory) with the same arithmetic. */
  const gm mask = GV_MASK(tail);
  int k = 0, end = tail ? full + VW : full;
  memset(acc, 0, sizeof(float) * (size_t)end);
  /* Four rows per pass: one load and store of acc per four FMAs. */
  for (; k + 4 <= kc; k += 4, a += 4 * csa, b += 4 * ldb) {
    gv a0 = GV_SET1(a[0]), a1 = GV_SET1(a[csa]);
    gv a2 = GV_SET1(a[2 * csa]), a3 = GV_SET1(a[3 * csa]);
    for (int j = 0; j < full; j += VW) {
      gv v = GV_LOADA(acc + j);
      v = GV_FMA(a0, GV_LOAD(b + j), v);
      v = GV_FMA(a1, GV_LOAD(b + ldb + j), v);
      v = GV_FMA(a2, GV_LOAD(b + 2 * ldb + j), v);
      v = GV_FMA(a3, GV_LOAD(b + 3 * ldb + j), v);
      GV_STOREA(acc + j, v);
    }
    if (tail) {
      gv v = GV_LOADA(acc + full);
      v = GV_FMA(a0, GV_MLOAD(b + full, mask), v);
      v = GV_FMA(a1, GV_MLOAD(b + ldb + full, mask), v);
      v = GV_FMA(a2, GV_MLOAD(b + 2 * ldb + full, mask), v);
      v = GV_FMA(a3, GV_MLOAD(b + 3 * ldb + full, mask), v);
      GV_STOREA(acc + full, v);
    }
  }
  for (; k < kc; k++, a += csa, b += ldb) {
    gv a0 = GV_SET1(a[0]);
    for (int j = 0; j < full; j += VW)
      GV_STOREA(acc + j, GV_FMA(a0, GV_LOAD(b + j), GV_LOADA(acc + j)));
    if (tail) GV_STOREA(acc + full, GV_FMA(a0, GV_MLOAD(b + full, mask), GV_LOADA(acc + full)));
  }
}

/* The tile's writeback (gemm_row_vec) for one row of nc columns. */
static void gemm_row_write(int nc, const float *acc, float *c, const float *s, float alpha,
                           float beta, int flags) {
  int full = nc / VW * VW, tail = nc - full, end = tail ? full + VW : full;
  const gm mask = GV_MASK(tail);
  gv va = GV_SET1(alpha), vb = GV_SET1(beta);
  for (int j = 0; j < end; j += VW) {
    gv r = GV_LOADA(acc + j);
    int last = j == full; /* the masked tail */
    if (flags & GEMM_OVERWRITE)
      r = GV_MUL(va, r);
    else
      r = GV_FMA(va, r, GV_MUL(vb, last ? GV_MLOAD(s + j, mask) : GV_LOAD(s + j)));
    if (flags & GEMM_RELU) r = GV_RELU(r);
    if (last)
      GV_MSTORE(c + j, mask, r);
    else
      GV_STORE(c + j, r);
  }
}

static void gemm_row_stream(int kc, int nc, const float *restrict a, size_t csa,
                            const float *restrict b, size_t ldb, float *c, const float *s,
                            float alpha, float beta, int flags) {
  gemm_row_acc(kc, nc, a, csa, b, ldb, gemm_acc);
  gemm_row_write(nc, gemm_acc, c, s, alpha, beta, flags);
}

/* Tiles at most VW wide (the 10-unit output layer) skip the second vector. */
#define GEMM_TILE_CASE(i, RSA, CSA)                                                            \
  case i + 1:                                                                                  \
    if (nr > VW)                                                                               \
      gemm_tile_vec(i + 1, 1, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags, \
                    (gemm_ahead){0});                                                          \
    else                                                                                       \
      gemm_tile_vec(i + 1, 0, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags, \
                    (gemm_ahead){0});                                                          \
    break;
#define GEMM_TILE_CASE_P(i) GEMM_TILE_CASE(i, 1, MR)
#define GEMM_TILE_CASE_R(i) GEMM_TILE_CASE(i, (size_t)lda, 1)
#define GEMM_TILE_CASE_C(i) GEMM_TILE_CASE(i, 1, (size_t)lda)
#define GEMM_TILE_SWITCH(CASE) \
  switch (mr) { GEMM_ROWS(CASE) }

#else

/* Portable tile: the same sums in the same k order, written with GCC/Clang
 * vector extensions (lowered to SSE2, NEON or scalar code by the compiler)
 * because plain loops get vectorised along k here, into slow in-order
 * reductions. `mr` is a literal at each instantiation, so the i loops unroll
 * and the 4 x 2 accumulators stay in registers. */
typedef float gemm_v4 __attribute__((vector_size(16)));

static inline __attribute__((always_inline)) void gemm_tile_any(
    const int mr, int nr, int kc, const float *restrict a, size_t rsa, size_t csa,
    const float *restrict b, size_t rsb, float *c, int ldc, const float *s, size_t lds, float alpha,
    float beta, int flags) {
  gemm_v4 acc[MR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = (gemm_v4){0, 0, 0, 0};
  for (int k = 0; k < kc; k++) {
    gemm_v4 b0, b1;
    memcpy(&b0, b, sizeof b0);
    memcpy(&b1, b + 4, sizeof b1);
    for (int i = 0; i < MR; i++) {
      if (i < mr) {
        float ai = a[i * rsa];
        acc[i][0] += ai * b0;
        acc[i][1] += ai * b1;
      }
    }
    a += csa;
    b += rsb;
  }
  for (int i = 0; i < mr; i++) {
    float r[NR], *ci = c + (size_t)i * ldc;
    const float *si = s + (size_t)i * lds;
    memcpy(r, &acc[i][0], sizeof acc[i][0]);
    memcpy(r + 4, &acc[i][1], sizeof acc[i][1]);
    if (flags & GEMM_OVERWRITE)
      for (int j = 0; j < nr; j++) r[j] = alpha * r[j];
    else
      for (int j = 0; j < nr; j++) r[j] = alpha * r[j] + beta * si[j];
    if (flags & GEMM_RELU)
      for (int j = 0; j < nr; j++) r[j] = r[j] > 0 ? r[j] : 0;
    memcpy(ci, r, (size_t)nr * sizeof *ci);
  }
}

#define GEMM_ROWS(X) X(0) X(1) X(2) X(3)
#define GEMM_TILE_CASE(i, RSA, CSA)                                                        \
  case i + 1:                                                                              \
    gemm_tile_any(i + 1, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;
#define GEMM_TILE_CASE_P(i) GEMM_TILE_CASE(i, 1, MR)
#define GEMM_TILE_CASE_R(i) GEMM_TILE_CASE(i, (size_t)lda, 1)
#define GEMM_TILE_CASE_C(i) GEMM_TILE_CASE(i, 1, (size_t)lda)
#define GEMM_TILE_SWITCH(CASE) \
  switch (mr) { GEMM_ROWS(CASE) }

#endif

/* The three ways a tile reads A: packed (rows adjacent, k steps of MR), in
 * place from row-major A (rows lda apart, k adjacent), in place from A^T
 * (rows adjacent, k steps of lda). B comes packed (rsb = NR) except in the
 * one-row-of-tiles case of gemm_band, which reads row-major B in place. */
static void gemm_tile_packed(int mr, int nr, int kc, const float *a, const float *b, float *c,
                             int ldc, const float *s, size_t lds, float alpha, float beta,
                             int flags) {
  const size_t rsb = NR;
  GEMM_TILE_SWITCH(GEMM_TILE_CASE_P)
}

static void gemm_tile_rows(int mr, int nr, int kc, const float *a, int lda, const float *b,
                           size_t rsb, float *c, int ldc, const float *s, size_t lds, float alpha,
                           float beta, int flags) {
  GEMM_TILE_SWITCH(GEMM_TILE_CASE_R)
}

static void gemm_tile_cols(int mr, int nr, int kc, const float *a, int lda, const float *b,
                           size_t rsb, float *c, int ldc, const float *s, size_t lds, float alpha,
                           float beta, int flags) {
  GEMM_TILE_SWITCH(GEMM_TILE_CASE_C)
}

#if GEMM_VEC
/* A whole tile of row-major A on a packed B panel that fetches rows of the
 * next B block meanwhile (see gemm_band). */
static void gemm_tile_rows_ahead(int kc, const float *a, int lda, const float *b, float *c, int ldc,
                                 const float *s, size_t lds, float alpha, float beta, int flags,
                                 gemm_ahead ah) {
  gemm_tile_vec(MR, 1, NR, kc, a, (size_t)lda, 1, b, NR, c, ldc, s, lds, alpha, beta, flags, ah);
}
#endif

/* ---- loop nests and threads ---------------------------------------------- */

/* One call's arguments plus the split, shared by the tasks. */
typedef struct gemm_job {
  int ta, tb, M, N, K;
  float alpha, beta;
  const float *A; /* borrowed, like B and C */
  int lda;
  const float *B;
  int ldb;
  float *C;
  int ldc;
  const float *bias; /* NULL, or N values that stand for C in the first k block */
  int relu;          /* the last k block's writeback clamps at 0 */
  int kc;            /* the k block, from K alone */
  int split_m;       /* bands along M (1) or N (0) */
  int ntiles;        /* tiles along the split dimension */
  int ntasks;
  float *parts;      /* one-row products split by k block: each block's sums */
  const float *bpre; /* B packed once by GEMM_PACK, or NULL: pack per block */
} gemm_job;

/* Addresses of op(A)[i][k] and op(B)[k][j] in the stored matrices. */
static const float *gemm_a_at(const gemm_job *g, int i, int k) {
  return g->ta ? g->A + (size_t)k * g->lda + i : g->A + (size_t)i * g->lda + k;
}
static const float *gemm_b_at(const gemm_job *g, int k, int j) {
  return g->tb ? g->B + (size_t)j * g->ldb + k : g->B + (size_t)k * g->ldb + j;
}

/* What the writeback of a tile at column j of C adds beta times: C itself,
 * or in the first k block (first) of a biased product the bias row, the same
 * for every row (stride 0). */
static const float *gemm_src(const gemm_job *g, const float *c, int j, int first, size_t *lds) {
  if (first && g->bias) {
    *lds = 0;
    return g->bias + j;
  }
  *lds = (size_t)g->ldc;
  return c;
}

/* The writeback flags of the k block at pc (kc deep). */
static int gemm_flags(const gemm_job *g, int pc, int kc) {
  return (pc == 0 && g->beta == 0.0f ? GEMM_OVERWRITE : 0) |
         (g->relu && pc + kc >= g->K ? GEMM_RELU : 0);
}

/* A tile at (i, j) of C that reads op(A) in place from a = &op(A)[i][k]. */
static void gemm_tile_direct(const gemm_job *g, int mr, int nr, int kc, const float *a,
                             const float *b, size_t rsb, int i, int j, int first, float beta,
                             int flags) {
  float *c = g->C + (size_t)i * g->ldc + j;
  size_t lds;
  const float *s = gemm_src(g, c, j, first, &lds);
  if (g->ta)
    gemm_tile_cols(mr, nr, kc, a, g->lda, b, rsb, c, g->ldc, s, lds, g->alpha, beta, flags);
  else
    gemm_tile_rows(mr, nr, kc, a, g->lda, b, rsb, c, g->ldc, s, lds, g->alpha, beta, flags);
}

#if GEMM_ISA == 2
/* Products with K <= GEMM_KREG (the first convolution, K = 9; the output
 * layer's input gradient, K = 10): a tile's k loop is too short to pay for
 * the tile's setup and writeback (K = 9 ran at 70% of the FMA peak). Here a
 * B panel stays in registers (2*kc of the 32 zmm) while the rows of the band
 * stream past it, two at a time: each element is the tile's FMA chain in k
 * order from zero and the tile's writeback (gemm_row_vec), so the result is
 * bit for bit what tiles give. AVX2's 16 registers hold a panel's halves
 * only, in turn, which measured slower than its 6x16 tiles. */
#define GEMM_KREG 10
#define GEMM_KREG_DEPTHS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10)

/* The writeback of one row (gemm_row_vec's arithmetic): sv is beta*S, or
 * the bias (lds == 0) hoisted out of the row loop. With alpha == 1 (unit),
 * alpha*acc is acc and alpha*acc + sv one rounded sum, the same bits in
 * fewer operations: the writeback is a tenth of the small-K kernel's work. */
static inline __attribute__((always_inline)) void gemm_row_lean(
    const int wide, float *ci, const float *si, gv c0, gv c1, gv sv0, gv sv1, int hoisted, gv va,
    gv vb, float beta, int unit, int flags, int full, gm mk0, gm mk1) {
  if (flags & GEMM_OVERWRITE) {
    if (!unit) c0 = GV_MUL(va, c0), c1 = GV_MUL(va, c1);
  } else {
    if (!hoisted) {
      sv0 = full ? GV_LOAD(si) : GV_MLOAD(si, mk0);
      sv1 = full ? GV_LOAD(si + VW) : GV_MLOAD(si + VW, mk1);
      if (beta != 1.0f) sv0 = GV_MUL(vb, sv0), sv1 = GV_MUL(vb, sv1);
    }
    if (unit) {
      c0 = GV_ADD(c0, sv0);
      if (wide) c1 = GV_ADD(c1, sv1);
    } else {
      c0 = GV_FMA(va, c0, sv0);
      if (wide) c1 = GV_FMA(va, c1, sv1);
    }
  }
  if (flags & GEMM_RELU) {
    c0 = GV_RELU(c0);
    if (wide) c1 = GV_RELU(c1);
  }
  if (full) {
    GV_STORE(ci, c0);
    GV_STORE(ci + VW, c1);
  } else {
    GV_MSTORE(ci, mk0, c0);
    if (wide) GV_MSTORE(ci + VW, mk1, c1);
  }
}

static inline __attribute__((always_inline)) void gemm_kreg_panel(const int kc, const int wide,
                                                                  const gemm_job *g,
                                                                  const float *bp, int m0, int m1,
                                                                  int j, int nr, float beta,
                                                                  int flags) {
  gv b0[GEMM_KREG], b1[GEMM_KREG];
  for (int k = 0; k < kc; k++) {
    b0[k] = GV_LOAD(bp + (size_t)k * NR);
    b1[k] = wide ? GV_LOAD(bp + (size_t)k * NR + VW) : GV_ZERO();
  }
  const size_t rsa = g->ta ? 1 : (size_t)g->lda, csa = g->ta ? (size_t)g->lda : 1;
  const size_t ldc = (size_t)g->ldc;
  const gv va = GV_SET1(g->alpha), vb = GV_SET1(beta);
  const gm mk0 = GV_MASK(nr), mk1 = GV_MASK(nr - VW);
  const int full = nr == NR, unit = g->alpha == 1.0f;
  float *c = g->C + (size_t)m0 * ldc + j;
  size_t lds;
  const float *s = gemm_src(g, c, j, 1, &lds);
  /* A bias row is the same for every row: beta times it, once. */
  const int hoisted = lds == 0 && !(flags & GEMM_OVERWRITE);
  gv sv0 = GV_ZERO(), sv1 = GV_ZERO();
  if (hoisted) {
    sv0 = GV_MUL(vb, GV_MLOAD(s, mk0));
    sv1 = GV_MUL(vb, GV_MLOAD(s + VW, mk1));
  }
  const float *a = gemm_a_at(g, m0, 0);
  int i = m0;
  for (; i + 2 <= m1; i += 2, a += 2 * rsa, c += 2 * ldc, s += 2 * lds) {
    gv c00 = GV_ZERO(), c01 = GV_ZERO(), c10 = GV_ZERO(), c11 = GV_ZERO();
    for (int k = 0; k < kc; k++) {
      gv a0 = GV_SET1(a[k * csa]), a1 = GV_SET1(a[rsa + k * csa]);
      c00 = GV_FMA(a0, b0[k], c00);
      c10 = GV_FMA(a1, b0[k], c10);
      if (wide) {
        c01 = GV_FMA(a0, b1[k], c01);
        c11 = GV_FMA(a1, b1[k], c11);
      }
    }
    gemm_row_lean(wide, c, s, c00, c01, sv0, sv1, hoisted, va, vb, beta, unit, flags, full, mk0,
                  mk1);
    gemm_row_lean(wide, c + ldc, s + lds, c10, c11, sv0, sv1, hoisted, va, vb, beta, unit, flags,
                  full, mk0, mk1);
  }
  if (i < m1) {
    gv c00 = GV_ZERO(), c01 = GV_ZERO();
    for (int k = 0; k < kc; k++) {
      gv a0 = GV_SET1(a[k * csa]);
      c00 = GV_FMA(a0, b0[k], c00);
      if (wide) c01 = GV_FMA(a0, b1[k], c01);
    }
    gemm_row_lean(wide, c, s, c00, c01, sv0, sv1, hoisted, va, vb, beta, unit, flags, full, mk0,
                  mk1);
  }
}

/* Rows m0..m1 of a product with a single k block of kc <= GEMM_KREG, its B
 * block (columns jc.. jc+nc) packed at bk. */
static void gemm_kreg(const gemm_job *g, int kc, int nc, const float *bk, int m0, int m1, int jc,
                      float beta, int flags) {
  for (int jr = 0; jr < nc; jr += NR) {
    int nr = nc - jr < NR ? nc - jr : NR;
    const float *bp = bk + (size_t)jr * kc;
#define GEMM_KREG_CASE(k)                                             \
  case k:                                                             \
    if (nr > VW)                                                      \
      gemm_kreg_panel(k, 1, g, bp, m0, m1, jc + jr, nr, beta, flags); \
    else                                                              \
      gemm_kreg_panel(k, 0, g, bp, m0, m1, jc + jr, nr, beta, flags); \
    break;
    switch (kc) { GEMM_KREG_DEPTHS(GEMM_KREG_CASE) }
#undef GEMM_KREG_CASE
  }
}
#else
#define GEMM_KREG 0
#endif

/* The depth of the k blocks of a product with this K: equal blocks of at
 * most KC (576 splits 288 + 288, not 384 + 192). It depends on K alone, so
 * every nest, instruction set and packed B (GEMM_PACK) sums alike. */
static int gemm_kc(int K) {
  int nk = (K + KC - 1) / KC;
  return (K + nk - 1) / nk;
}

/* N rounded up to whole tiles: the width of a packed B. */
static size_t gemm_npad(int N) { return ((size_t)N + NR - 1) / NR * NR; }

/* The serial product on C[m0:m1, n0:n1] (m0, n0 on tile edges). In every
 * nest, the k block at pc == 0 applies beta to C or to the bias (or ignores
 * C when beta == 0) and later ones add to C. */
static void gemm_band(const gemm_job *g, int m0, int m1, int n0, int n1) {
  float *ap = gemm_apack, *bp = gemm_bpack;
  const int ldc = g->ldc;
  const float alpha = g->alpha;

  /* Columns per B block that keep it in L2 for this kc. */
  int ncd = L2B / g->kc / NR * NR;
#if GEMM_VEC
  if (m1 - m0 == 1 && !g->tb) { /* one row, B in place along its rows */
    size_t csa = g->ta ? (size_t)g->lda : 1;
    for (int jc = n0; jc < n1; jc += GEMM_STREAM) {
      int nc = n1 - jc < GEMM_STREAM ? n1 - jc : GEMM_STREAM;
      for (int pc = 0; pc < g->K; pc += g->kc) {
        int kc = g->K - pc < g->kc ? g->K - pc : g->kc;
        float *c = g->C + (size_t)m0 * ldc + jc;
        size_t lds;
        const float *s = gemm_src(g, c, jc, pc == 0, &lds);
        gemm_row_stream(kc, nc, gemm_a_at(g, m0, pc), csa, gemm_b_at(g, pc, jc), (size_t)g->ldb, c,
                        s, alpha, pc == 0 ? g->beta : 1.0f, gemm_flags(g, pc, kc));
      }
    }
    return;
  }
#endif
  if (!g->ta || ncd >= n1 - n0) { /* direct A */
    int few_rows = m1 - m0 <= MC;
    int one_row = m1 - m0 <= MR && !g->tb; /* batch-1 inference, dense layers */
    for (int jc = n0; jc < n1; jc += ncd) {
      int nc = n1 - jc < ncd ? n1 - jc : ncd;
      for (int pc = 0; pc < g->K; pc += g->kc) {
        int kc = g->K - pc < g->kc ? g->K - pc : g->kc;
        int flags = gemm_flags(g, pc, kc);
        float beta = pc == 0 ? g->beta : 1.0f;
        if (one_row) {
          /* Each B element meets one tile: packing would only copy it. Whole
           * tiles read row-major B in place; a last narrow one is packed (a
           * 16-wide load would run past the row). */
          for (int jr = 0; jr < nc; jr += NR) {
            int nr = nc - jr < NR ? nc - jr : NR;
            const float *b = gemm_b_at(g, pc, jc + jr), *a = gemm_a_at(g, m0, pc);
            if (nr == NR) {
              gemm_tile_direct(g, m1 - m0, nr, kc, a, b, (size_t)g->ldb, m0, jc + jr, pc == 0, beta,
                               flags);
            } else {
              gemm_pack_b(bp, b, g->ldb, 0, kc, nr);
              gemm_tile_direct(g, m1 - m0, nr, kc, a, bp, NR, m0, jc + jr, pc == 0, beta, flags);
            }
          }
          continue;
        }
        const float *bk = bp; /* the packed block */
        if (g->bpre)          /* within the whole packed B (see GEMM_PACK) */
          bk = g->bpre + (size_t)pc * gemm_npad(g->N) + (size_t)jc * kc;
        else
          gemm_pack_b(bp, gemm_b_at(g, pc, jc), g->ldb, g->tb, kc, nc);
#if GEMM_KREG
        if (kc == g->K && kc <= GEMM_KREG) {
          gemm_kreg(g, kc, nc, bk, m0, m1, jc, beta, flags);
          continue;
        }
#endif
        if (few_rows) {
          /* All of A's k block fits in L1/L2: each B panel, once in L1,
           * serves every tile of its column. */
#if GEMM_VEC
          /* Packing a block of row-major B waits on memory (the first dense
           * layer's kernel: 11.5 MB, read once per forward), so the whole
           * tiles of this block fetch the next block's rows into L2 while
           * they compute, each its share (that forward at batch 32, one
           * thread: the pack was a fifth of it; 8-10% faster). */
          gemm_ahead ah = {0};
          int ahead = 0, whole = (nc / NR) * ((m1 - m0) / MR), seen = 0, given = 0;
          if (!g->ta && !g->tb && !g->bpre && whole) {
            int jn = jc, kn = pc + kc;
            if (kn >= g->K) jn += ncd, kn = 0;
            if (jn < n1) {
              ah = (gemm_ahead){gemm_b_at(g, kn, jn), (size_t)g->ldb, n1 - jn < ncd ? n1 - jn : ncd,
                                0};
              ahead = g->K - kn < g->kc ? g->K - kn : g->kc;
            }
          }
#endif
          for (int jr = 0; jr < nc; jr += NR) {
            int nr = nc - jr < NR ? nc - jr : NR;
            for (int ir = m0; ir < m1; ir += MR) {
              int mr = m1 - ir < MR ? m1 - ir : MR;
#if GEMM_VEC
              if (ah.p && mr == MR && nr == NR) {
                int upto = (int)((long)ahead * ++seen / whole);
                ah.rows = upto - given;
                float *c = g->C + (size_t)ir * ldc + jc + jr;
                size_t lds;
                const float *s = gemm_src(g, c, jc + jr, pc == 0, &lds);
                gemm_tile_rows_ahead(kc, gemm_a_at(g, ir, pc), g->lda, bk + (size_t)jr * kc, c, ldc,
                                     s, lds, alpha, beta, flags, ah);
                ah.p += (size_t)ah.rows * ah.ld;
                given = upto;
                continue;
              }
#endif
              gemm_tile_direct(g, mr, nr, kc, gemm_a_at(g, ir, pc), bk + (size_t)jr * kc, NR, ir,
                               jc + jr, pc == 0, beta, flags);
            }
          }
        } else {
          /* Each tile-row of A, once in L1, sweeps the B block in L2. */
          for (int ir = m0; ir < m1; ir += MR) {
            int mr = m1 - ir < MR ? m1 - ir : MR;
            const float *a = gemm_a_at(g, ir, pc);
            for (int jr = 0; jr < nc; jr += NR) {
              int nr = nc - jr < NR ? nc - jr : NR;
              gemm_tile_direct(g, mr, nr, kc, a, bk + (size_t)jr * kc, NR, ir, jc + jr, pc == 0,
                               beta, flags);
            }
          }
        }
      }
    }
    return;
  }

  for (int jc = n0; jc < n1; jc += NC) { /* blocked */
    int nc = n1 - jc < NC ? n1 - jc : NC;
    for (int pc = 0; pc < g->K; pc += g->kc) {
      int kc = g->K - pc < g->kc ? g->K - pc : g->kc;
      int flags = gemm_flags(g, pc, kc);
      float beta = pc == 0 ? g->beta : 1.0f;
      gemm_pack_b(bp, gemm_b_at(g, pc, jc), g->ldb, g->tb, kc, nc);
      for (int ic = m0; ic < m1; ic += MC) {
        int mc = m1 - ic < MC ? m1 - ic : MC;
        gemm_pack_at(ap, gemm_a_at(g, ic, pc), g->lda, mc, kc);
        for (int jr = 0; jr < nc; jr += NR) {
          int nr = nc - jr < NR ? nc - jr : NR;
          for (int ir = 0; ir < mc; ir += MR) {
            int mr = mc - ir < MR ? mc - ir : MR;
            float *c = g->C + (size_t)(ic + ir) * ldc + jc + jr;
            size_t lds;
            const float *s = gemm_src(g, c, jc + jr, pc == 0, &lds);
            gemm_tile_packed(mr, nr, kc, ap + (size_t)ir * kc, bp + (size_t)jr * kc, c, ldc, s, lds,
                             alpha, beta, flags);
          }
        }
      }
    }
  }
}

static void gemm_task(void *ctx, int task, int thread) {
  const gemm_job *g = ctx;
  (void)thread; /* the packing buffers are thread-local */
  long long t0 = (long long)g->ntiles * task / g->ntasks;
  long long t1 = (long long)g->ntiles * (task + 1) / g->ntasks;
  if (g->split_m)
    gemm_band(g, (int)(t0 * MR), (int)(t1 * MR < g->M ? t1 * MR : g->M), 0, g->N);
  else
    gemm_band(g, 0, g->M, (int)(t0 * NR), (int)(t1 * NR < g->N ? t1 * NR : g->N));
}

#if GEMM_VEC
/* Rows of g->parts: N rounded up to whole tiles. */
static size_t gemm_parts_ld(const gemm_job *g) { return ((size_t)g->N + NR - 1) / NR * NR; }

/* Four full k blocks of a row at most NR columns wide, summed side by side:
 * each element is still one FMA chain per block, but the chains of the
 * group hide each other's latency (a chain alone waits 4 cycles per step:
 * the 5000-deep output layer at batch 1, 11 -> 5 us with AVX2). */
static void gemm_row_acc4_narrow(const gemm_job *g, int blk) {
  int kc = g->kc, nc = g->N;
  size_t csa = g->ta ? (size_t)g->lda : 1, ldb = (size_t)g->ldb, ld = gemm_parts_ld(g);
  const gm m0 = GV_MASK(nc), m1 = GV_MASK(nc - VW);
  const float *a = gemm_a_at(g, 0, blk * kc), *b = gemm_b_at(g, blk * kc, 0);
  size_t ablk = (size_t)kc * csa, bblk = (size_t)kc * ldb;
  gv c00 = GV_ZERO(), c01 = c00, c10 = c00, c11 = c00;
  gv c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (int k = 0; k < kc; k++, a += csa, b += ldb) {
#define GEMM_NARROW_BLOCK(i)                                                     \
  {                                                                              \
    gv ai = GV_SET1(a[i * ablk]);                                                \
    c##i##0 = GV_FMA(ai, GV_MLOAD(b + i * bblk, m0), c##i##0);                   \
    if (nc > VW) c##i##1 = GV_FMA(ai, GV_MLOAD(b + i * bblk + VW, m1), c##i##1); \
  }
    GEMM_NARROW_BLOCK(0)
    GEMM_NARROW_BLOCK(1)
    GEMM_NARROW_BLOCK(2)
    GEMM_NARROW_BLOCK(3)
#undef GEMM_NARROW_BLOCK
  }
  float *p = g->parts + (size_t)blk * ld; /* ld >= NR here */
  GV_STORE(p, c00), GV_STORE(p + VW, c01), p += ld;
  GV_STORE(p, c10), GV_STORE(p + VW, c11), p += ld;
  GV_STORE(p, c20), GV_STORE(p + VW, c21), p += ld;
  GV_STORE(p, c30), GV_STORE(p + VW, c31);
}

/* A one-row product split by k block (see gemm_run): task t sums its share
 * of the blocks, each into its own row of g->parts. */
static void gemm_krow_task(void *ctx, int task, int thread) {
  const gemm_job *g = ctx;
  (void)thread;
  int nk = (g->K + g->kc - 1) / g->kc, end = nk * (task + 1) / g->ntasks;
  size_t csa = g->ta ? (size_t)g->lda : 1;
  int blk = nk * task / g->ntasks;
  /* Narrow rows: groups of four full blocks (the last block may be short). */
  if (g->N <= NR)
    for (; blk + 4 <= end && (blk + 4) * g->kc <= g->K; blk += 4) gemm_row_acc4_narrow(g, blk);
  for (; blk < end; blk++) {
    int pc = blk * g->kc, kc = g->K - pc < g->kc ? g->K - pc : g->kc;
    gemm_row_acc(kc, g->N, gemm_a_at(g, 0, pc), csa, gemm_b_at(g, pc, 0), (size_t)g->ldb,
                 g->parts + (size_t)blk * gemm_parts_ld(g));
  }
}

/* The same split for a single row of tiles (2..MR rows: the first
 * convolution's weight gradient, 9 x 32 over K = 32 * 676, and the output
 * layer's forward as C^T, 10 x 32 over K = 5000): task t computes the
 * tiles of its k blocks, each block's sums into its own M rows of g->parts
 * (written with alpha 1 and no source: the sums themselves), with the tile
 * kernels of the one-row nest of gemm_band. A narrow last tile, or any
 * tile of a transposed B, packs its B panel into the task thread's A
 * buffer, which this product does not use otherwise. */
static void gemm_ktile_task(void *ctx, int task, int thread) {
  const gemm_job *g = ctx;
  (void)thread;
  int nk = (g->K + g->kc - 1) / g->kc, end = nk * (task + 1) / g->ntasks;
  size_t ld = gemm_parts_ld(g);
  for (int blk = nk * task / g->ntasks; blk < end; blk++) {
    int pc = blk * g->kc, kc = g->K - pc < g->kc ? g->K - pc : g->kc;
    float *p = g->parts + (size_t)blk * g->M * ld;
    for (int jr = 0; jr < g->N; jr += NR) {
      int nr = g->N - jr < NR ? g->N - jr : NR;
      const float *b = gemm_b_at(g, pc, jr), *a = gemm_a_at(g, 0, pc);
      size_t rsb = (size_t)g->ldb;
      if (nr < NR || g->tb) {
        gemm_pack_b(gemm_apack, b, g->ldb, g->tb, kc, nr);
        b = gemm_apack, rsb = NR;
      }
      if (g->ta)
        gemm_tile_cols(g->M, nr, kc, a, g->lda, b, rsb, p + jr, (int)ld, NULL, 0, 1.0f, 0.0f,
                       GEMM_OVERWRITE);
      else
        gemm_tile_rows(g->M, nr, kc, a, g->lda, b, rsb, p + jr, (int)ld, NULL, 0, 1.0f, 0.0f,
                       GEMM_OVERWRITE);
    }
  }
}

/* Their writebacks, row by row, in k order as in gemm_band. */
static void gemm_ktile_write(const gemm_job *g) {
  int nk = (g->K + g->kc - 1) / g->kc;
  size_t ld = gemm_parts_ld(g);
  for (int blk = 0; blk < nk; blk++)
    for (int i = 0; i < g->M; i++) {
      float *c = g->C + (size_t)i * g->ldc;
      size_t lds;
      const float *s = gemm_src(g, c, 0, blk == 0, &lds);
      gemm_row_write(g->N, g->parts + ((size_t)blk * g->M + i) * ld, c, s, g->alpha,
                     blk == 0 ? g->beta : 1.0f, gemm_flags(g, blk * g->kc, g->kc));
    }
}

/* The writebacks of those blocks, in k order as in gemm_band. */
static void gemm_krow_write(const gemm_job *g) {
  int nk = (g->K + g->kc - 1) / g->kc;
  for (int blk = 0; blk < nk; blk++) {
    size_t lds;
    const float *s = gemm_src(g, g->C, 0, blk == 0, &lds);
    gemm_row_write(g->N, g->parts + (size_t)blk * gemm_parts_ld(g), g->C, s, g->alpha,
                   blk == 0 ? g->beta : 1.0f, gemm_flags(g, blk * g->kc, g->kc));
  }
}
#endif

#if GEMM_ISA == 2
/* A narrow C (N <= MR) with A stored transposed, B row-major and one k
 * block (the output layer's weight gradient, x^T @ dy: 5000 x 10 over the
 * batch; B's row stride the only one, 4-5% faster than two): its rows are
 * runs of memory in A, so they go on the lanes, 32 rows a block with a
 * column of C in each of 2*N accumulators (C^T's tile, B broadcast), and a
 * transpose in registers turns the block back into rows of C for the tile's
 * writeback. Each element is the tile's FMA chain in k order from zero
 * (fma(b, a, c) == fma(a, b, c)) and writeback: bit for bit the usual path,
 * which would fill N of 16 lanes. */
static inline __attribute__((always_inline)) void gemm_at_narrow_block(const int n, const int full,
                                                                       const gemm_job *g, int i0) {
  const int rows = g->M - i0 < NR ? g->M - i0 : NR;
  const gm r0 = GV_MASK(rows), r1 = GV_MASK(rows - VW);
  const size_t lda = (size_t)g->lda, ldb = (size_t)g->ldb;
  const float *a = g->A + i0, *b = g->B;
  gv acc[2][16];
  for (int j = 0; j < 16; j++) acc[0][j] = acc[1][j] = GV_ZERO();
  for (int k = 0; k < g->K; k++, a += lda, b += ldb) {
    gv x0 = full ? GV_LOAD(a) : GV_MLOAD(a, r0);
    gv x1 = full ? GV_LOAD(a + VW) : GV_MLOAD(a + VW, r1);
    for (int j = 0; j < n; j++) {
      gv bj = GV_SET1(b[j]);
      acc[0][j] = GV_FMA(bj, x0, acc[0][j]);
      acc[1][j] = GV_FMA(bj, x1, acc[1][j]);
    }
  }
  const gv va = GV_SET1(g->alpha), vb = GV_SET1(g->beta), z = GV_ZERO();
  const gm mn = GV_MASK(n);
  const int flags = gemm_flags(g, 0, g->K), unit = g->alpha == 1.0f;
  float *c = g->C + (size_t)i0 * g->ldc;
  size_t lds;
  const float *s = gemm_src(g, c, 0, 1, &lds);
  const int hoisted = lds == 0 && !(flags & GEMM_OVERWRITE);
  const gv sv = hoisted ? GV_MUL(vb, GV_MLOAD(s, mn)) : z;
  for (int h = 0; h < 2; h++) {
    __m512i t[16];
    for (int j = 0; j < 16; j++) t[j] = _mm512_castps_si512(acc[h][j]);
    cnn_transpose16(t);
    for (int l = 0; l < VW && h * VW + l < rows; l++, c += g->ldc, s += lds)
      gemm_row_lean(0, c, s, _mm512_castsi512_ps(t[l]), z, sv, z, hoisted, va, vb, g->beta, unit,
                    flags, 0, mn, 0);
  }
}

static void gemm_at_narrow_task(void *ctx, int task, int thread) {
  const gemm_job *g = ctx;
  (void)thread;
  int nb = (g->M + NR - 1) / NR;
  for (int blk = nb * task / g->ntasks; blk < nb * (task + 1) / g->ntasks; blk++) {
    int i0 = blk * NR, full = g->M - i0 >= NR;
#define GEMM_AT_NARROW_CASE(i)               \
  case i + 1:                                \
    if (full)                                \
      gemm_at_narrow_block(i + 1, 1, g, i0); \
    else                                     \
      gemm_at_narrow_block(i + 1, 0, g, i0); \
    break;
    switch (g->N) { GEMM_ROWS(GEMM_AT_NARROW_CASE) }
#undef GEMM_AT_NARROW_CASE
  }
}
#endif

/* C = beta * C, with beta == 0 writing zeros over anything (NaN included). */
static void gemm_scale(int M, int N, float beta, float *C, int ldc) {
  for (int i = 0; i < M; i++) {
    float *c = C + (size_t)i * ldc;
    if (beta == 0.0f)
      for (int j = 0; j < N; j++) c[j] = 0.0f;
    else if (beta != 1.0f)
      for (int j = 0; j < N; j++) c[j] *= beta;
  }
}

/* C = alpha*op(A)@op(B) + beta*S, S = C or (bias) the bias row; then
 * max(C, 0) with relu (see gemm.h). turned: a call made for C^T, which
 * must not turn it back. */
static void gemm_run(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, const float *bpre,
                     float beta, const float *bias, int relu, float *C, int ldc, int turned) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    for (int i = 0; i < M; i++) {
      float *c = C + (size_t)i * ldc;
      if (bias)
        memcpy(c, bias, (size_t)N * sizeof *C);
      else
        gemm_scale(1, N, beta, c, ldc);
      if (relu)
        for (int j = 0; j < N; j++) c[j] = c[j] > 0 ? c[j] : 0;
    }
    return;
  }
#if GEMM_ISA == 2
  if (!turned && ta && !tb && N <= MR && M >= NR && K <= KC) { /* gemm_at_narrow_block */
    gemm_job g = {ta, tb,  M,    N,    K, alpha, beta, A, lda,  B,   ldb,
                  C,  ldc, bias, relu, K, 0,     0,    1, NULL, NULL};
    int nb = (M + NR - 1) / NR, nt = cnn_threads_size(pool);
    if (2.0 * M * N * K < GEMM_MIN_PARALLEL_FLOPS) nt = 1;
    g.ntasks = nt < nb ? nt : nb;
    if (g.ntasks == 1)
      gemm_at_narrow_task(&g, 0, 0);
    else
      cnn_threads_run(pool, gemm_at_narrow_task, &g, g.ntasks);
    return;
  }
#endif
#if GEMM_VEC
  /* A narrow C (N <= MR columns: the 10-unit output layer's forward) with
   * more rows fills only N of a tile's lanes. C^T = op(B)^T @ op(A)^T puts
   * its columns on a tile's rows and its rows on the lanes instead. Every
   * element is the same FMA chain over the same k blocks (fma(a, b, c) ==
   * fma(b, a, c)), and with C^T starting as S^T (C, or the bias down each
   * column) the same writeback, so C is bit for bit the same. C^T goes to a
   * buffer of the caller's own. */
  if (!turned && N <= MR && M >= VW && (size_t)M * N <= GEMM_CT) {
    float *ct = gemm_ct;
    if (bias || beta != 0.0f)
      for (int j = 0; j < N; j++)
        for (int i = 0; i < M; i++) ct[(size_t)j * M + i] = bias ? bias[j] : C[(size_t)i * ldc + j];
    gemm_run(pool, !tb, !ta, N, M, K, alpha, B, ldb, A, lda, NULL, beta, NULL, relu, ct, M, 1);
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = ct[(size_t)j * M + i];
    return;
  }
#endif
  /* C = A @ B^T with few rows and a wide, deep B (a dense layer's input
   * gradient, dy @ W^T at small batches): packing op(B) would transpose all
   * of W on every call, to use each value for a few rows only. C^T = B @ A^T
   * reads B in place instead (direct A) and packs only the small A^T. Every
   * element is the same FMA chain over the same k blocks (kc depends on K
   * alone; fma(a, b, c) == fma(b, a, c)), written back alike with beta == 0,
   * so C is bit for bit the same. C^T goes to the caller's A packing buffer,
   * which the direct nest never uses. */
  if (!turned && tb && !ta && beta == 0.0f && !bias && !relu && M > 1 && 4 * M <= N && K >= KC &&
      (size_t)M * N <= (size_t)MC * KC) {
    float *ct = gemm_apack;
    gemm_run(pool, 0, 1, N, M, K, alpha, B, ldb, A, lda, NULL, 0.0f, NULL, 0, ct, M, 1);
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = ct[(size_t)j * M + i];
    return;
  }
  gemm_job g = {ta, tb,  M,    N,    K, alpha, beta, A, lda,  B,   ldb,
                C,  ldc, bias, relu, 0, 0,     0,    0, NULL, bpre};
  g.kc = gemm_kc(K);

  /* Split the longer side of C (see the top of the file); the other side
   * when the longer one has too few tiles for the threads. */
  int tm = (M + MR - 1) / MR, tn = (N + NR - 1) / NR;
  int nt = cnn_threads_size(pool);
  if (2.0 * M * N * K < GEMM_MIN_PARALLEL_FLOPS) nt = 1;
#if GEMM_VEC
  int nk = (K + g.kc - 1) / g.kc;
  /* One row (batch-1 inference) with at least a k block per thread: the
   * threads take whole k blocks, whose sums start from zero in every nest,
   * and the caller writes them back in k order: the same arithmetic as one
   * thread. Each thread then streams its own contiguous rows of B; split by
   * columns they would read parts of every row (measured on the 11.5 MB
   * dense kernel: 179 -> 88 us on 2 threads). A narrow row takes this path
   * on one thread too, for gemm_row_acc4_narrow. The sums go to the caller's
   * own B packing buffer, which this product does not use otherwise. */
  if (M == 1 && !tb && nk >= 2 && ((nt > 1 && nk >= nt) || N <= NR) &&
      (size_t)nk * gemm_parts_ld(&g) <= KC * NC) {
    g.parts = gemm_bpack;
    g.ntasks = nt < nk ? nt : nk;
    cnn_threads_run(pool, gemm_krow_task, &g, g.ntasks);
    gemm_krow_write(&g);
    return;
  }
  /* A single row of tiles, too narrow to give every thread columns: the
   * threads take whole k blocks, as above (bench_gemm, the first
   * convolution's weight gradient, 9 x 32 x 21632 at batch 32, 2 threads:
   * 0.107 -> 0.058 ms; at batch 128 0.45 -> 0.23 ms). */
  if (M > 1 && M <= MR && nt > 1 && tn < nt && nk >= nt &&
      (size_t)nk * M * gemm_parts_ld(&g) <= KC * NC) {
    g.parts = gemm_bpack;
    g.ntasks = nt < nk ? nt : nk;
    cnn_threads_run(pool, gemm_ktile_task, &g, g.ntasks);
    gemm_ktile_write(&g);
    return;
  }
#endif
  g.split_m = M >= N ? tm >= nt || tm >= tn : tn < nt && tm > tn;
  /* Column bands give every thread a part of each row of C. With a small
   * op(B), which each thread then packs whole at little cost, row bands
   * measured faster (the third convolution's input gradient at batch 32,
   * 288 x 576 x 64, 2 threads: 0.148 -> 0.120 ms; 1 thread 0.20). */
  if (!g.split_m && tm >= 2 * nt && (size_t)K * N <= GEMM_SMALL_B) g.split_m = 1;
  g.ntiles = g.split_m ? tm : tn;
  if (nt > g.ntiles) nt = g.ntiles;
  g.ntasks = nt;
  if (nt == 1)
    gemm_task(&g, 0, 0);
  else
    cnn_threads_run(pool, gemm_task, &g, nt);
}

void GEMM_RUN(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, const float *bias, int relu, float *C,
              int ldc) {
  gemm_run(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, NULL, beta, bias, relu, C, ldc, 0);
}

/* B [K, N] packed whole: for each k block (the product's, from K alone),
 * every NR-column panel of it in gemm_pack_b's layout, so that the block
 * at (pc, jc) of any band starts at pc * npad + jc * kc. */
size_t GEMM_PACKED_SIZE(int K, int N) { return K <= 0 || N <= 0 ? 0 : (size_t)K * gemm_npad(N); }

void GEMM_PACK(float *bp, const float *B, int ldb, int K, int N) {
  if (K <= 0 || N <= 0) return;
  int kc = gemm_kc(K);
  for (int pc = 0; pc < K; pc += kc)
    gemm_pack_b(bp + (size_t)pc * gemm_npad(N), B + (size_t)pc * ldb, ldb, 0,
                K - pc < kc ? K - pc : kc, N);
}

/* C = A @ B + bias (then the ReLU), with B also given packed by GEMM_PACK:
 * the nests that would pack B read the packed copy instead; the others read
 * B in place, as GEMM_RUN does. The same arithmetic: bit for bit GEMM_RUN. */
void GEMM_RUN_PACKED(cnn_threads *pool, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, const float *bp, const float *bias, int relu,
                     float *C, int ldc) {
  gemm_run(pool, 0, 0, M, N, K, 1.0f, A, lda, B, ldb, bp, bias ? 1.0f : 0.0f, bias, relu, C, ldc,
           0);
}
