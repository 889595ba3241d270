/*
 * gemm.c - C = alpha * op(A) @ op(B) + beta * C in single precision, row-major
 * (see gemm.h), and its naive twin cnn_gemm_ref.
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
 *     along its rows (AVX2 builds)
 *  one row of tiles (<= MR rows, row-major B): tiles read B in place
 *     (packing would copy each element to use it once); a last narrow tile
 *     is packed
 *
 *  direct A  (every row-major A; A^T when its B block fits L2)
 *     for jc step ncd: for pc: pack B[pc:+kc, jc:+ncd]  (kc*ncd floats fit L2)
 *       few rows (<= MC; dense layers):  for jr: for ir: tile
 *           (A's k block sits in L1/L2; each B panel, once in L1, serves all rows)
 *       many rows (convolutions):        for ir: for jr: tile
 *           (six rows of A, once in L1, sweep the B block in L2)
 *  blocked   (A^T with wide B: the Goto/BLIS order)
 *     for jc step NC: for pc: pack B (L3); for ic step MC: pack A (L2)
 *       for jr: for ir: tile
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
 * between the threads, and only the small one is read by all of them.
 *
 * Packing buffers are fixed-size thread-local arrays (MC*KC + KC*NC floats,
 * 1.8 MB per thread that ever calls cnn_gemm): the kernel cannot fail, so it
 * cannot allocate, and the pool's threads and any caller thread each get
 * their own.
 *
 * Vector code is chosen at compile time: AVX2+FMA (the 6x16 kernel) or a
 * portable C kernel the compiler vectorises. An AVX-512 kernel would be a
 * third branch with its own MR/NR (e.g. 6x32 with zmm and mask registers);
 * the loop nests only use MR and NR. Never -ffast-math: beta == 0 must ignore
 * NaN in C, and FMA contraction must not differ between code paths.
 */
#include "gemm.h"

#include <stddef.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GEMM_AVX2 1
#define MR 6  /* rows of a C tile: 12 ymm accumulators + 2 for B + 1 for A */
#define NR 16 /* columns of a C tile: two ymm vectors */
#else
#define GEMM_AVX2 0
#define MR 4
#define NR 8
#endif

/* Cache blocking, sized for 32 KB L1d and 512 KB L2 per core. KC: the depth
 * of a k block; a B panel (KC*NR*4 = 24 KB) stays in L1 while tiles use it
 * (256..512 measured within 4% of each other; 384 cuts K = 576, the dense
 * layer, into 2 x 288). MC: a packed A block (MC*KC*4 = 216 KB) stays in L2.
 * NC: the blocked nest's B block (KC*NC*4 = 1.5 MB) stays in L3. L2B: the
 * direct nest's B block (256 KB) stays in L2 beside A. */
#define KC 384
#define MC 144
#define NC 1024
#define L2B (64 * 1024)

/* How a tile's writeback treats C (see gemm_row_avx2): overwrite it (the
 * first k block with beta == 0) rather than add beta times its source; and
 * clamp at 0 (the last k block of a product with a fused ReLU). */
#define GEMM_OVERWRITE 1
#define GEMM_RELU 2

/* Below this many flops (2*M*N*K, about 6 us of one core) handing work to
 * the pool costs more than it saves; measured on the model's shapes (the
 * third convolution at batch 1, 6.6e5 flops: 12 -> 8 us on 2 threads). */
#define GEMM_MIN_PARALLEL_FLOPS 5e5

_Static_assert(MC % MR == 0 && NC % NR == 0, "blocks must hold whole tiles");

/* Packed panels; 64-byte aligned for aligned vector loads. */
static _Thread_local _Alignas(64) float gemm_apack[MC * KC];
static _Thread_local _Alignas(64) float gemm_bpack[KC * NC];

/* op(A)[i][k] and op(B)[k][j] for the stored layouts (the reference's). */
#define OPA(A, lda, ta, i, k) \
  ((ta) ? (A)[(size_t)(k) * (lda) + (i)] : (A)[(size_t)(i) * (lda) + (k)])
#define OPB(B, ldb, tb, k, j) \
  ((tb) ? (B)[(size_t)(j) * (ldb) + (k)] : (B)[(size_t)(k) * (ldb) + (j)])

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

#if GEMM_AVX2
/* dst[kk*NR + i] = src[i*lds + kk] for i, kk < 8: an 8x8 transpose. */
static inline void gemm_transpose8(float *restrict dst, const float *restrict src, size_t lds) {
  __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds);
  __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
  __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
  __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_store_ps(dst + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_store_ps(dst + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_store_ps(dst + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_store_ps(dst + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_store_ps(dst + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_store_ps(dst + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_store_ps(dst + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_store_ps(dst + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

/* Packs op(B)[0:kc, 0:nc] into NR-column micro-panels bp[panel][k][j],
 * columns past nc zero. */
static void gemm_pack_b(float *restrict bp, const float *restrict B, int ldb, int tb, int kc,
                        int nc) {
  int full = nc / NR * NR, nr = nc - full;
  if (!tb) {
    /* op(B) rows are rows of B: read each along its length. */
    for (int k = 0; k < kc; k++) {
      const float *src = B + (size_t)k * ldb;
      float *dst = bp + (size_t)k * NR;
      for (int jr = 0; jr < full; jr += NR, dst += (size_t)NR * kc)
        for (int j = 0; j < NR; j++) dst[j] = src[jr + j];
      if (nr)
        for (int j = 0; j < NR; j++) dst[j] = j < nr ? src[full + j] : 0.0f;
    }
    return;
  }
  /* op(B) columns are rows of B: a transpose, 8x8 blocks where possible. */
  for (int jr = 0; jr < nc; jr += NR, bp += (size_t)NR * kc) {
    int n = nc - jr < NR ? nc - jr : NR, k0 = 0;
#if GEMM_AVX2
    if (n == NR) {
      const float *src = B + (size_t)jr * ldb;
      for (; k0 + 8 <= kc; k0 += 8) {
        gemm_transpose8(bp + (size_t)k0 * NR, src + k0, (size_t)ldb);
        gemm_transpose8(bp + (size_t)k0 * NR + 8, src + (size_t)8 * ldb + k0, (size_t)ldb);
      }
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

#if GEMM_AVX2

/* One row of a tile's writeback: C[i][0:nr] = alpha*acc + beta*S, or
 * alpha*acc with GEMM_OVERWRITE, where S is C itself or the bias row (si),
 * then max(., 0) with GEMM_RELU; partial rows go through masks, with the
 * same arithmetic as full ones. */
static inline __attribute__((always_inline)) void gemm_row_avx2(float *ci, const float *si,
                                                                __m256 c0, __m256 c1, __m256 va,
                                                                __m256 vb, int flags, int full,
                                                                __m256i m0, __m256i m1) {
  __m256 r0, r1;
  if (flags & GEMM_OVERWRITE) {
    r0 = _mm256_mul_ps(va, c0);
    r1 = _mm256_mul_ps(va, c1);
  } else if (full) {
    r0 = _mm256_fmadd_ps(va, c0, _mm256_mul_ps(vb, _mm256_loadu_ps(si)));
    r1 = _mm256_fmadd_ps(va, c1, _mm256_mul_ps(vb, _mm256_loadu_ps(si + 8)));
  } else {
    r0 = _mm256_fmadd_ps(va, c0, _mm256_mul_ps(vb, _mm256_maskload_ps(si, m0)));
    r1 = _mm256_fmadd_ps(va, c1, _mm256_mul_ps(vb, _mm256_maskload_ps(si + 8, m1)));
  }
  if (flags & GEMM_RELU) { /* max_ps returns its second operand for NaN: 0 */
    r0 = _mm256_max_ps(r0, _mm256_setzero_ps());
    r1 = _mm256_max_ps(r1, _mm256_setzero_ps());
  }
  if (full) {
    _mm256_storeu_ps(ci, r0);
    _mm256_storeu_ps(ci + 8, r1);
  } else {
    _mm256_maskstore_ps(ci, m0, r0);
    _mm256_maskstore_ps(ci + 8, m1, r1);
  }
}

/* The 6x16 tile: c<i><h> = sum_k A(i, k) * B(k, 8h:8h+8), A(i, k) at
 * a[i*rsa + k*csa] and B(k, j) at b[k*rsb + j] (rsb = NR when packed). `mr` and the strides are
 * literals or loop invariants at each instantiation; accumulators are named variables (not an
 * array) so that they surely live in registers. */
static inline __attribute__((always_inline)) void gemm_tile_avx2(
    const int mr, int nr, int kc, const float *restrict a, size_t rsa, size_t csa,
    const float *restrict b, size_t rsb, float *c, int ldc, const float *s, size_t lds, float alpha,
    float beta, int flags) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int k = 0; k < kc; k++) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), ai;
    /* Keeps b0 and b1 in registers. For mr < 6 GCC otherwise folds the
     * loads into every FMA as memory operands, which saturates the load
     * ports (measured 30% slower at mr = 4). */
    __asm__("" : "+x"(b0), "+x"(b1));
#define GEMM_FMA_ROW(i)                         \
  if (mr > i) {                                 \
    ai = _mm256_broadcast_ss(a + i * rsa);      \
    c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0); \
    c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1); \
  }
    GEMM_FMA_ROW(0)
    GEMM_FMA_ROW(1)
    GEMM_FMA_ROW(2)
    GEMM_FMA_ROW(3)
    GEMM_FMA_ROW(4)
    GEMM_FMA_ROW(5)
#undef GEMM_FMA_ROW
    a += csa;
    b += rsb;
  }

  __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
  __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
  int full = nr == NR;
  gemm_row_avx2(c, s, c00, c01, va, vb, flags, full, m0, m1);
  if (mr > 1) gemm_row_avx2(c + (size_t)ldc, s + lds, c10, c11, va, vb, flags, full, m0, m1);
  if (mr > 2)
    gemm_row_avx2(c + (size_t)2 * ldc, s + 2 * lds, c20, c21, va, vb, flags, full, m0, m1);
  if (mr > 3)
    gemm_row_avx2(c + (size_t)3 * ldc, s + 3 * lds, c30, c31, va, vb, flags, full, m0, m1);
  if (mr > 4)
    gemm_row_avx2(c + (size_t)4 * ldc, s + 4 * lds, c40, c41, va, vb, flags, full, m0, m1);
  if (mr > 5)
    gemm_row_avx2(c + (size_t)5 * ldc, s + 5 * lds, c50, c51, va, vb, flags, full, m0, m1);
}

/* One row of C from B read in place along its rows: acc[j] += a_k * B[k][j]
 * for k in order, then the writeback of the 6x16 tile; every element gets
 * the tile's arithmetic (one FMA chain in k order), so the result is the
 * same bit for bit. Batch-1 inference streams each dense kernel once, and a
 * tile would walk B down its columns: 64 bytes per 20 KB row, a TLB miss
 * each. Here up to GEMM_STREAM columns are summed in a buffer that stays in
 * L1 (24 KB), and B is read along its rows: for the notebook's dense layer
 * whole rows, so the 11.5 MB kernel streams from start to end (measured:
 * 2048-column chunks 25% slower, 512 50%). */
#define GEMM_STREAM 6144
static _Thread_local _Alignas(64) float gemm_acc[GEMM_STREAM];

/* acc[0:nc] = sum over k < kc of a_k * B[k][0:nc], in k order: the chain of
 * FMAs a tile would run for each element, from zero. acc is 32-byte aligned
 * with room for nc rounded up to 8. */
static void gemm_row_acc_avx2(int kc, int nc, const float *restrict a, size_t csa,
                              const float *restrict b, size_t ldb, float *restrict acc) {
  int full = nc / 8 * 8, tail = nc - full;
  /* The last nc % 8 columns go through masked loads (lanes past nc read as
   * zero, never from memory) with the same arithmetic. */
  const __m256i mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  int k = 0, end = tail ? full + 8 : full;
  memset(acc, 0, sizeof(float) * (size_t)end);
  /* Four rows per pass: one load and store of acc per four FMAs. */
  for (; k + 4 <= kc; k += 4, a += 4 * csa, b += 4 * ldb) {
    __m256 a0 = _mm256_broadcast_ss(a), a1 = _mm256_broadcast_ss(a + csa);
    __m256 a2 = _mm256_broadcast_ss(a + 2 * csa), a3 = _mm256_broadcast_ss(a + 3 * csa);
    for (int j = 0; j < full; j += 8) {
      __m256 v = _mm256_load_ps(acc + j);
      v = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + j), v);
      v = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b + ldb + j), v);
      v = _mm256_fmadd_ps(a2, _mm256_loadu_ps(b + 2 * ldb + j), v);
      v = _mm256_fmadd_ps(a3, _mm256_loadu_ps(b + 3 * ldb + j), v);
      _mm256_store_ps(acc + j, v);
    }
    if (tail) {
      __m256 v = _mm256_load_ps(acc + full);
      v = _mm256_fmadd_ps(a0, _mm256_maskload_ps(b + full, mask), v);
      v = _mm256_fmadd_ps(a1, _mm256_maskload_ps(b + ldb + full, mask), v);
      v = _mm256_fmadd_ps(a2, _mm256_maskload_ps(b + 2 * ldb + full, mask), v);
      v = _mm256_fmadd_ps(a3, _mm256_maskload_ps(b + 3 * ldb + full, mask), v);
      _mm256_store_ps(acc + full, v);
    }
  }
  for (; k < kc; k++, a += csa, b += ldb) {
    __m256 a0 = _mm256_broadcast_ss(a);
    for (int j = 0; j < full; j += 8)
      _mm256_store_ps(acc + j,
                      _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + j), _mm256_load_ps(acc + j)));
    if (tail)
      _mm256_store_ps(acc + full, _mm256_fmadd_ps(a0, _mm256_maskload_ps(b + full, mask),
                                                  _mm256_load_ps(acc + full)));
  }
}

/* The tile's writeback (gemm_row_avx2) for one row of nc columns. */
static void gemm_row_write_avx2(int nc, const float *acc, float *c, const float *s, float alpha,
                                float beta, int flags) {
  int full = nc / 8 * 8, tail = nc - full, end = tail ? full + 8 : full;
  const __m256i mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  for (int j = 0; j < end; j += 8) {
    __m256 r = _mm256_load_ps(acc + j);
    int last = j == full; /* the masked tail */
    if (flags & GEMM_OVERWRITE)
      r = _mm256_mul_ps(va, r);
    else
      r = _mm256_fmadd_ps(
          va, r,
          _mm256_mul_ps(vb, last ? _mm256_maskload_ps(s + j, mask) : _mm256_loadu_ps(s + j)));
    if (flags & GEMM_RELU) r = _mm256_max_ps(r, _mm256_setzero_ps());
    if (last)
      _mm256_maskstore_ps(c + j, mask, r);
    else
      _mm256_storeu_ps(c + j, r);
  }
}

/* One row of C from B read in place along its rows: acc[j] += a_k * B[k][j]
 * for k in order, then the writeback of the 6x16 tile; every element gets
 * the tile's arithmetic (one FMA chain in k order), so the result is the
 * same bit for bit. Batch-1 inference streams each dense kernel once, and a
 * tile would walk B down its columns: 64 bytes per 20 KB row, a TLB miss
 * each. Here up to GEMM_STREAM columns are summed in a buffer that stays in
 * L1 (24 KB), and B is read along its rows: for the notebook's dense layer
 * whole rows, so the 11.5 MB kernel streams from start to end (measured:
 * 2048-column chunks 25% slower, 512 50%). */
static void gemm_row_stream_avx2(int kc, int nc, const float *restrict a, size_t csa,
                                 const float *restrict b, size_t ldb, float *c, const float *s,
                                 float alpha, float beta, int flags) {
  gemm_row_acc_avx2(kc, nc, a, csa, b, ldb, gemm_acc);
  gemm_row_write_avx2(nc, gemm_acc, c, s, alpha, beta, flags);
}

#define GEMM_TILE_SWITCH(RSA, CSA)                                                      \
  switch (mr) {                                                                         \
  case 6:                                                                               \
    gemm_tile_avx2(6, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                              \
  case 5:                                                                               \
    gemm_tile_avx2(5, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                              \
  case 4:                                                                               \
    gemm_tile_avx2(4, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                              \
  case 3:                                                                               \
    gemm_tile_avx2(3, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                              \
  case 2:                                                                               \
    gemm_tile_avx2(2, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                              \
  default:                                                                              \
    gemm_tile_avx2(1, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                              \
  }

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

#define GEMM_TILE_SWITCH(RSA, CSA)                                                     \
  switch (mr) {                                                                        \
  case 4:                                                                              \
    gemm_tile_any(4, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                             \
  case 3:                                                                              \
    gemm_tile_any(3, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                             \
  case 2:                                                                              \
    gemm_tile_any(2, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                             \
  default:                                                                             \
    gemm_tile_any(1, nr, kc, a, RSA, CSA, b, rsb, c, ldc, s, lds, alpha, beta, flags); \
    break;                                                                             \
  }

#endif

/* The three ways a tile reads A: packed (rows adjacent, k steps of MR), in
 * place from row-major A (rows lda apart, k adjacent), in place from A^T
 * (rows adjacent, k steps of lda). B comes packed (rsb = NR) except in the
 * one-row-of-tiles case of gemm_band, which reads row-major B in place. */
static void gemm_tile_packed(int mr, int nr, int kc, const float *a, const float *b, float *c,
                             int ldc, const float *s, size_t lds, float alpha, float beta,
                             int flags) {
  const size_t rsb = NR;
  GEMM_TILE_SWITCH(1, MR)
}

static void gemm_tile_rows(int mr, int nr, int kc, const float *a, int lda, const float *b,
                           size_t rsb, float *c, int ldc, const float *s, size_t lds, float alpha,
                           float beta, int flags) {
  GEMM_TILE_SWITCH((size_t)lda, 1)
}

static void gemm_tile_cols(int mr, int nr, int kc, const float *a, int lda, const float *b,
                           size_t rsb, float *c, int ldc, const float *s, size_t lds, float alpha,
                           float beta, int flags) {
  GEMM_TILE_SWITCH(1, (size_t)lda)
}

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
  float *parts; /* one-row products split by k block: each block's sums */
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

/* The serial product on C[m0:m1, n0:n1] (m0, n0 on tile edges). In every
 * nest, the k block at pc == 0 applies beta to C or to the bias (or ignores
 * C when beta == 0) and later ones add to C. */
static void gemm_band(const gemm_job *g, int m0, int m1, int n0, int n1) {
  float *ap = gemm_apack, *bp = gemm_bpack;
  const int ldc = g->ldc;
  const float alpha = g->alpha;

  /* Columns per B block that keep it in L2 for this kc. */
  int ncd = L2B / g->kc / NR * NR;
#if GEMM_AVX2
  if (m1 - m0 == 1 && !g->tb) { /* one row, B in place along its rows */
    size_t csa = g->ta ? (size_t)g->lda : 1;
    for (int jc = n0; jc < n1; jc += GEMM_STREAM) {
      int nc = n1 - jc < GEMM_STREAM ? n1 - jc : GEMM_STREAM;
      for (int pc = 0; pc < g->K; pc += g->kc) {
        int kc = g->K - pc < g->kc ? g->K - pc : g->kc;
        float *c = g->C + (size_t)m0 * ldc + jc;
        size_t lds;
        const float *s = gemm_src(g, c, jc, pc == 0, &lds);
        gemm_row_stream_avx2(kc, nc, gemm_a_at(g, m0, pc), csa, gemm_b_at(g, pc, jc),
                             (size_t)g->ldb, c, s, alpha, pc == 0 ? g->beta : 1.0f,
                             gemm_flags(g, pc, kc));
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
        gemm_pack_b(bp, gemm_b_at(g, pc, jc), g->ldb, g->tb, kc, nc);
        if (few_rows) {
          /* All of A's k block fits in L1/L2: each B panel, once in L1,
           * serves every tile of its column. */
          for (int jr = 0; jr < nc; jr += NR) {
            int nr = nc - jr < NR ? nc - jr : NR;
            for (int ir = m0; ir < m1; ir += MR) {
              int mr = m1 - ir < MR ? m1 - ir : MR;
              gemm_tile_direct(g, mr, nr, kc, gemm_a_at(g, ir, pc), bp + (size_t)jr * kc, NR, ir,
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
              gemm_tile_direct(g, mr, nr, kc, a, bp + (size_t)jr * kc, NR, ir, jc + jr, pc == 0,
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

#if GEMM_AVX2
/* Rows of g->parts: N rounded up to whole vectors. */
static size_t gemm_parts_ld(const gemm_job *g) { return ((size_t)g->N + 15) / 16 * 16; }

/* Four full k blocks of a row at most 16 columns wide, summed side by side:
 * each element is still one FMA chain per block, but the 8 chains of the
 * group hide each other's latency (a chain alone waits 4 cycles per step:
 * the 5000-deep output layer at batch 1, 11 -> 5 us). */
static void gemm_row_acc4_narrow(const gemm_job *g, int blk) {
  int kc = g->kc, nc = g->N;
  size_t csa = g->ta ? (size_t)g->lda : 1, ldb = (size_t)g->ldb, ld = gemm_parts_ld(g);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8), lane);
  const float *a = gemm_a_at(g, 0, blk * kc), *b = gemm_b_at(g, blk * kc, 0);
  size_t ablk = (size_t)kc * csa, bblk = (size_t)kc * ldb;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00;
  __m256 c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (int k = 0; k < kc; k++, a += csa, b += ldb) {
#define GEMM_NARROW_BLOCK(i)                                                          \
  {                                                                                   \
    __m256 ai = _mm256_broadcast_ss(a + i * ablk);                                    \
    c##i##0 = _mm256_fmadd_ps(ai, _mm256_maskload_ps(b + i * bblk, m0), c##i##0);     \
    c##i##1 = _mm256_fmadd_ps(ai, _mm256_maskload_ps(b + i * bblk + 8, m1), c##i##1); \
  }
    GEMM_NARROW_BLOCK(0)
    GEMM_NARROW_BLOCK(1)
    GEMM_NARROW_BLOCK(2)
    GEMM_NARROW_BLOCK(3)
#undef GEMM_NARROW_BLOCK
  }
  float *p = g->parts + (size_t)blk * ld; /* ld >= 16 here */
  _mm256_storeu_ps(p, c00), _mm256_storeu_ps(p + 8, c01), p += ld;
  _mm256_storeu_ps(p, c10), _mm256_storeu_ps(p + 8, c11), p += ld;
  _mm256_storeu_ps(p, c20), _mm256_storeu_ps(p + 8, c21), p += ld;
  _mm256_storeu_ps(p, c30), _mm256_storeu_ps(p + 8, c31);
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
  if (g->N <= 16)
    for (; blk + 4 <= end && (blk + 4) * g->kc <= g->K; blk += 4) gemm_row_acc4_narrow(g, blk);
  for (; blk < end; blk++) {
    int pc = blk * g->kc, kc = g->K - pc < g->kc ? g->K - pc : g->kc;
    gemm_row_acc_avx2(kc, g->N, gemm_a_at(g, 0, pc), csa, gemm_b_at(g, pc, 0), (size_t)g->ldb,
                      g->parts + (size_t)blk * gemm_parts_ld(g));
  }
}

/* The writebacks of those blocks, in k order as in gemm_band. */
static void gemm_krow_write(const gemm_job *g) {
  int nk = (g->K + g->kc - 1) / g->kc;
  for (int blk = 0; blk < nk; blk++) {
    size_t lds;
    const float *s = gemm_src(g, g->C, 0, blk == 0, &lds);
    gemm_row_write_avx2(g->N, g->parts + (size_t)blk * gemm_parts_ld(g), g->C, s, g->alpha,
                        blk == 0 ? g->beta : 1.0f, gemm_flags(g, blk * g->kc, g->kc));
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
 * max(C, 0) with relu. */
static void gemm_run(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta,
                     const float *bias, int relu, float *C, int ldc) {
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
  gemm_job g = {ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc, bias, relu, 0, 0, 0, 0, NULL};
  /* Equal k blocks of at most KC: 576 splits 288+288, not 384+192. */
  int nk = (K + KC - 1) / KC;
  g.kc = (K + nk - 1) / nk;

  /* Split the longer side of C (see the top of the file); the other side
   * when the longer one has too few tiles for the threads. */
  int tm = (M + MR - 1) / MR, tn = (N + NR - 1) / NR;
  int nt = cnn_threads_size(pool);
  if (2.0 * M * N * K < GEMM_MIN_PARALLEL_FLOPS) nt = 1;
#if GEMM_AVX2
  /* One row (batch-1 inference) with at least a k block per thread: the
   * threads take whole k blocks, whose sums start from zero in every nest,
   * and the caller writes them back in k order: the same arithmetic as one
   * thread. Each thread then streams its own contiguous rows of B; split by
   * columns they would read parts of every row (measured on the 11.5 MB
   * dense kernel: 179 -> 88 us on 2 threads). A narrow row takes this path
   * on one thread too, for gemm_row_acc4_narrow. The sums go to the caller's
   * own B packing buffer, which this product does not use otherwise. */
  if (M == 1 && !tb && nk >= 2 && ((nt > 1 && nk >= nt) || N <= 16) &&
      (size_t)nk * gemm_parts_ld(&g) <= KC * NC) {
    g.parts = gemm_bpack;
    g.ntasks = nt < nk ? nt : nk;
    cnn_threads_run(pool, gemm_krow_task, &g, g.ntasks);
    gemm_krow_write(&g);
    return;
  }
#endif
  g.split_m = M >= N ? tm >= nt || tm >= tn : tn < nt && tm > tn;
  g.ntiles = g.split_m ? tm : tn;
  if (nt > g.ntiles) nt = g.ntiles;
  g.ntasks = nt;
  if (nt == 1)
    gemm_task(&g, 0, 0);
  else
    cnn_threads_run(pool, gemm_task, &g, nt);
}

void cnn_gemm(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  gemm_run(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, NULL, 0, C, ldc);
}

void cnn_gemm_bias(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, const float *bias, int relu,
                   float *C, int ldc) {
  gemm_run(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, bias ? 1.0f : 0.0f, bias, relu, C, ldc);
}

void cnn_gemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    gemm_scale(M, N, beta, C, ldc);
    return;
  }
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0.0;
      for (int k = 0; k < K; k++) s += (double)OPA(A, lda, ta, i, k) * OPB(B, ldb, tb, k, j);
      float *c = C + (size_t)i * ldc + j;
      *c = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s + (double)beta * *c);
    }
}
