/*
 * gemm.c - the matrix product's entry points (see gemm.h): each call runs
 * the blocked product of gemm_kernel.c compiled for the instruction set of
 * its thread pool (isa.h), or for the bf16 entry points the kernels of
 * gemm_bf16.c where the CPU has them and they pay; and cnn_gemm_ref, the
 * naive twin the tests and benchmarks compare against.
 */
#include "gemm.h"

#include <stddef.h>
#include <string.h>

static void gemm_dispatch(cnn_isa isa, cnn_threads *pool, int ta, int tb, int M, int N, int K,
                          float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                          const float *bias, int relu, float *C, int ldc) {
  switch (isa) {
#if CNN_HAVE_X86_KERNELS
  case CNN_ISA_AMX:
  case CNN_ISA_AVX512:
    cnn_gemm_run_avx512(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, relu, C, ldc);
    return;
  case CNN_ISA_AVX2:
    cnn_gemm_run_avx2(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, relu, C, ldc);
    return;
#endif
  default:
    cnn_gemm_run_baseline(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, relu, C, ldc);
  }
}

/* Whether a bf16 product of this shape beats fp32's. Converting and
 * packing cost per element of A and B; the tiles gain per multiply-add, but
 * only on whole tiles: k steps of 32 and 16 rows. Measured with AMX on one
 * Sapphire Rapids core (tests/bench/bench_gemm_bf16.c, "sweep"): K = 9 loses
 * at every M and N (0.4-1.0x: the first convolution, K padded to 32), K = 16
 * breaks even, K >= 24 wins (1.2-9x); fewer than 16 rows lose when N is
 * small (9 x 32 x 21632, the first convolution's dW: 0.76x) and a single row
 * always (batch-1 inference: 0.57x, converting all of B for one row). Decided
 * from the shape alone, so that results never depend on the pool size. */
static int gemm_bf16_pays(int M, int N, int K) {
  (void)N;
  return K >= 24 && M >= 16;
}

static void gemm_dispatch_bf16(cnn_isa isa, cnn_threads *pool, int ta, int tb, int M, int N, int K,
                               float alpha, const float *A, int lda, const float *B, int ldb,
                               float beta, const float *bias, int relu, float *C, int ldc) {
#if CNN_HAVE_X86_KERNELS
  cnn_bf16 kernel = cnn_isa_bf16(isa);
  if (kernel != CNN_BF16_NONE && M > 0 && N > 0 && K > 0 && alpha != 0.0f &&
      gemm_bf16_pays(M, N, K)) {
    if (kernel == CNN_BF16_AMX)
      cnn_gemm_run_bf16_amx(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, relu, C, ldc);
    else
      cnn_gemm_run_bf16_avx512(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, relu, C,
                               ldc);
    return;
  }
#endif
  gemm_dispatch(isa, pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, bias, relu, C, ldc);
}

void cnn_gemm_bf16(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C,
                   int ldc) {
  gemm_dispatch_bf16(cnn_threads_isa(pool), pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta,
                     NULL, 0, C, ldc);
}

void cnn_gemm_bias_bf16(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, const float *bias,
                        int relu, float *C, int ldc) {
  gemm_dispatch_bf16(cnn_threads_isa(pool), pool, ta, tb, M, N, K, alpha, A, lda, B, ldb,
                     bias ? 1.0f : 0.0f, bias, relu, C, ldc);
}

void cnn_gemm_bias_serial_bf16(cnn_isa isa, int ta, int tb, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, const float *bias,
                               int relu, float *C, int ldc) {
  gemm_dispatch_bf16(isa, NULL, ta, tb, M, N, K, alpha, A, lda, B, ldb, bias ? 1.0f : 0.0f, bias,
                     relu, C, ldc);
}

/* The pool's precision picks the product; `like` lends its kernels to a
 * call on the calling thread alone. */
void cnn_gemm(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  (cnn_threads_bf16(pool) ? gemm_dispatch_bf16 : gemm_dispatch)(
      cnn_threads_isa(pool), pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, NULL, 0, C, ldc);
}

void cnn_gemm_bias(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, const float *bias, int relu,
                   float *C, int ldc) {
  (cnn_threads_bf16(pool) ? gemm_dispatch_bf16 : gemm_dispatch)(
      cnn_threads_isa(pool), pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, bias ? 1.0f : 0.0f, bias,
      relu, C, ldc);
}

void cnn_gemm_bias_serial(const cnn_threads *like, int ta, int tb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, const float *bias,
                          int relu, float *C, int ldc) {
  (cnn_threads_bf16(like) ? gemm_dispatch_bf16 : gemm_dispatch)(
      cnn_threads_isa(like), NULL, ta, tb, M, N, K, alpha, A, lda, B, ldb, bias ? 1.0f : 0.0f, bias,
      relu, C, ldc);
}

/* ---- B packed once, fp32 --------------------------------------------------- */

/* AMX pools run the AVX-512 fp32 kernels; a build without x86 kernels runs
 * the baseline ones at every level. */
cnn_isa cnn_gemm_pack_isa(cnn_isa isa) {
#if CNN_HAVE_X86_KERNELS
  if (isa == CNN_ISA_AMX) return CNN_ISA_AVX512;
  if (isa == CNN_ISA_AVX512 || isa == CNN_ISA_AVX2) return isa;
#else
  (void)isa;
#endif
  return CNN_ISA_BASELINE;
}

size_t cnn_gemm_packed_size(cnn_isa isa, int K, int N) {
  switch (cnn_gemm_pack_isa(isa)) {
#if CNN_HAVE_X86_KERNELS
  case CNN_ISA_AVX512:
    return cnn_gemm_packed_size_avx512(K, N);
  case CNN_ISA_AVX2:
    return cnn_gemm_packed_size_avx2(K, N);
#endif
  default:
    return cnn_gemm_packed_size_baseline(K, N);
  }
}

void cnn_gemm_pack(cnn_isa isa, float *bp, const float *B, int ldb, int K, int N) {
  switch (cnn_gemm_pack_isa(isa)) {
#if CNN_HAVE_X86_KERNELS
  case CNN_ISA_AVX512:
    cnn_gemm_pack_avx512(bp, B, ldb, K, N);
    return;
  case CNN_ISA_AVX2:
    cnn_gemm_pack_avx2(bp, B, ldb, K, N);
    return;
#endif
  default:
    cnn_gemm_pack_baseline(bp, B, ldb, K, N);
  }
}

/* Runs on `pool`, or with `like`'s kernels on the calling thread when pool
 * is NULL. */
static void gemm_prepacked(cnn_threads *pool, const cnn_threads *like, int M, int N, int K,
                           const float *A, int lda, const float *B, int ldb, const float *bp,
                           const float *bias, int relu, float *C, int ldc) {
  if (cnn_threads_bf16(like)) {
    (pool ? cnn_gemm_bias(pool, 0, 0, M, N, K, 1.0f, A, lda, B, ldb, bias, relu, C, ldc)
          : cnn_gemm_bias_serial(like, 0, 0, M, N, K, 1.0f, A, lda, B, ldb, bias, relu, C, ldc));
    return;
  }
  switch (cnn_gemm_pack_isa(cnn_threads_isa(like))) {
#if CNN_HAVE_X86_KERNELS
  case CNN_ISA_AVX512:
    cnn_gemm_run_packed_avx512(pool, M, N, K, A, lda, B, ldb, bp, bias, relu, C, ldc);
    return;
  case CNN_ISA_AVX2:
    cnn_gemm_run_packed_avx2(pool, M, N, K, A, lda, B, ldb, bp, bias, relu, C, ldc);
    return;
#endif
  default:
    cnn_gemm_run_packed_baseline(pool, M, N, K, A, lda, B, ldb, bp, bias, relu, C, ldc);
  }
}

void cnn_gemm_bias_prepacked(cnn_threads *pool, int M, int N, int K, const float *A, int lda,
                             const float *B, int ldb, const float *bp, const float *bias, int relu,
                             float *C, int ldc) {
  gemm_prepacked(pool, pool, M, N, K, A, lda, B, ldb, bp, bias, relu, C, ldc);
}

void cnn_gemm_bias_prepacked_serial(const cnn_threads *like, int M, int N, int K, const float *A,
                                    int lda, const float *B, int ldb, const float *bp,
                                    const float *bias, int relu, float *C, int ldc) {
  gemm_prepacked(NULL, like, M, N, K, A, lda, B, ldb, bp, bias, relu, C, ldc);
}

/* ---- B in bf16, converted once ------------------------------------------ */

size_t cnn_bf16_packed_size(int K, int N) {
  return K <= 0 || N <= 0 ? 0 : (size_t)((N + 15) / 16) * (size_t)((K + 1) / 2) * 32;
}

/* x rounded to bfloat16 as VCVTNE2PS2BF16 does: nearest even, denormals
 * (and their results) zero, NaN kept quiet. */
static uint16_t bf16_round(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static float bf16_value(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* Entry (k, j) of B in the packed layout. */
static size_t bf16_packed_at(int K, int k, int j) {
  return ((size_t)(j / 16) * (size_t)((K + 1) / 2) + (size_t)(k / 2)) * 32 + (size_t)(j % 16) * 2 +
         (size_t)(k % 2);
}

void cnn_bf16_pack(uint16_t *bp, const float *B, int ldb, int K, int N) {
  size_t n = cnn_bf16_packed_size(K, N);
  if (n) memset(bp, 0, n * sizeof *bp); /* padding: k past K, columns past N */
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) bp[bf16_packed_at(K, k, j)] = bf16_round(B[(size_t)k * ldb + j]);
}

void cnn_bf16_unpack(float *B, const uint16_t *bp, int K, int N) {
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) B[(size_t)k * N + j] = bf16_value(bp[bf16_packed_at(K, k, j)]);
}

void cnn_gemm_bias_bf16_packed(cnn_threads *pool, int M, int N, int K, const float *A, int lda,
                               const uint16_t *bp, const float *bias, int relu, float *C, int ldc) {
#if CNN_HAVE_X86_KERNELS
  if (cnn_isa_bf16(cnn_threads_isa(pool)) != CNN_BF16_NONE) {
    cnn_gemm_run_bf16_packed(pool, M, N, K, A, lda, bp, bias, relu, C, ldc);
    return;
  }
#endif
  /* Without the instructions (a level capped below them): the same
   * operands, one row and column at a time. */
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float s = 0.0f;
      for (int k = 0; k < K; k++)
        s += bf16_value(bf16_round(A[(size_t)i * lda + k])) *
             bf16_value(bp[bf16_packed_at(K, k, j)]);
      if (bias) s += bias[j];
      C[(size_t)i * ldc + j] = relu ? (s > 0 ? s : 0) : s;
    }
}

/* op(A)[i][k] and op(B)[k][j] for the stored layouts. */
#define OPA(A, lda, ta, i, k) \
  ((ta) ? (A)[(size_t)(k) * (lda) + (i)] : (A)[(size_t)(i) * (lda) + (k)])
#define OPB(B, ldb, tb, k, j) \
  ((tb) ? (B)[(size_t)(j) * (ldb) + (k)] : (B)[(size_t)(k) * (ldb) + (j)])

void cnn_gemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0.0;
      if (alpha != 0.0f)
        for (int k = 0; k < K; k++) s += (double)OPA(A, lda, ta, i, k) * OPB(B, ldb, tb, k, j);
      float *c = C + (size_t)i * ldc + j;
      /* beta == 0 ignores C, NaN included. */
      *c = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s + (double)beta * *c);
    }
}
