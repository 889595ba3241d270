/*
 * bench_gemm_bf16.c - the mixed-precision products (bf16 operands, fp32
 * sums) beside the fp32 cnn_gemm, on the GEMMs of one training step of the
 * MNIST model at batch 32 and 128 (the shapes of bench_gemm.c), for 1 and 2
 * threads: the fp32 kernel of the pool's level, the AMX kernel and the
 * AVX512-BF16 kernel where the CPU has them (called directly, whatever the
 * dispatcher would choose), and cnn_gemm_bf16 as dispatched. Times include
 * converting and packing the operands, as in training, where they change
 * every step. The last lines sum each column over one training step.
 *
 * With "sweep" it times small products of every mix of M, N and K on one
 * thread instead, fp32 against the best bf16 kernel, to find where bf16
 * stops paying (gemm.c's gemm_bf16_pays).
 *
 * Usage: bench_gemm_bf16 [seconds per measurement, default 0.2] [sweep]
 * A benchmark, not a test: it prints figures and exits 0 unless memory runs
 * out or a thread pool cannot start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"
#include "bench.h"
#include "gemm.h"
#include "threads.h"

typedef struct shape {
  const char *name;
  int ta, tb;
  int M, N, K; /* at batch 32 */
  int scale;   /* which dimension grows with the batch: 'M' or 'K' */
} shape;

/* As in bench_gemm.c. fwd: Y = X @ W; dW = X^T @ dY (ta); dX = dY @ W^T (tb). */
static const shape shapes[] = {
    {"conv1 fwd", 0, 0, 21632, 32, 9, 'M'},   {"conv1 dW", 1, 0, 9, 32, 21632, 'K'},
    {"conv2 fwd", 0, 0, 3872, 64, 288, 'M'},  {"conv2 dW", 1, 0, 288, 64, 3872, 'K'},
    {"conv2 dX", 0, 1, 3872, 288, 64, 'M'},   {"conv3 fwd", 0, 0, 288, 64, 576, 'M'},
    {"conv3 dW", 1, 0, 576, 64, 288, 'K'},    {"conv3 dX", 0, 1, 288, 576, 64, 'M'},
    {"dense1 fwd", 0, 0, 32, 5000, 576, 'M'}, {"dense1 dW", 1, 0, 576, 5000, 32, 'K'},
    {"dense1 dX", 0, 1, 32, 576, 5000, 'M'},  {"dense2 fwd", 0, 0, 32, 10, 5000, 'M'},
    {"dense2 dW", 1, 0, 5000, 10, 32, 'K'},   {"dense2 dX", 0, 1, 32, 5000, 10, 'M'},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

/* The columns: fp32, each bf16 kernel, the dispatcher. */
#define NIMPL 4
static const char *const impl_names[NIMPL] = {"fp32", "amx", "avx512bf", "bf16 disp"};

typedef struct operands {
  int ta, tb, M, N, K, lda, ldb;
  float *A, *B, *C;
} operands;

static int operands_new(operands *o, int ta, int tb, int M, int N, int K) {
  *o = (operands){ta, tb, M, N, K, ta ? M : K, tb ? K : N, NULL, NULL, NULL};
  size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
  o->A = cnn_malloc(na * sizeof(float)); /* as the network's operands (base.c) */
  o->B = cnn_malloc(nb * sizeof(float));
  o->C = cnn_malloc(nc * sizeof(float));
  if (!o->A || !o->B || !o->C) return 0;
  for (size_t i = 0; i < na; i++) o->A[i] = bench_rand();
  for (size_t i = 0; i < nb; i++) o->B[i] = bench_rand();
  return 1;
}

static void operands_free(operands *o) {
  cnn_free(o->A);
  cnn_free(o->B);
  cnn_free(o->C);
}

static void bench_call(int impl, cnn_threads *pool, const operands *o) {
  switch (impl) {
  case 0:
    cnn_gemm(pool, o->ta, o->tb, o->M, o->N, o->K, 1.0f, o->A, o->lda, o->B, o->ldb, 0.0f, o->C,
             o->N);
    break;
  case 1:
    cnn_gemm_run_bf16_amx(pool, o->ta, o->tb, o->M, o->N, o->K, 1.0f, o->A, o->lda, o->B, o->ldb,
                          0.0f, NULL, 0, o->C, o->N);
    break;
  case 2:
    cnn_gemm_run_bf16_avx512(pool, o->ta, o->tb, o->M, o->N, o->K, 1.0f, o->A, o->lda, o->B, o->ldb,
                             0.0f, NULL, 0, o->C, o->N);
    break;
  default:
    cnn_gemm_bf16(pool, o->ta, o->tb, o->M, o->N, o->K, 1.0f, o->A, o->lda, o->B, o->ldb, 0.0f,
                  o->C, o->N);
  }
}

/* Median seconds of one call, over repeats filling about `budget` seconds. */
static double bench_time(int impl, cnn_threads *pool, const operands *o, double budget) {
  static double times[201];
  int n = 0;
  bench_call(impl, pool, o); /* warm caches, pages and thread-local buffers */
  double start = bench_now();
  while (n < 201 && (n < 5 || bench_now() - start < budget)) {
    double t = bench_now();
    bench_call(impl, pool, o);
    times[n++] = bench_now() - t;
  }
  qsort(times, (size_t)n, sizeof times[0], bench_cmp);
  return times[n / 2];
}

/* Which columns this CPU can run: each bf16 kernel wherever it can run,
 * also where the dispatcher prefers another. */
static void bench_impls(int has[NIMPL]) {
  has[0] = has[3] = 1;
  has[1] = cnn_isa_bf16(CNN_ISA_AMX) == CNN_BF16_AMX;
  cnn_isa got;
  has[2] = cnn_isa_parse("avx512", &got, NULL) == 0 &&
           strstr(cnn_isa_features(), "avx512_bf16=1") != NULL;
}

/* Small products, one thread: fp32 ms against the best bf16 kernel's. */
static int bench_sweep(cnn_threads *pool, double budget, const int has[NIMPL]) {
  static const int Ms[] = {16, 32, 64, 128, 288, 576, 1024, 4096};
  static const int Ns[] = {10, 16, 32, 64, 128, 288, 576};
  static const int Ks[] = {9, 16, 32, 64, 128, 288, 576};
  int best = has[1] ? 1 : has[2] ? 2 : 0;
  if (!best) {
    printf("no bf16 kernel on this CPU: nothing to sweep\n");
    return 0;
  }
  printf("fp32 time / %s time (above 1: bf16 pays), NN, one thread\n", impl_names[best]);
  for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
    printf("M=%-5d  N\\K", Ms[mi]);
    for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) printf(" %6d", Ks[ki]);
    printf("\n");
    for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++) {
      printf("      %6d", Ns[ni]);
      for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
        operands o;
        if (!operands_new(&o, 0, 0, Ms[mi], Ns[ni], Ks[ki])) {
          fprintf(stderr, "bench_gemm_bf16: out of memory\n");
          operands_free(&o);
          return 1;
        }
        double f = bench_time(0, pool, &o, budget), b = bench_time(best, pool, &o, budget);
        printf(" %6.2f", f / b);
        fflush(stdout);
        operands_free(&o);
      }
      printf("\n");
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  double budget = argc > 1 ? atof(argv[1]) : 0.2;
  if (!(budget > 0)) budget = 0.2;
  int sweep = argc > 2 && strcmp(argv[2], "sweep") == 0;
  int has[NIMPL];
  bench_impls(has);
  cnn_threads *pools[2] = {NULL, NULL};
  char err[CNN_ERRMAX];
  for (int t = 0; t < 2; t++)
    if (cnn_threads_new(&pools[t], t + 1, err) != CNN_OK) {
      fprintf(stderr, "bench_gemm_bf16: %s\n", err);
      return 1;
    }
  cnn_isa isa = cnn_threads_isa(pools[0]);
  printf("isa %s: fp32 gemm %s, bf16 gemm %s\n", cnn_isa_name(isa), cnn_isa_gemm_kernel(isa),
         cnn_isa_gemm_bf16_kernel(isa));
  if (sweep) {
    int status = bench_sweep(pools[0], budget, has);
    cnn_threads_free(pools[0]);
    cnn_threads_free(pools[1]);
    return status;
  }
  printf("GFLOP/s (2*M*N*K / median time); x: fp32 time / best bf16 kernel time\n");
  printf("%-10s %5s %5s %5s %5s %2s", "shape", "batch", "M", "N", "K", "op");
  for (int t = 1; t <= 2; t++) {
    for (int i = 0; i < NIMPL; i++)
      if (has[i]) printf(" %*s %dT", (int)strlen(impl_names[i]) > 6 ? 9 : 6, impl_names[i], t);
    printf(" %5s", "x");
  }
  printf("\n");
  double step[2][2][NIMPL] = {{{0}}}; /* [batch 32, 128][threads-1][impl] */
  const int batches[] = {32, 128};
  for (int bi = 0; bi < 2; bi++)
    for (int s = 0; s < NSHAPES; s++) {
      const shape *sh = &shapes[s];
      int M = sh->M, K = sh->K;
      if (sh->scale == 'M')
        M = (int)((long long)M * batches[bi] / 32);
      else
        K = K * batches[bi] / 32;
      operands o;
      if (!operands_new(&o, sh->ta, sh->tb, M, sh->N, K)) {
        fprintf(stderr, "bench_gemm_bf16: out of memory\n");
        return 1;
      }
      printf("%-10s %5d %5d %5d %5d %s%s", sh->name, batches[bi], M, sh->N, K, sh->ta ? "T" : "N",
             sh->tb ? "T" : "N");
      double gflop = 2.0 * M * sh->N * K * 1e-9;
      for (int t = 0; t < 2; t++) {
        double sec[NIMPL], best = 0;
        for (int i = 0; i < NIMPL; i++) {
          if (!has[i]) continue;
          sec[i] = bench_time(i, pools[t], &o, budget);
          step[bi][t][i] += sec[i];
          printf(" %*.1f", (int)strlen(impl_names[i]) > 6 ? 12 : 9, gflop / sec[i]);
          if ((i == 1 || i == 2) && (best == 0 || sec[i] < best)) best = sec[i];
        }
        printf(" %5.2f", best > 0 ? sec[0] / best : 0.0);
        fflush(stdout);
      }
      printf("\n");
      operands_free(&o);
    }
  for (int bi = 0; bi < 2; bi++) {
    printf("one training step at batch %d, GEMMs only (sum of the medians, ms):\n", batches[bi]);
    for (int t = 0; t < 2; t++) {
      printf("  %d thread%s:", t + 1, t ? "s" : " ");
      for (int i = 0; i < NIMPL; i++)
        if (has[i]) printf("  %s %.2f", impl_names[i], step[bi][t][i] * 1e3);
      printf("\n");
    }
  }
  cnn_threads_free(pools[0]);
  cnn_threads_free(pools[1]);
  return 0;
}
