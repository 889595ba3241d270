/*
 * test_gemm_bf16.c - the mixed-precision products (gemm_bf16.c: bf16
 * operands, fp32 sums) against the naive twin cnn_gemm_ref, for each bf16
 * kernel this CPU has (AMX tiles, AVX512-BF16; the others are named as
 * skipped): all four transpose combinations, sizes from 1 through odd ones
 * to several cache blocks and k blocks, leading dimensions larger than
 * needed, alpha, beta, the bias row and the ReLU, NaN garbage in C under
 * beta == 0, memory outside C left alone, the degenerate calls, the model's
 * shapes with bitwise-identical results for pool sizes 1..3, and the entry
 * points of gemm.h (which fall back to fp32 where there is no kernel).
 *
 * Two tolerances per element, with scale = |alpha| * sum_k |a_ik b_kj| +
 * |beta s_ij| (s the bias or the old C):
 *  - the contract, against the product of the fp32 operands: each operand is
 *    rounded to 8 significant bits (relative error <= 2^-8, half an ulp of
 *    7 stored bits), so each product to within 2^-7 + 2^-16; with fp32's
 *    own sum error,
 *      |ours - ref| <= (2^-7 (1 + 2^-9) + (K + 4) 2^-23) * scale
 *  - a sharp one, against the product of the operands rounded here to bf16
 *    (round to nearest even, written out below): only fp32 sums remain,
 *      |ours - ref_bf16| <= (K + 4) 2^-23 * scale_bf16
 *    which a wrong term, index or rounding mode misses by far (the first
 *    bound alone would let a dropped term through when K is large).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "check.h"
#include "gemm.h"
#include "threads.h"

/* x rounded to bfloat16 (the top 16 bits of a float), to nearest, ties to
 * even, as VCVTNE2PS2BF16 does; it also reads denormals as zero. NaN stays
 * NaN. */
static float to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u) {
    if (u & 0x7fffffu) u |= 0x400000u; /* NaN: keep it one after truncation */
  } else if ((u & 0x7f800000u) == 0) {
    u &= 0x80000000u;
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
  }
  u &= 0xffff0000u;
  memcpy(&x, &u, sizeof x);
  return x;
}

typedef void (*run_fn)(CNN_GEMM_RUN_PARAMS);

/* A bf16 kernel under test: its run function and a pool level that has it. */
typedef struct kernel {
  const char *name;
  run_fn run;
  cnn_isa isa;
} kernel;

static const float SENTINEL = 12345.5f; /* fills C outside the M x N window */

typedef struct gemm_case {
  int ta, tb, M, N, K, lda, ldb, ldc;
  float alpha, beta;
  int bias, relu;
  int nan_c; /* C starts as NaN (only meaningful with beta == 0) */
} gemm_case;

/* C = alpha * op(A) @ op(B) + beta * S, then the ReLU, through the twin in
 * double: S is C, or the bias row copied into C first. */
static void ref(const gemm_case *t, const float *A, const float *B, const float *bias, float *R) {
  if (t->bias)
    for (int i = 0; i < t->M; i++) memcpy(R + (size_t)i * t->ldc, bias, (size_t)t->N * sizeof *R);
  cnn_gemm_ref(t->ta, t->tb, t->M, t->N, t->K, t->alpha, A, t->lda, B, t->ldb, t->beta, R, t->ldc);
  if (t->relu)
    for (int i = 0; i < t->M; i++)
      for (int j = 0; j < t->N; j++) {
        float *r = R + (size_t)i * t->ldc + j;
        *r = *r > 0 ? *r : 0;
      }
}

/* Runs one case through the kernel and both references; returns 1 if every
 * element is within both tolerances and nothing outside C changed. */
static int run_case(const kernel *kn, cnn_threads *pool, const gemm_case *t) {
  int arows = t->ta ? t->K : t->M, acols = t->ta ? t->M : t->K;
  int brows = t->tb ? t->N : t->K, bcols = t->tb ? t->K : t->N;
  size_t na = (size_t)arows * t->lda, nb = (size_t)brows * t->ldb, nc = (size_t)t->M * t->ldc;
  size_t bytes[] = {na, nb, nc, nc, nc, na, nb, nc, nc, na, nb, nc, (size_t)t->N, (size_t)t->N};
  float *m[14] = {NULL};
  int ok = 1;
  for (int i = 0; i < 14; i++)
    if (!(m[i] = malloc((bytes[i] + 1) * sizeof(float)))) ok = 0;
  if (!ok) {
    ok = CHECK(!"out of memory");
    goto done;
  }
  float *A = m[0], *B = m[1], *C = m[2], *C0 = m[3], *R = m[4], *Ar = m[5], *Br = m[6];
  float *Rr = m[7], *S = m[8], *AA = m[9], *AB = m[10], *Sr = m[11], *bias = m[12];
  float *absbias = m[13];
  /* Padding columns of A and B hold NaN: reading one would poison a result. */
  for (size_t i = 0; i < na; i++) A[i] = (int)(i % t->lda) < acols ? check_rng_float() : NAN;
  for (size_t i = 0; i < nb; i++) B[i] = (int)(i % t->ldb) < bcols ? check_rng_float() : NAN;
  check_fill(bias, (size_t)t->N);
  for (int j = 0; j < t->N; j++) absbias[j] = fabsf(bias[j]);
  for (size_t i = 0; i < nc; i++) {
    int inside = (int)(i % t->ldc) < t->N;
    C0[i] = !inside ? SENTINEL : t->nan_c ? NAN : check_rng_float();
  }
  for (size_t i = 0; i < na; i++) Ar[i] = to_bf16(A[i]), AA[i] = fabsf(A[i]);
  for (size_t i = 0; i < nb; i++) Br[i] = to_bf16(B[i]), AB[i] = fabsf(B[i]);

  memcpy(C, C0, nc * sizeof(float));
  kn->run(pool, t->ta, t->tb, t->M, t->N, t->K, t->alpha, A, t->lda, B, t->ldb, t->beta,
          t->bias ? bias : NULL, t->relu, C, t->ldc);
  memcpy(R, C0, nc * sizeof(float));
  ref(t, A, B, bias, R);
  memcpy(Rr, C0, nc * sizeof(float));
  ref(t, Ar, Br, bias, Rr);
  /* The scales: the same sums over absolute values, without the ReLU. */
  gemm_case u = *t;
  u.alpha = fabsf(t->alpha), u.beta = fabsf(t->beta), u.relu = 0;
  for (size_t i = 0; i < nc; i++) S[i] = fabsf(C0[i]);
  ref(&u, AA, AB, absbias, S);
  for (size_t i = 0; i < na; i++) AA[i] = fabsf(Ar[i]);
  for (size_t i = 0; i < nb; i++) AB[i] = fabsf(Br[i]);
  for (size_t i = 0; i < nc; i++) Sr[i] = fabsf(C0[i]);
  ref(&u, AA, AB, absbias, Sr);

  double sharp = (t->K + 4) * ldexp(1.0, -23);
  double contract = ldexp(1.0, -7) * (1 + ldexp(1.0, -9)) + sharp;
  long bad = 0, loose = 0, outside = 0;
  size_t first = 0;
  for (size_t i = 0; i < nc; i++) {
    if ((int)(i % t->ldc) >= t->N) {
      if (memcmp(&C[i], &SENTINEL, sizeof(float)) != 0) outside++;
      continue;
    }
    int sharp_ok = fabs((double)C[i] - Rr[i]) <= sharp * Sr[i] + 1e-30;
    int contract_ok = fabs((double)C[i] - R[i]) <= contract * S[i] + 1e-30;
    if (!(sharp_ok && contract_ok)) {
      if (!bad) first = i;
      bad++;
      loose += !contract_ok;
    }
  }
  if (bad || outside) {
    fprintf(stderr,
            "%s: case ta=%d tb=%d M=%d N=%d K=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g bias=%d "
            "relu=%d nan_c=%d: %ld wrong (%ld beyond the bf16 contract; first [%zu,%zu]: %.9g vs "
            "%.9g, of bf16 operands %.9g), %ld written outside C\n",
            kn->name, t->ta, t->tb, t->M, t->N, t->K, t->lda, t->ldb, t->ldc, t->alpha, t->beta,
            t->bias, t->relu, t->nan_c, bad, loose, bad ? first / t->ldc : 0,
            bad ? first % t->ldc : 0, bad ? C[first] : 0.0, bad ? R[first] : 0.0,
            bad ? Rr[first] : 0.0, outside);
    ok = 0;
  }
done:
  for (int i = 0; i < 14; i++) free(m[i]);
  return ok;
}

static gemm_case make_case(int ta, int tb, int M, int N, int K, int pad, float alpha, float beta) {
  gemm_case t = {ta, tb, M, N, K, 0, 0, 0, alpha, beta, 0, 0, 0};
  t.lda = (ta ? M : K) + (pad ? check_rng_int(pad + 1) : 0);
  t.ldb = (tb ? K : N) + (pad ? check_rng_int(pad + 1) : 0);
  t.ldc = N + (pad ? check_rng_int(pad + 1) : 0);
  return t;
}

static const float alphas[] = {1.0f, -0.5f, 2.25f};
static const float betas[] = {0.0f, 1.0f, -1.5f, 0.25f};

/* Every size class: 1, around a tile (16) and a block (32), odd ones, more
 * than one A block (256 rows), B block (512 columns) or k block (512). */
static void test_against_ref(const kernel *kn, cnn_threads *pool) {
  static const int dims[] = {1, 2, 3, 5, 15, 16, 17, 31, 32, 33, 47, 64, 97, 145, 300};
  static const int deep[] = {1, 2, 9, 10, 31, 32, 33, 63, 64, 65, 288, 511, 513, 1031};
  const int nd = (int)(sizeof dims / sizeof dims[0]), nk = (int)(sizeof deep / sizeof deep[0]);
  int failures = 0, cases = 0;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int mi = 0; mi < 10; mi++)
        for (int ni = 0; ni < 10; ni++) {
          gemm_case t = make_case(ta, tb, dims[mi], dims[ni], deep[check_rng_int(nk)],
                                  check_rng_int(2) ? 5 : 0, alphas[check_rng_int(3)],
                                  betas[check_rng_int(4)]);
          t.bias = check_rng_int(4) == 0;
          t.relu = check_rng_int(3) == 0;
          failures += !run_case(kn, pool, &t);
          cases++;
        }
  for (int r = 0; r < 60; r++) {
    gemm_case t =
        make_case(r & 1, (r >> 1) & 1, dims[check_rng_int(nd)], dims[check_rng_int(nd)],
                  deep[check_rng_int(nk)], 9, alphas[check_rng_int(3)], betas[check_rng_int(4)]);
    t.bias = r % 5 == 0;
    t.relu = r % 3 == 0;
    failures += !run_case(kn, pool, &t);
    cases++;
  }
  /* Several B blocks of columns, A blocks of rows and k blocks at once. */
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      gemm_case t = make_case(ta, tb, 7, 1100, 20, 3, 1.0f, 1.0f);
      failures += !run_case(kn, pool, &t);
      t = make_case(ta, tb, 300, 70, 1100, 2, -1.0f, 0.5f);
      t.relu = 1;
      failures += !run_case(kn, pool, &t);
      t = make_case(ta, tb, 290, 530, 600, 2, 0.5f, 0.0f);
      t.bias = 1;
      failures += !run_case(kn, pool, &t);
      cases += 3;
    }
  CHECK_EQ_INT(failures, 0);
  CHECK(cases > 400);
}

/* beta == 0: C is write-only, NaN in it must not leak into the result. */
static void test_beta_zero_ignores_nan(const kernel *kn, cnn_threads *pool) {
  int failures = 0;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int r = 0; r < 6; r++) {
        gemm_case t = make_case(ta, tb, 1 + check_rng_int(70), 1 + check_rng_int(70),
                                1 + check_rng_int(700), 4, r & 1 ? 1.0f : -2.0f, 0.0f);
        t.nan_c = 1;
        t.relu = r >= 4;
        failures += !run_case(kn, pool, &t);
      }
  CHECK_EQ_INT(failures, 0);
}

/* K == 0 or alpha == 0: C = beta * C (or the bias), A and B unread; M == 0
 * or N == 0 touches nothing. A hand-worked product whose operands are exact
 * in bf16 comes out exact. */
static void test_degenerate(const kernel *kn, cnn_threads *pool) {
  float A[6] = {NAN, NAN, NAN, NAN, NAN, NAN}, B[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
  float C[6] = {1, 2, 3, 4, NAN, 6};
  const float bias[3] = {-1, 0.5f, 2};
  kn->run(pool, 0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 2.0f, NULL, 0, C, 3);
  CHECK(C[0] == 2 && C[1] == 4 && C[2] == 6 && C[3] == 8 && isnan(C[4]) && C[5] == 12);
  kn->run(pool, 0, 0, 2, 3, 2, 0.0f, A, 2, B, 3, 0.5f, NULL, 0, C, 3);
  CHECK(C[0] == 1 && C[1] == 2 && C[2] == 3 && C[3] == 4 && isnan(C[4]) && C[5] == 6);
  kn->run(pool, 1, 1, 2, 3, 2, 0.0f, A, 2, B, 2, 0.0f, NULL, 0, C, 3);
  CHECK(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0 && C[4] == 0 && C[5] == 0);
  kn->run(pool, 0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 1.0f, bias, 1, C, 3);
  CHECK(C[0] == 0 && C[1] == 0.5f && C[2] == 2 && C[3] == 0 && C[4] == 0.5f && C[5] == 2);
  kn->run(pool, 0, 0, 0, 3, 2, 1.0f, A, 2, B, 3, 0.0f, NULL, 0, NULL, 3);
  kn->run(pool, 0, 0, 2, 0, 2, 1.0f, A, 2, B, 1, 0.0f, NULL, 0, NULL, 1);

  const float a[4] = {1, 2, 3, 4}, at[4] = {1, 3, 2, 4};
  const float b[4] = {5, 6, 7, 8}, bt[4] = {5, 7, 6, 8};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      float c[4] = {1, 1, 1, 1};
      kn->run(pool, ta, tb, 2, 2, 2, 2.0f, ta ? at : a, 2, tb ? bt : b, 2, -1.0f, NULL, 0, c, 2);
      CHECK(c[0] == 37 && c[1] == 43 && c[2] == 85 && c[3] == 99);
    }
}

/* The bias form is exactly the bias copied into C and beta = 1. */
static void test_bias_is_beta_one(const kernel *kn, cnn_threads *pool) {
  static const int shapes[][4] = {
      {3872, 64, 288, 0}, {32, 5000, 576, 0}, {200, 600, 50, 1}, {7, 17, 5, 1}, {33, 10, 1031, 0}};
  int mismatches = 0;
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
      check_fill(A, (size_t)M * K), check_fill(B, (size_t)K * N), check_fill(bias, (size_t)N),
          check_fill(C, nc);
      bias[N / 2] = NAN; /* a NaN column, which the ReLU turns into zeros */
      for (int i = 0; i < M; i++) memcpy(R + (size_t)i * N, bias, (size_t)N * sizeof(float));
      kn->run(pool, ta, 0, M, N, K, 0.75f, A, lda, B, N, 1.0f, NULL, relu, R, N);
      kn->run(pool, ta, 0, M, N, K, 0.75f, A, lda, B, N, 1.0f, bias, relu, C, N);
      mismatches += memcmp(C, R, nc * sizeof(float)) != 0;
      free(A), free(B), free(bias), free(C), free(R);
    }
  CHECK_EQ_INT(mismatches, 0);
}

/* The model's shapes at batch 32 (as in test_gemm.c). */
static const int model[][5] = {
    {0, 0, 21632, 32, 9},  {1, 0, 9, 32, 21632},  {0, 0, 3872, 64, 288}, {1, 0, 288, 64, 3872},
    {0, 1, 3872, 288, 64}, {0, 0, 288, 64, 576},  {1, 0, 576, 64, 288},  {0, 1, 288, 576, 64},
    {0, 0, 32, 5000, 576}, {1, 0, 576, 5000, 32}, {0, 1, 32, 576, 5000}, {0, 0, 32, 10, 5000},
    {1, 0, 5000, 10, 32},  {0, 1, 32, 5000, 10},  {0, 0, 1, 5000, 576},  {0, 0, 121, 64, 288},
};

/* Pool sizes 1..3 give the same bits on the model's shapes, and the result
 * is right: spot checks against double sums with the contract's tolerance. */
static void test_model_pools(const kernel *kn) {
  cnn_threads *pools[3] = {NULL, NULL, NULL};
  for (int p = 0; p < 3; p++)
    if (!(pools[p] = check_pool(p + 1, kn->isa))) goto done;
  for (size_t s = 0; s < sizeof model / sizeof model[0]; s++) {
    int ta = model[s][0], tb = model[s][1], M = model[s][2], N = model[s][3], K = model[s][4];
    int lda = ta ? M : K, ldb = tb ? K : N;
    size_t nc = (size_t)M * N;
    float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * N * sizeof(float));
    float *C0 = malloc(nc * sizeof(float)), *C = malloc(nc * sizeof(float));
    float *first = malloc(nc * sizeof(float)), *bias = malloc((size_t)N * sizeof(float));
    if (!CHECK(A && B && C0 && C && first && bias)) {
      free(A), free(B), free(C0), free(C), free(first), free(bias);
      break;
    }
    check_fill(A, (size_t)M * K), check_fill(B, (size_t)K * N), check_fill(C0, nc),
        check_fill(bias, (size_t)N);
    /* Backward products accumulate (beta 1); forward ones add the bias. */
    float alpha = ta ? 1.0f : 0.75f, beta = 1.0f;
    const float *b = ta || tb ? NULL : bias;
    int relu = b != NULL, same = 1;
    for (int p = 0; p < 3; p++) {
      memcpy(C, C0, nc * sizeof(float));
      kn->run(pools[p], ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, b, relu, C, N);
      if (p == 0)
        memcpy(first, C, nc * sizeof(float));
      else if (memcmp(first, C, nc * sizeof(float)) != 0) {
        fprintf(stderr, "%s: shape %dx%dx%d ta=%d tb=%d: pool of %d differs from pool of 1\n",
                kn->name, M, N, K, ta, tb, p + 1);
        same = 0;
      }
    }
    CHECK(same);
    int wrong = 0;
    for (int r = 0; r < 300; r++) {
      int i = r < 4 ? (r & 1) * (M - 1) : check_rng_int(M),
          j = r < 4 ? (r >> 1) * (N - 1) : check_rng_int(N);
      double sum = 0, scale = 0;
      for (int k = 0; k < K; k++) {
        double x = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        double y = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        sum += x * y, scale += fabs(x * y);
      }
      double sv = b ? b[j] : C0[(size_t)i * N + j];
      double want = alpha * sum + beta * sv;
      if (relu) want = want > 0 ? want : 0;
      scale = fabs(alpha) * scale + fabs(beta * sv);
      double tol = (ldexp(1.0, -7) * (1 + ldexp(1.0, -9)) + (K + 4) * ldexp(1.0, -23)) * scale;
      if (!(fabs(first[(size_t)i * N + j] - want) <= tol)) wrong++;
    }
    if (wrong)
      fprintf(stderr, "%s: shape %dx%dx%d ta=%d tb=%d: %d of 300 beyond the bf16 contract\n",
              kn->name, M, N, K, ta, tb, wrong);
    CHECK_EQ_INT(wrong, 0);
    free(A), free(B), free(C0), free(C), free(first), free(bias);
  }
done:
  for (int p = 0; p < 3; p++) cnn_threads_free(pools[p]);
}

/* The entry points of gemm.h: at a level with a bf16 kernel each product
 * is that kernel's, or (too small to gain) exactly the fp32 one; at a level
 * without one, exactly the fp32 one. */
static void test_entry_points(cnn_isa isa) {
  static const int shapes[][5] = {{0, 0, 3872, 64, 288}, {1, 0, 576, 64, 288}, {0, 1, 32, 576, 64},
                                  {0, 0, 1, 10, 5},      {0, 0, 21632, 32, 9}, {0, 0, 3, 3, 3}};
  cnn_bf16 has = cnn_isa_bf16(isa);
  run_fn run = has == CNN_BF16_AMX      ? cnn_gemm_run_bf16_amx
               : has == CNN_BF16_AVX512 ? cnn_gemm_run_bf16_avx512
                                        : NULL;
  cnn_threads *pool = check_pool(2, isa);
  if (!pool) return;
  int bad = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int ta = shapes[s][0], tb = shapes[s][1], M = shapes[s][2], N = shapes[s][3];
    int K = shapes[s][4], lda = ta ? M : K, ldb = tb ? K : N;
    size_t nc = (size_t)M * N;
    float *A = malloc((size_t)M * K * sizeof(float)), *B = malloc((size_t)K * N * sizeof(float));
    float *bias = malloc((size_t)N * sizeof(float)), *C = malloc(nc * sizeof(float));
    float *K16 = malloc(nc * sizeof(float)), *F32 = malloc(nc * sizeof(float));
    if (!CHECK(A && B && bias && C && K16 && F32)) {
      free(A), free(B), free(bias), free(C), free(K16), free(F32);
      break;
    }
    check_fill(A, (size_t)M * K), check_fill(B, (size_t)K * N), check_fill(bias, (size_t)N);
    for (int form = 0; form < 3; form++) {
      for (size_t i = 0; i < nc; i++) C[i] = K16[i] = F32[i] = (float)(i % 7) - 3;
      if (form == 0) {
        cnn_gemm_bf16(pool, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C, N);
        cnn_gemm(pool, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, F32, N);
        if (run) run(pool, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, NULL, 0, K16, N);
      } else if (form == 1) {
        cnn_gemm_bias_bf16(pool, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, bias, 1, C, N);
        cnn_gemm_bias(pool, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, bias, 1, F32, N);
        if (run) run(pool, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 1.0f, bias, 1, K16, N);
      } else {
        cnn_gemm_bias_serial_bf16(isa, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, bias, 0, C, N);
        cnn_gemm_bias_serial(pool, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, bias, 0, F32, N);
        if (run) run(NULL, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 1.0f, bias, 0, K16, N);
      }
      int is_f32 = memcmp(C, F32, nc * sizeof(float)) == 0;
      int is_k16 = run && memcmp(C, K16, nc * sizeof(float)) == 0;
      if (!(is_f32 || is_k16)) {
        fprintf(stderr, "isa %s: entry point %d on %dx%dx%d is neither fp32 nor %s\n",
                cnn_isa_name(isa), form, M, N, K, cnn_isa_gemm_bf16_kernel(isa));
        bad++;
      }
    }
    free(A), free(B), free(bias), free(C), free(K16), free(F32);
  }
  CHECK_EQ_INT(bad, 0);
  cnn_threads_free(pool);
}

/* B converted once (cnn_bf16_pack, cnn_gemm_bias_bf16_packed): the packed
 * values are B's rounded to bf16; products of rows of A against them are
 * right to the sharp bound (against double sums of the rounded operands),
 * leave everything outside C alone, ignore NaN in the padding of A, and
 * give the same bits for pool sizes 1..3. At a level without a bf16 kernel
 * this is the fallback's loop; with one, the AVX512-BF16 rows, through
 * several k blocks when K is long. */
static void test_packed(cnn_isa isa) {
  static const int shapes[][3] = {{1, 5000, 576}, {1, 10, 5000}, {3, 17, 31}, {4, 64, 288},
                                  {5, 100, 9},    {7, 33, 2},    {15, 16, 1}, {16, 48, 577},
                                  {2, 70, 9000},  {1, 1, 1},     {33, 20, 40}};
  cnn_threads *pools[3] = {NULL, NULL, NULL};
  for (int p = 0; p < 3; p++)
    if (!(pools[p] = check_pool(p + 1, isa))) goto done;
  long bad = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], lda = K + 3, ldc = N + 2;
    size_t na = (size_t)M * lda, nb = (size_t)K * N, nc = (size_t)M * ldc;
    size_t np = cnn_bf16_packed_size(K, N);
    float *A = malloc(na * sizeof(float)), *B = malloc(nb * sizeof(float));
    float *Bu = malloc(nb * sizeof(float)), *bias = malloc((size_t)N * sizeof(float));
    float *C = malloc(nc * sizeof(float)), *first = malloc(nc * sizeof(float));
    uint16_t *bp = malloc(np * sizeof *bp);
    if (!CHECK(A && B && Bu && bias && C && first && bp)) {
      free(A), free(B), free(Bu), free(bias), free(C), free(first), free(bp);
      break;
    }
    for (size_t i = 0; i < na; i++) A[i] = (int)(i % lda) < K ? check_rng_float() : NAN;
    check_fill(B, nb), check_fill(bias, (size_t)N);
    cnn_bf16_pack(bp, B, N, K, N);
    cnn_bf16_unpack(Bu, bp, K, N);
    long rounded = 0;
    for (size_t i = 0; i < nb; i++) rounded += memcmp(&Bu[i], &(float){to_bf16(B[i])}, 4) != 0;
    if (rounded)
      fprintf(stderr, "packed %dx%d: %ld values are not B's rounded to bf16\n", K, N, rounded);
    bad += rounded;
    for (int p = 0; p < 3; p++) {
      int relu = (int)(s % 2), with_bias = s % 3 != 1;
      for (size_t i = 0; i < nc; i++) C[i] = SENTINEL;
      cnn_gemm_bias_bf16_packed(pools[p], M, N, K, A, lda, bp, with_bias ? bias : NULL, relu, C,
                                ldc);
      if (p > 0) {
        if (memcmp(first, C, nc * sizeof(float)) != 0) {
          fprintf(stderr, "isa %s: packed %dx%dx%d: pool of %d differs from pool of 1\n",
                  cnn_isa_name(isa), M, N, K, p + 1);
          bad++;
        }
        continue;
      }
      memcpy(first, C, nc * sizeof(float));
      for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
          float got = C[(size_t)i * ldc + j];
          if (j >= N) {
            bad += memcmp(&got, &SENTINEL, sizeof got) != 0;
            continue;
          }
          double sum = with_bias ? bias[j] : 0, scale = with_bias ? fabs(bias[j]) : 0;
          for (int k = 0; k < K; k++) {
            double x = to_bf16(A[(size_t)i * lda + k]), y = Bu[(size_t)k * N + j];
            sum += x * y, scale += fabs(x * y);
          }
          if (relu) sum = sum > 0 ? sum : 0;
          if (!(fabs(got - sum) <= (K + 4) * ldexp(1.0, -23) * scale + 1e-30)) {
            if (bad < 5)
              fprintf(stderr, "isa %s: packed %dx%dx%d [%d,%d]: %.9g, want %.9g\n",
                      cnn_isa_name(isa), M, N, K, i, j, got, sum);
            bad++;
          }
        }
    }
    free(A), free(B), free(Bu), free(bias), free(C), free(first), free(bp);
  }
  CHECK_EQ_INT(bad, 0);
done:
  for (int p = 0; p < 3; p++) cnn_threads_free(pools[p]);
}

/* Why this CPU has no such kernel, for the log: the first missing feature. */
static const char *missing(cnn_bf16 want) {
  const char *f = cnn_isa_features();
  if (strstr(f, "avx512f=0") || strstr(f, "avx512bw=0") || strstr(f, "avx512dq=0") ||
      strstr(f, "avx512vl=0"))
    return "avx512 (f, bw, dq, vl)";
  if (strstr(f, "avx512_bf16=0")) return "avx512_bf16";
  if (want == CNN_BF16_AMX && strstr(f, "amx_tile=0")) return "amx_tile";
  if (want == CNN_BF16_AMX && strstr(f, "amx_bf16=0")) return "amx_bf16";
  return "a capped level ($CNN_ISA)";
}

int main(void) {
  check_seed(0x2545f4914f6cdd1dull);
  const kernel kernels[] = {
      {"amx-bf16", cnn_gemm_run_bf16_amx, CNN_ISA_AMX},
      {"avx512-bf16", cnn_gemm_run_bf16_avx512, CNN_ISA_AVX512},
  };
  const cnn_bf16 want[] = {CNN_BF16_AMX, CNN_BF16_AVX512};
  /* The AVX-512 kernel is tested wherever the CPU can run it, also where
   * the dispatcher prefers another (AMX, or fp32 below level amx). */
  cnn_isa got;
  int avx512_bf16 = cnn_isa_parse("avx512", &got, NULL) == 0 &&
                    strstr(cnn_isa_features(), "avx512_bf16=1") != NULL;
  for (int k = 0; k < 2; k++) {
    const kernel *kn = &kernels[k];
    if (k == 0 ? cnn_isa_bf16(kn->isa) != want[k] : !avx512_bf16) {
      printf("bf16 %s: not supported by this CPU, skipped (needs %s; cpu: %s)\n", kn->name,
             missing(want[k]), cnn_isa_features());
      continue;
    }
    printf("bf16 %s: testing (isa %s dispatches bf16 products to %s)\n", kn->name,
           cnn_isa_name(kn->isa), cnn_isa_gemm_bf16_kernel(kn->isa));
    cnn_threads *pool = check_pool(1, kn->isa);
    if (!pool) continue;
    test_degenerate(kn, pool);
    test_against_ref(kn, pool);
    test_beta_zero_ignores_nan(kn, pool);
    test_bias_is_beta_one(kn, pool);
    cnn_threads_free(pool);
    if (!(pool = check_pool(3, kn->isa))) continue;
    test_degenerate(kn, pool);
    test_against_ref(kn, pool);
    test_beta_zero_ignores_nan(kn, pool);
    cnn_threads_free(pool);
    test_model_pools(kn);
  }
  /* Every level this CPU runs, with or without a bf16 kernel. */
  for (int i = 0; i < CNN_ISA_COUNT; i++) {
    if (cnn_isa_parse(cnn_isa_name((cnn_isa)i), &got, NULL) == 0) {
      test_entry_points((cnn_isa)i);
      test_packed((cnn_isa)i);
      printf("isa %s: B converted once: %s\n", cnn_isa_name((cnn_isa)i),
             cnn_isa_bf16((cnn_isa)i) ? "avx512-bf16 rows" : "fallback loop");
    }
  }
  return check_done();
}
