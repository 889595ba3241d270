/*
 * test_gemm.c - cnn_gemm against its naive twin cnn_gemm_ref: all four
 * transpose combinations, sizes from 1 through primes to several cache blocks,
 * leading dimensions larger than needed, alpha/beta values, NaN garbage in C
 * under beta == 0, the degenerate calls (K = 0, alpha = 0, empty C), memory
 * outside C left alone, bitwise-identical results for pool sizes 1..4 on the
 * model's shapes, one row (or three) at a time exactly as inside a batch, the
 * bias form exactly as bias rows plus beta = 1, and concurrent callers on
 * separate threads; all of it for every instruction set this CPU runs (the
 * others are named as skipped), and the sets against each other: avx2 and
 * avx512 bit for bit, baseline (no FMA) within the tolerance below.
 *
 * Tolerance: per element, |ours - ref| <= (K + 4) * 2^-23 * scale, where
 * scale = |alpha| * sum_k |a_ik b_kj| + |beta c_ij| is what a float sum of
 * these terms may lose at worst. A wrong term or index misses by ~scale.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "check.h"
#include "gemm.h"
#include "threads.h"

static const float SENTINEL = 12345.5f; /* fills C outside the M x N window */

typedef struct gemm_case {
  int ta, tb, M, N, K, lda, ldb, ldc;
  float alpha, beta;
  int nan_c; /* C starts as NaN (only meaningful with beta == 0) */
} gemm_case;

/* Runs one case through cnn_gemm (with `pool`) and cnn_gemm_ref; returns 1 if
 * every element is within tolerance and nothing outside C changed. */
static int run_case(cnn_threads *pool, const gemm_case *t) {
  int arows = t->ta ? t->K : t->M, acols = t->ta ? t->M : t->K;
  int brows = t->tb ? t->N : t->K, bcols = t->tb ? t->K : t->N;
  size_t na = (size_t)arows * t->lda, nb = (size_t)brows * t->ldb, nc = (size_t)t->M * t->ldc;
  float *A = malloc((na + 1) * sizeof(float)), *B = malloc((nb + 1) * sizeof(float));
  float *C = malloc((nc + 1) * sizeof(float)), *R = malloc((nc + 1) * sizeof(float));
  float *AA = malloc((na + 1) * sizeof(float)), *AB = malloc((nb + 1) * sizeof(float));
  float *S = malloc((nc + 1) * sizeof(float));
  int ok = 1;
  if (!A || !B || !C || !R || !AA || !AB || !S) {
    ok = CHECK(!"out of memory");
    goto done;
  }
  /* Padding columns of A and B hold NaN: reading one would poison a result. */
  for (size_t i = 0; i < na; i++) A[i] = (int)(i % t->lda) < acols ? check_rng_float() : NAN;
  for (size_t i = 0; i < nb; i++) B[i] = (int)(i % t->ldb) < bcols ? check_rng_float() : NAN;
  for (size_t i = 0; i < nc; i++) {
    int inside = (int)(i % t->ldc) < t->N;
    C[i] = !inside ? SENTINEL : t->nan_c ? NAN : check_rng_float();
    R[i] = C[i];
    S[i] = fabsf(C[i]);
  }
  for (size_t i = 0; i < na; i++) AA[i] = fabsf(A[i]);
  for (size_t i = 0; i < nb; i++) AB[i] = fabsf(B[i]);

  cnn_gemm(pool, t->ta, t->tb, t->M, t->N, t->K, t->alpha, A, t->lda, B, t->ldb, t->beta, C,
           t->ldc);
  cnn_gemm_ref(t->ta, t->tb, t->M, t->N, t->K, t->alpha, A, t->lda, B, t->ldb, t->beta, R, t->ldc);
  cnn_gemm_ref(t->ta, t->tb, t->M, t->N, t->K, fabsf(t->alpha), AA, t->lda, AB, t->ldb,
               fabsf(t->beta), S, t->ldc);

  double tol = (t->K + 4) * ldexp(1.0, -23);
  long bad = 0, outside = 0;
  size_t first = 0;
  for (size_t i = 0; i < nc; i++) {
    if ((int)(i % t->ldc) >= t->N) {
      if (memcmp(&C[i], &SENTINEL, sizeof(float)) != 0) outside++;
      continue;
    }
    if (!(fabs((double)C[i] - R[i]) <= tol * S[i] + 1e-30)) {
      if (!bad) first = i;
      bad++;
    }
  }
  if (bad || outside) {
    fprintf(stderr,
            "case ta=%d tb=%d M=%d N=%d K=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g nan_c=%d: "
            "%ld wrong (first [%zu,%zu]: %.9g vs %.9g), %ld written outside C\n",
            t->ta, t->tb, t->M, t->N, t->K, t->lda, t->ldb, t->ldc, t->alpha, t->beta, t->nan_c,
            bad, bad ? first / t->ldc : 0, bad ? first % t->ldc : 0, bad ? C[first] : 0.0,
            bad ? R[first] : 0.0, outside);
    ok = 0;
  }
done:
  free(A);
  free(B);
  free(C);
  free(R);
  free(AA);
  free(AB);
  free(S);
  return ok;
}

static gemm_case make_case(int ta, int tb, int M, int N, int K, int pad, float alpha, float beta) {
  gemm_case t = {ta, tb, M, N, K, 0, 0, 0, alpha, beta, 0};
  t.lda = (ta ? M : K) + (pad ? check_rng_int(pad + 1) : 0);
  t.ldb = (tb ? K : N) + (pad ? check_rng_int(pad + 1) : 0);
  t.ldc = N + (pad ? check_rng_int(pad + 1) : 0);
  return t;
}

/* Every size class: 1, below and above a tile (6x16, or 4x8 portable),
 * primes, several k blocks (384), A blocks (144 rows) and B blocks. */
static void test_against_ref(cnn_threads *pool) {
  static const int dims[] = {1,  2,  3,  5,  6,  7,   8,   13,  16, 17,
                             23, 31, 33, 47, 97, 145, 151, 257, 300};
  const int nd = (int)(sizeof dims / sizeof dims[0]);
  static const float alphas[] = {1.0f, -0.5f, 2.25f};
  static const float betas[] = {0.0f, 1.0f, -1.5f, 0.25f};
  int failures = 0, cases = 0;
  /* Small sizes: all combinations. */
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int mi = 0; mi < 11; mi++)
        for (int ni = 0; ni < 11; ni++) {
          int K = dims[check_rng_int(nd)];
          gemm_case t = make_case(ta, tb, dims[mi], dims[ni], K, check_rng_int(2) ? 5 : 0,
                                  alphas[check_rng_int(3)], betas[check_rng_int(4)]);
          failures += !run_case(pool, &t);
          cases++;
        }
  /* Random larger ones, every transpose, with padding. */
  for (int r = 0; r < 120; r++) {
    gemm_case t =
        make_case(r & 1, (r >> 1) & 1, dims[check_rng_int(nd)], dims[check_rng_int(nd)],
                  dims[check_rng_int(nd)], 9, alphas[check_rng_int(3)], betas[check_rng_int(4)]);
    failures += !run_case(pool, &t);
    cases++;
  }
  /* Several B blocks of columns, several A blocks of rows, deep K cut into
   * several k blocks; with A^T and a deep K, the packed (blocked) nest. */
  for (int tb = 0; tb < 2; tb++) {
    gemm_case t = make_case(1, tb, 7, 1100, 20, 3, 1.0f, 1.0f);
    failures += !run_case(pool, &t);
    t = make_case(0, tb, 13, 40, 1031, 3, -1.0f, 0.5f);
    failures += !run_case(pool, &t);
    t = make_case(1, tb, 20, 1100, 400, 2, 1.0f, 0.0f);
    failures += !run_case(pool, &t);
    t = make_case(1, tb, 151, 300, 777, 2, 0.5f, -1.0f);
    failures += !run_case(pool, &t);
    t = make_case(0, tb, 301, 70, 800, 2, 1.0f, 1.0f);
    failures += !run_case(pool, &t);
    cases += 5;
  }
  CHECK_EQ_INT(failures, 0);
  CHECK(cases > 500);
}

/* beta == 0: C is write-only, NaN in it must not leak into the result. */
static void test_beta_zero_ignores_nan(cnn_threads *pool) {
  int failures = 0;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int r = 0; r < 6; r++) {
        gemm_case t = make_case(ta, tb, 1 + check_rng_int(40), 1 + check_rng_int(40),
                                1 + check_rng_int(300), 4, r & 1 ? 1.0f : -2.0f, 0.0f);
        t.nan_c = 1;
        failures += !run_case(pool, &t);
      }
  CHECK_EQ_INT(failures, 0);
}

/* K == 0 or alpha == 0: C = beta * C, A and B unread (NaN there is harmless);
 * beta == 0 then clears C even of NaN. M == 0 or N == 0 touches nothing. */
static void test_degenerate(cnn_threads *pool) {
  float A[6] = {NAN, NAN, NAN, NAN, NAN, NAN}, B[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
  float C[6] = {1, 2, 3, 4, NAN, 6};
  cnn_gemm(pool, 0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 2.0f, C, 3);
  CHECK(C[0] == 2 && C[1] == 4 && C[2] == 6 && C[3] == 8 && isnan(C[4]) && C[5] == 12);
  cnn_gemm(pool, 0, 0, 2, 3, 2, 0.0f, A, 2, B, 3, 0.5f, C, 3);
  CHECK(C[0] == 1 && C[1] == 2 && C[2] == 3 && C[3] == 4 && isnan(C[4]) && C[5] == 6);
  cnn_gemm(pool, 1, 1, 2, 3, 2, 0.0f, A, 2, B, 2, 0.0f, C, 3);
  CHECK(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0 && C[4] == 0 && C[5] == 0);
  cnn_gemm(pool, 0, 0, 0, 3, 2, 1.0f, A, 2, B, 3, 0.0f, NULL, 3);
  cnn_gemm(pool, 0, 0, 2, 0, 2, 1.0f, A, 2, B, 1, 0.0f, NULL, 1);
  cnn_gemm_ref(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.0f, C, 3);
  CHECK(C[0] == 0 && C[5] == 0);

  /* A hand-worked product with every transpose: [1 2; 3 4] @ [5 6; 7 8]. */
  const float a[4] = {1, 2, 3, 4}, at[4] = {1, 3, 2, 4};
  const float b[4] = {5, 6, 7, 8}, bt[4] = {5, 7, 6, 8};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      float c[4] = {1, 1, 1, 1};
      cnn_gemm(pool, ta, tb, 2, 2, 2, 2.0f, ta ? at : a, 2, tb ? bt : b, 2, -1.0f, c, 2);
      CHECK(c[0] == 37 && c[1] == 43 && c[2] == 85 && c[3] == 99);
    }
}

/* The model's shapes at batch 32 (see tests/bench/bench_gemm.c). */
static const int model[][5] = {
    {0, 0, 21632, 32, 9},  {1, 0, 9, 32, 21632},  {0, 0, 3872, 64, 288}, {1, 0, 288, 64, 3872},
    {0, 1, 3872, 288, 64}, {0, 0, 288, 64, 576},  {1, 0, 576, 64, 288},  {0, 1, 288, 576, 64},
    {0, 0, 32, 5000, 576}, {1, 0, 576, 5000, 32}, {0, 1, 32, 576, 5000}, {0, 0, 32, 10, 5000},
    {1, 0, 5000, 10, 32},  {0, 1, 32, 5000, 10},  {0, 0, 1, 5000, 576},  {0, 0, 121, 64, 288},
};

/* One element of the product, in double, for spot checks of big shapes. */
static double dot_ref(int ta, int tb, int K, const float *A, int lda, const float *B, int ldb,
                      int i, int j) {
  double s = 0;
  for (int k = 0; k < K; k++) {
    double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
    double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
    s += a * b;
  }
  return s;
}

static void test_pool_sizes_bitwise(cnn_isa isa) {
  cnn_threads *pools[4] = {NULL, NULL, NULL, NULL};
  for (int p = 0; p < 4; p++)
    if (!(pools[p] = check_pool(p + 1, isa))) goto done;
  for (size_t s = 0; s < sizeof model / sizeof model[0]; s++) {
    int ta = model[s][0], tb = model[s][1], M = model[s][2], N = model[s][3], K = model[s][4];
    int lda = ta ? M : K, ldb = tb ? K : N;
    size_t nc = (size_t)M * N;
    float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * N * sizeof(float));
    float *C0 = malloc(nc * sizeof(float)), *C = malloc(nc * sizeof(float));
    float *first = malloc(nc * sizeof(float));
    if (!CHECK(A && B && C0 && C && first)) {
      free(A), free(B), free(C0), free(C), free(first);
      break;
    }
    check_fill(A, (size_t)M * K);
    check_fill(B, (size_t)K * N);
    check_fill(C0, nc);
    /* Backward GEMMs accumulate (beta 1); forward ones overwrite. */
    float alpha = ta ? 1.0f : 0.75f, beta = ta ? 1.0f : 0.0f;
    int same = 1;
    for (int p = 0; p < 4; p++) {
      memcpy(C, C0, nc * sizeof(float));
      cnn_gemm(pools[p], ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
      if (p == 0)
        memcpy(first, C, nc * sizeof(float));
      else if (memcmp(first, C, nc * sizeof(float)) != 0) {
        fprintf(stderr, "shape %dx%dx%d ta=%d tb=%d: pool of %d differs from pool of 1\n", M, N, K,
                ta, tb, p + 1);
        same = 0;
      }
    }
    CHECK(same);
    /* And the result is right: spot checks against double sums. */
    int wrong = 0;
    for (int r = 0; r < 300; r++) {
      int i = r < 4 ? (r & 1) * (M - 1) : check_rng_int(M),
          j = r < 4 ? (r >> 1) * (N - 1) : check_rng_int(N);
      double want = alpha * dot_ref(ta, tb, K, A, lda, B, ldb, i, j) + beta * C0[(size_t)i * N + j];
      double scale = 0;
      for (int k = 0; k < K; k++) {
        double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        scale += fabs(a * b);
      }
      scale = fabs(alpha) * scale + fabs(beta * C0[(size_t)i * N + j]);
      if (!(fabs(first[(size_t)i * N + j] - want) <= (K + 4) * ldexp(1.0, -23) * scale)) wrong++;
    }
    CHECK_EQ_INT(wrong, 0);
    free(A), free(B), free(C0), free(C), free(first);
  }
done:
  for (int p = 0; p < 4; p++) cnn_threads_free(pools[p]);
}

/* Batch-1 inference (M = 1, B streamed in place) and few rows (M <= 6, B
 * read in place) must give every row exactly what the same row gets inside a
 * big product (packed B), so that cnn_predict and cnn_predictions agree bit
 * for bit. N = 6200 spans two stream chunks; N = 17 and 10 leave narrow tiles;
 * K = 5000 makes several k blocks; with a pool, N = 5000 and 1001 (a masked
 * tail) split one row by k blocks over the threads (2 and 4 blocks). */
static void test_rows_match_batch(cnn_threads *pool) {
  static const int shapes[][2] = {{5000, 576}, {10, 5000}, {17, 9},
                                  {6200, 100}, {64, 288},  {1001, 1200}};
  static const float betas[] = {0.0f, 1.0f, 0.25f};
  int mismatches = 0, cases = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int ta = 0; ta < 2; ta++)
      for (size_t bi = 0; bi < sizeof betas / sizeof betas[0]; bi++) {
        const int M = 32, N = shapes[s][0], K = shapes[s][1], lda = ta ? M : K;
        const float alpha = 1.0f, beta = betas[bi];
        size_t nc = (size_t)M * N;
        float *A = malloc((size_t)M * K * sizeof(float)),
              *B = malloc((size_t)K * N * sizeof(float));
        float *C0 = malloc(nc * sizeof(float)), *C = malloc(nc * sizeof(float));
        float *R = malloc(nc * sizeof(float));
        if (!CHECK(A && B && C0 && C && R)) {
          free(A), free(B), free(C0), free(C), free(R);
          return;
        }
        check_fill(A, (size_t)M * K), check_fill(B, (size_t)K * N), check_fill(C0, nc);
        memcpy(C, C0, nc * sizeof(float));
        cnn_gemm(pool, ta, 0, M, N, K, alpha, A, lda, B, N, beta, C, N);
        /* Row by row, then three rows at a time. */
        memcpy(R, C0, nc * sizeof(float));
        for (int i = 0; i < M; i++) {
          const float *ai = ta ? A + i : A + (size_t)i * K;
          cnn_gemm(pool, ta, 0, 1, N, K, alpha, ai, lda, B, N, beta, R + (size_t)i * N, N);
        }
        mismatches += memcmp(C, R, nc * sizeof(float)) != 0;
        memcpy(R, C0, nc * sizeof(float));
        for (int i = 0; i < M; i += 3) {
          int m = M - i < 3 ? M - i : 3;
          const float *ai = ta ? A + i : A + (size_t)i * K;
          cnn_gemm(pool, ta, 0, m, N, K, alpha, ai, lda, B, N, beta, R + (size_t)i * N, N);
        }
        mismatches += memcmp(C, R, nc * sizeof(float)) != 0;
        cases += 2;
        free(A), free(B), free(C0), free(C), free(R);
      }
  CHECK_EQ_INT(mismatches, 0);
  CHECK_EQ_INT(cases, 72);
}

/* A @ B^T with few rows and a wide, deep B (a dense layer's input gradient)
 * is computed as (B @ A^T)^T; each element is the same FMA chain over the
 * same k blocks, so it must equal, bit for bit, the product with B^T stored
 * as a row-major matrix, which takes the ordinary nests. The dense layer's
 * shapes at batch 2, 32 and 64, several k blocks, odd sizes and a padded
 * leading dimension of C (left alone past N). */
static void test_transposed_b(cnn_threads *pool) {
  static const int shapes[][3] = {
      {32, 576, 5000}, {2, 576, 5000}, {64, 576, 5000}, {13, 611, 1000}, {5, 100, 384}};
  int mismatches = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ldc = N + 3;
    float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)N * K * sizeof(float));
    float *Bt = malloc((size_t)K * N * sizeof(float));
    float *C = malloc((size_t)M * ldc * sizeof(float)),
          *R = malloc((size_t)M * ldc * sizeof(float));
    if (!CHECK(A && B && Bt && C && R)) {
      free(A), free(B), free(Bt), free(C), free(R);
      return;
    }
    check_fill(A, (size_t)M * K), check_fill(B, (size_t)N * K);
    for (int j = 0; j < N; j++)
      for (int k = 0; k < K; k++) Bt[(size_t)k * N + j] = B[(size_t)j * K + k];
    for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = R[i] = SENTINEL;
    C[0] = R[0] = NAN; /* beta == 0: ignored */
    cnn_gemm(pool, 0, 1, M, N, K, 0.5f, A, K, B, K, 0.0f, C, ldc);
    cnn_gemm(pool, 0, 0, M, N, K, 0.5f, A, K, Bt, N, 0.0f, R, ldc);
    mismatches += memcmp(C, R, (size_t)M * ldc * sizeof(float)) != 0;
    for (int i = 0; i < M; i++) mismatches += C[(size_t)i * ldc + N] != SENTINEL;
    free(A), free(B), free(Bt), free(C), free(R);
  }
  CHECK_EQ_INT(mismatches, 0);
}

/* cnn_gemm_bias_prepacked, with B packed once by cnn_gemm_pack for the
 * pool's instruction set, is bit for bit cnn_gemm_bias: one row (B
 * streamed in place), a few (read in place), many (the packed nests, in
 * bands per thread), with and without bias and ReLU, N off the tile grid,
 * K of one, two and three k blocks (uneven: 1000 = 334 + 334 + 332). */
static void test_prepacked(cnn_threads *pool) {
  static const int shapes[][3] = {{1, 5000, 576},   {5, 300, 1000}, {40, 611, 1000},
                                  {128, 5000, 576}, {33, 10, 5000}, {200, 77, 9}};
  cnn_isa isa = cnn_threads_isa(pool);
  int mismatches = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int relu = 0; relu < 2; relu++) {
      const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
      float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * N * sizeof(float));
      float *bp = malloc(cnn_gemm_packed_size(isa, K, N) * sizeof(float));
      float *bias = malloc((size_t)N * sizeof(float));
      float *C = malloc((size_t)M * N * sizeof(float)), *R = malloc((size_t)M * N * sizeof(float));
      if (!CHECK(A && B && bp && bias && C && R)) {
        free(A), free(B), free(bp), free(bias), free(C), free(R);
        return;
      }
      check_fill(A, (size_t)M * K), check_fill(B, (size_t)K * N), check_fill(bias, (size_t)N);
      cnn_gemm_pack(isa, bp, B, N, K, N);
      const float *b = relu ? bias : NULL;
      cnn_gemm_bias(pool, 0, 0, M, N, K, 1.0f, A, K, B, N, b, relu, R, N);
      cnn_gemm_bias_prepacked(pool, M, N, K, A, K, B, N, bp, b, relu, C, N);
      mismatches += memcmp(C, R, (size_t)M * N * sizeof(float)) != 0;
      free(A), free(B), free(bp), free(bias), free(C), free(R);
    }
  CHECK_EQ_INT(mismatches, 0);
}

/* cnn_gemm_bias is exactly bias rows + cnn_gemm(beta = 1), then the ReLU of
 * cnn_act_forward when asked, in every nest: one row (streamed, and split by
 * k block with a pool), three rows, convolution and dense shapes, A^T, and
 * several k blocks; bias NULL is exactly beta = 0 up to the sign of zero. A
 * NaN in the bias makes a NaN column, which the ReLU turns into zeros. */
static void test_bias(cnn_threads *pool) {
  static const int shapes[][4] = {{1, 5000, 576, 0},     {3, 5000, 576, 0}, {3872, 64, 288, 0},
                                  {21632 / 8, 32, 9, 0}, {32, 10, 5000, 0}, {200, 600, 50, 1},
                                  {7, 17, 5, 1},         {1, 1001, 1200, 1}};
  int mismatches = 0, relu_zeros = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int relu = 0; relu < 2; relu++) {
      int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = shapes[s][3];
      int lda = ta ? M : K;
      size_t nc = (size_t)M * N;
      float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * N * sizeof(float));
      float *bias = malloc((size_t)N * sizeof(float)), *C = malloc(nc * sizeof(float));
      float *R = malloc(nc * sizeof(float));
      if (!CHECK(A && B && bias && C && R)) {
        free(A), free(B), free(bias), free(C), free(R);
        return;
      }
      check_fill(A, (size_t)M * K), check_fill(B, (size_t)K * N), check_fill(bias, (size_t)N);
      bias[N / 2] = NAN;
      for (int i = 0; i < M; i++) memcpy(R + (size_t)i * N, bias, (size_t)N * sizeof(float));
      cnn_gemm(pool, ta, 0, M, N, K, 0.75f, A, lda, B, N, 1.0f, R, N);
      for (size_t i = 0; relu && i < nc; i++) R[i] = R[i] > 0 ? R[i] : 0;
      check_fill(C, nc); /* garbage: the bias form never reads C */
      cnn_gemm_bias(pool, ta, 0, M, N, K, 0.75f, A, lda, B, N, bias, relu, C, N);
      mismatches += memcmp(C, R, nc * sizeof(float)) != 0;
      for (size_t i = 0; relu && i < nc; i++) relu_zeros += C[i] == 0;
      cnn_gemm(pool, ta, 0, M, N, K, 0.75f, A, lda, B, N, 0.0f, R, N);
      for (size_t i = 0; relu && i < nc; i++) R[i] = R[i] > 0 ? R[i] : 0;
      for (size_t i = 0; i < nc; i++) C[i] = NAN;
      cnn_gemm_bias(pool, ta, 0, M, N, K, 0.75f, A, lda, B, N, NULL, relu, C, N);
      for (size_t i = 0; i < nc; i++) mismatches += C[i] != R[i];
      free(A), free(B), free(bias), free(C), free(R);
    }
  CHECK_EQ_INT(mismatches, 0);
  CHECK(relu_zeros > 0); /* the ReLU had negative sums to clamp */
}

/* Callers on their own threads, each with its own thread-local buffers. */
typedef struct caller {
  int seed, ok;
} caller;

static void *caller_main(void *arg) {
  caller *c = arg;
  int M = 150 + c->seed, N = 70, K = 300;
  float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * N * sizeof(float));
  float *C = malloc((size_t)M * N * sizeof(float)), *R = malloc((size_t)M * N * sizeof(float));
  c->ok = A && B && C && R;
  if (c->ok) {
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)((i * 7 + (size_t)c->seed) % 13) - 6;
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (float)((i * 5) % 11) - 5;
    for (int r = 0; r < 20 && c->ok; r++) {
      cnn_gemm(NULL, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
      cnn_gemm_ref(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, R, N);
      /* Small integers: every partial sum is exact, so equal bit for bit. */
      c->ok = memcmp(C, R, (size_t)M * N * sizeof(float)) == 0;
    }
  }
  free(A), free(B), free(C), free(R);
  return NULL;
}

static void test_concurrent_callers(void) {
  pthread_t th[3];
  caller c[3] = {{1, 0}, {2, 0}, {3, 0}};
  int started = 0;
  for (int i = 0; i < 3; i++) started += pthread_create(&th[i], NULL, caller_main, &c[i]) == 0;
  if (!CHECK_EQ_INT(started, 3)) return;
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  CHECK(c[0].ok && c[1].ok && c[2].ok);
}

/* The same products on every instruction set: avx2 and avx512 (and amx,
 * which runs avx512's) give the same bits, each element being one FMA chain
 * over the same k blocks; baseline rounds each product before adding it, so
 * it is held to the tolerance against the reference instead. */
static void test_isas_agree(void) {
  float *out[CNN_ISA_COUNT] = {NULL};
  cnn_threads *pool = NULL;
  for (size_t s = 0; s < sizeof model / sizeof model[0]; s++) {
    int ta = model[s][0], tb = model[s][1], M = model[s][2], N = model[s][3], K = model[s][4];
    if ((double)M * N * K > 2e8) continue; /* the big ones are covered per set above */
    int lda = ta ? M : K, ldb = tb ? K : N;
    size_t nc = (size_t)M * N;
    float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * N * sizeof(float));
    float *bias = malloc((size_t)N * sizeof(float));
    if (!CHECK(A && B && bias)) {
      free(A), free(B), free(bias);
      break;
    }
    check_fill(A, (size_t)M * K);
    check_fill(B, (size_t)K * N);
    check_fill(bias, (size_t)N);
    int ran = 0;
    for (int i = 0; i < CNN_ISA_COUNT; i++) {
      out[i] = NULL;
      cnn_isa isa = (cnn_isa)i;
      cnn_isa got;
      if (cnn_isa_parse(cnn_isa_name(isa), &got, NULL)) continue;
      if (!(pool = check_pool(2, isa))) break;
      out[i] = malloc(nc * sizeof(float));
      if (!CHECK(out[i] != NULL)) break;
      cnn_gemm_bias(pool, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, bias, 1, out[i], N);
      cnn_threads_free(pool);
      pool = NULL;
      ran++;
    }
    for (int i = CNN_ISA_AVX512; i < CNN_ISA_COUNT; i++)
      if (out[CNN_ISA_AVX2] && out[i])
        CHECK(memcmp(out[CNN_ISA_AVX2], out[i], nc * sizeof(float)) == 0);
    if (out[CNN_ISA_BASELINE]) {
      int wrong = 0;
      for (int r = 0; r < 200; r++) {
        int i = check_rng_int(M), j = check_rng_int(N);
        double want = 0.5 * dot_ref(ta, tb, K, A, lda, B, ldb, i, j) + bias[j], scale = 0;
        want = want > 0 ? want : 0;
        for (int k = 0; k < K; k++) {
          double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
          double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
          scale += fabs(a * b);
        }
        scale = 0.5 * scale + fabs(bias[j]);
        float got = out[CNN_ISA_BASELINE][(size_t)i * N + j];
        if (!(fabs(got - want) <= (K + 4) * ldexp(1.0, -23) * scale)) wrong++;
      }
      CHECK_EQ_INT(wrong, 0);
    }
    CHECK(ran >= 1);
    for (int i = 0; i < CNN_ISA_COUNT; i++) free(out[i]), out[i] = NULL;
    free(A), free(B), free(bias);
  }
  cnn_threads_free(pool);
}

/* Pools of 1, 2 and 3 threads on `isa`; 0 (and none) when one fails. */
static int pools_new(cnn_threads *pools[3], cnn_isa isa) {
  for (int p = 0; p < 3; p++)
    if (!(pools[p] = check_pool(p + 1, isa))) {
      while (p--) cnn_threads_free(pools[p]);
      return 0;
    }
  return 1;
}

static void pools_free(cnn_threads *pools[3]) {
  for (int p = 0; p < 3; p++) cnn_threads_free(pools[p]);
}

/* A single row of tiles (2..MR rows) too narrow for every thread to get
 * columns is split by k block over the threads (the first convolution's
 * weight gradient): bit for bit the product of one thread, with beta 0 and
 * 1, a bias and a ReLU, A in place and transposed, N a whole tile, two
 * tiles, and a narrow one (packed per block), K of 6 to 57 blocks. */
static void test_tile_row_split(cnn_isa isa) {
  static const int shapes[][4] = {
      {9, 32, 21632, 1}, {7, 40, 3000, 0}, {5, 20, 2000, 0}, {12, 10, 2500, 1}, {2, 64, 4000, 1}};
  cnn_threads *pools[3];
  int mismatches = 0, runs = 0;
  if (!pools_new(pools, isa)) return;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = shapes[s][3];
    int lda = ta ? M : K, ldc = N + 5;
    size_t nc = (size_t)M * ldc;
    float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * N * sizeof(float));
    float *bias = malloc((size_t)N * sizeof(float)), *C0 = malloc(nc * sizeof(float));
    float *first = malloc(nc * sizeof(float)), *C = malloc(nc * sizeof(float));
    if (!CHECK(A && B && bias && C0 && first && C)) {
      free(A), free(B), free(bias), free(C0), free(first), free(C);
      break;
    }
    check_fill(A, (size_t)M * K), check_fill(B, (size_t)K * N), check_fill(bias, (size_t)N);
    check_fill(C0, nc);
    for (int form = 0; form < 3; form++) /* beta 0, beta 1, bias + ReLU */
      for (int p = 0; p < 3; p++) {
        float *out = p ? C : first;
        memcpy(out, C0, nc * sizeof(float));
        if (form < 2)
          cnn_gemm(pools[p], ta, 0, M, N, K, 0.5f, A, lda, B, N, (float)form, out, ldc);
        else
          cnn_gemm_bias(pools[p], ta, 0, M, N, K, 0.5f, A, lda, B, N, bias, 1, out, ldc);
        if (p) mismatches += memcmp(first, C, nc * sizeof(float)) != 0, runs++;
      }
    /* And the last form is right: spot checks against double sums. */
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j += 7) {
        double want = 0.5 * dot_ref(ta, 0, K, A, lda, B, N, i, j) + bias[j];
        want = want > 0 ? want : 0;
        double got = first[(size_t)i * ldc + j];
        if (!(fabs(got - want) <= 1e-4 * (fabs(want) + 1))) mismatches++;
      }
    free(A), free(B), free(bias), free(C0), free(first), free(C);
  }
  CHECK_EQ_INT(runs, 30);
  CHECK_EQ_INT(mismatches, 0);
  pools_free(pools);
}

/* A narrow C (N <= the tile's rows: the 10-unit output layer's forward)
 * with more rows is computed as C^T, and with A transposed and one k block
 * (its weight gradient) as C^T tiles turned back in registers: bit for bit
 * the first N columns of the same product made wide enough (N + 24
 * columns) to take the usual path, for every transpose, beta 0 and 0.5, a
 * bias and a ReLU, row blocks whole and partial, K at and past a k block,
 * and pools of 1 to 3; the columns past N (ldc > N) are left alone. */
static void test_narrow(cnn_isa isa) {
  static const int shapes[][5] = {{32, 10, 5000, 0, 0}, {128, 10, 5000, 0, 0}, {40, 3, 700, 1, 0},
                                  {17, 12, 900, 0, 1},  {64, 7, 100, 1, 1},    {16, 1, 50, 0, 0},
                                  {5000, 10, 32, 1, 0}, {1001, 12, 384, 1, 1}, {33, 1, 7, 1, 0},
                                  {45, 9, 385, 1, 0}};
  cnn_threads *pools[3];
  int mismatches = 0, runs = 0;
  if (!pools_new(pools, isa)) return;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = shapes[s][3];
    int tb = shapes[s][4], W = N + 24, lda = ta ? M : K, ldc = N + 3;
    float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * N * sizeof(float));
    float *Bw = malloc((size_t)K * W * sizeof(float)), *bias = malloc((size_t)W * sizeof(float));
    float *C0 = malloc((size_t)M * W * sizeof(float)), *C = malloc((size_t)M * ldc * sizeof(float));
    float *Cw = malloc((size_t)M * W * sizeof(float));
    if (!CHECK(A && B && Bw && bias && C0 && C && Cw)) {
      free(A), free(B), free(Bw), free(bias), free(C0), free(C), free(Cw);
      break;
    }
    check_fill(A, (size_t)M * K), check_fill(Bw, (size_t)K * W), check_fill(bias, (size_t)W);
    check_fill(C0, (size_t)M * W);
    /* B is the first N columns of op(Bw). */
    for (int k = 0; k < K; k++)
      for (int j = 0; j < N; j++)
        B[tb ? (size_t)j * K + k : (size_t)k * N + j] =
            Bw[tb ? (size_t)j * K + k : (size_t)k * W + j];
    int ldb = tb ? K : N, ldbw = tb ? K : W;
    for (int form = 0; form < 3; form++) { /* beta 0, beta 0.5, bias + ReLU */
      memcpy(Cw, C0, (size_t)M * W * sizeof(float));
      if (form < 2)
        cnn_gemm(pools[0], ta, tb, M, W, K, 0.75f, A, lda, Bw, ldbw, form * 0.5f, Cw, W);
      else
        cnn_gemm_bias(pools[0], ta, tb, M, W, K, 0.75f, A, lda, Bw, ldbw, bias, 1, Cw, W);
      for (int p = 0; p < 3; p++) {
        for (int i = 0; i < M; i++)
          for (int j = 0; j < ldc; j++)
            C[(size_t)i * ldc + j] = j < N ? C0[(size_t)i * W + j] : SENTINEL;
        if (form < 2)
          cnn_gemm(pools[p], ta, tb, M, N, K, 0.75f, A, lda, B, ldb, form * 0.5f, C, ldc);
        else
          cnn_gemm_bias(pools[p], ta, tb, M, N, K, 0.75f, A, lda, B, ldb, bias, 1, C, ldc);
        runs++;
        for (int i = 0; i < M; i++)
          for (int j = 0; j < ldc; j++) {
            float want = j < N ? Cw[(size_t)i * W + j] : SENTINEL, got = C[(size_t)i * ldc + j];
            if (memcmp(&want, &got, sizeof got) != 0 && mismatches++ < 3)
              fprintf(stderr,
                      "narrow %dx%dx%d ta %d tb %d form %d pool %d: [%d,%d] %.9g, wide %.9g\n", M,
                      N, K, ta, tb, form, p + 1, i, j, got, want);
          }
      }
    }
    free(A), free(B), free(Bw), free(bias), free(C0), free(C), free(Cw);
  }
  CHECK_EQ_INT(runs, 90);
  CHECK_EQ_INT(mismatches, 0);
  pools_free(pools);
}

/* Products with K <= 10 and more rows than a tile (the first convolution,
 * K = 9; the output layer's input gradient, K = 10) keep a B panel in
 * registers instead of running tiles (AVX-512). Each element must still be
 * the tile's FMA chain and writeback: bit for bit the same product with K
 * made 11 deep by zero columns of A (which adds exact zeros at the end of
 * each chain and takes the tiles), for every transpose, K 1..10, N over
 * whole, narrow and masked panels, alpha 1 and not, beta 0, 1 and -0.5, a
 * bias with and without a ReLU, and pools of 1 to 3; nothing outside C
 * changes. */
static void test_small_k(cnn_isa isa) {
  static const int rows[] = {13, 26, 51, 677}, cols[] = {1, 10, 16, 17, 32, 45, 70};
  static const float alphas[] = {1.0f, 0.75f}, betas[] = {0.0f, 1.0f, -0.5f};
  cnn_threads *pools[3];
  int mismatches = 0, runs = 0;
  if (!pools_new(pools, isa)) return;
  for (int K = 1; K <= 10; K++)
    for (int t = 0; t < 4; t++) {
      int ta = t & 1, tb = t >> 1, K2 = 11;
      int M = rows[check_rng_int(4)], N = cols[check_rng_int(7)], ldc = N + 3;
      int lda = ta ? M : K, lda2 = ta ? M : K2, ldb = tb ? K : N, ldb2 = tb ? K2 : N;
      size_t nc = (size_t)M * ldc;
      float *A = malloc((size_t)M * K * sizeof(float)), *A2 = calloc((size_t)M * K2, sizeof(float));
      float *B = malloc((size_t)K * N * sizeof(float)),
            *B2 = malloc((size_t)K2 * N * sizeof(float));
      float *bias = malloc((size_t)N * sizeof(float)), *C0 = malloc(nc * sizeof(float));
      float *want = malloc(nc * sizeof(float)), *C = malloc(nc * sizeof(float));
      if (!CHECK(A && A2 && B && B2 && bias && C0 && want && C)) {
        free(A), free(A2), free(B), free(B2), free(bias), free(C0), free(want), free(C);
        goto done;
      }
      check_fill(A, (size_t)M * K), check_fill(B2, (size_t)K2 * N), check_fill(bias, (size_t)N);
      check_fill(C0, nc);
      for (size_t e = 0; e < nc; e++)
        if (e % (size_t)ldc >= (size_t)N) C0[e] = SENTINEL;
      /* A2 = [A, 0]; B = the first K rows of op(B2). */
      for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++)
          A2[ta ? (size_t)k * lda2 + i : (size_t)i * lda2 + k] =
              A[ta ? (size_t)k * lda + i : (size_t)i * lda + k];
      for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++)
          B[tb ? (size_t)j * ldb + k : (size_t)k * ldb + j] =
              B2[tb ? (size_t)j * ldb2 + k : (size_t)k * ldb2 + j];
      for (int form = 0; form < 8; form++) { /* 6 alpha x beta, then bias (+ ReLU) */
        float alpha = alphas[form & 1], beta = betas[(form >> 1) % 3];
        int biased = form >= 6, relu = form == 7;
        memcpy(want, C0, nc * sizeof(float));
        if (biased)
          cnn_gemm_bias(pools[0], ta, tb, M, N, K2, alpha, A2, lda2, B2, ldb2, bias, relu, want,
                        ldc);
        else
          cnn_gemm(pools[0], ta, tb, M, N, K2, alpha, A2, lda2, B2, ldb2, beta, want, ldc);
        for (int p = 0; p < 3; p++) {
          memcpy(C, C0, nc * sizeof(float));
          if (biased)
            cnn_gemm_bias(pools[p], ta, tb, M, N, K, alpha, A, lda, B, ldb, bias, relu, C, ldc);
          else
            cnn_gemm(pools[p], ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
          runs++;
          for (size_t e = 0; e < nc; e++)
            if (memcmp(&want[e], &C[e], sizeof C[e]) != 0 && mismatches++ < 3)
              fprintf(stderr,
                      "small K %dx%dx%d ta %d tb %d form %d pool %d: [%zu,%zu] %.9g, "
                      "deeper %.9g\n",
                      M, N, K, ta, tb, form, p + 1, e / (size_t)ldc, e % (size_t)ldc, C[e],
                      want[e]);
        }
      }
      free(A), free(A2), free(B), free(B2), free(bias), free(C0), free(want), free(C);
    }
done:
  CHECK_EQ_INT(runs, 10 * 4 * 8 * 3);
  CHECK_EQ_INT(mismatches, 0);
  pools_free(pools);
}

/* Everything above on one instruction set. */
static void test_isa(cnn_isa isa) {
  cnn_threads *pool = check_pool(1, isa);
  if (!pool) return;
  test_degenerate(pool);
  test_against_ref(pool);
  test_beta_zero_ignores_nan(pool);
  test_rows_match_batch(pool);
  test_transposed_b(pool);
  test_prepacked(pool);
  test_bias(pool);
  cnn_threads_free(pool);
  if (!(pool = check_pool(3, isa))) return;
  test_degenerate(pool);
  test_against_ref(pool);
  test_beta_zero_ignores_nan(pool);
  cnn_threads_free(pool);
  if (!(pool = check_pool(2, isa))) return;
  test_rows_match_batch(pool);
  test_transposed_b(pool);
  test_prepacked(pool);
  test_bias(pool);
  cnn_threads_free(pool);
  test_pool_sizes_bitwise(isa);
  test_tile_row_split(isa);
  test_narrow(isa);
  test_small_k(isa);
}

int main(void) {
  /* A NULL pool: one thread, the default instruction set. */
  test_degenerate(NULL);
  test_against_ref(NULL);
  test_beta_zero_ignores_nan(NULL);
  test_rows_match_batch(NULL);
  test_bias(NULL);
  for (int i = 0; i < CNN_ISA_COUNT; i++)
    if (i == CNN_ISA_AMX)
      printf("isa amx: runs the avx512 kernels (tested as avx512)\n");
    else if (check_isa((cnn_isa)i)) {
      printf("isa %s: testing (gemm %s)\n", cnn_isa_name((cnn_isa)i),
             cnn_isa_gemm_kernel((cnn_isa)i));
      test_isa((cnn_isa)i);
    }
  test_isas_agree();
  test_concurrent_callers();
  return check_done();
}
