/*
 * bench_gemm.c - cnn_gemm on the GEMMs of one training step of the MNIST
 * model (conv 32-64-64 3x3, dense 5000, dense 10; convolutions through im2col),
 * at batch 32 and 128, plus the forward GEMMs of batch-1 inference. In fp32
 * the engine runs the second convolution's forward and both gradients as
 * Winograd products instead (src/conv2d.c's rule; bench_winograd times
 * them); their im2col shapes stay here, as bf16 training runs them.
 *
 * It first measures the CPU's FMA peak for AVX2 and AVX-512 (peak.h), then,
 * for each of those instruction sets this CPU runs, every shape on 1 and 2
 * threads: the median time over repeats, GFLOP/s (2*M*N*K / time) and the
 * share of that set's peak. Built as bench_gemm_blas (with
 * BENCH_WITH_BLAS) it also times OpenBLAS' cblas_sgemm on the same operands,
 * at the same thread count, and checks that both agree. The last lines sum
 * each column over one batch-32 training step.
 *
 * Usage: bench_gemm [seconds per measurement, default 0.25]
 * A benchmark, not a test: it prints figures and always exits 0 unless the
 * two GEMMs disagree or memory runs out.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"
#include "bench.h"
#include "gemm.h"
#include "peak.h"
#include "threads.h"

#ifdef BENCH_WITH_BLAS
#include <cblas.h>
#endif

typedef struct shape {
  const char *name;
  int ta, tb;
  int M, N, K; /* at batch 32 */
  int scale;   /* which dimension grows with the batch: 'M' or 'K' */
  int infer;   /* part of batch-1 inference */
} shape;

/* The model's GEMMs at batch 32. fwd: Y = X @ W; dW = X^T @ dY (ta);
 * dX = dY @ W^T (tb). conv1 needs no dX (its input is the image). */
static const shape shapes[] = {
    {"conv1 fwd", 0, 0, 21632, 32, 9, 'M', 1},   {"conv1 dW", 1, 0, 9, 32, 21632, 'K', 0},
    {"conv2 fwd", 0, 0, 3872, 64, 288, 'M', 1},  {"conv2 dW", 1, 0, 288, 64, 3872, 'K', 0},
    {"conv2 dX", 0, 1, 3872, 288, 64, 'M', 0},   {"conv3 fwd", 0, 0, 288, 64, 576, 'M', 1},
    {"conv3 dW", 1, 0, 576, 64, 288, 'K', 0},    {"conv3 dX", 0, 1, 288, 576, 64, 'M', 0},
    {"dense1 fwd", 0, 0, 32, 5000, 576, 'M', 1}, {"dense1 dW", 1, 0, 576, 5000, 32, 'K', 0},
    {"dense1 dX", 0, 1, 32, 576, 5000, 'M', 0},  {"dense2 fwd", 0, 0, 32, 10, 5000, 'M', 1},
    {"dense2 dW", 1, 0, 5000, 10, 32, 'K', 0},   {"dense2 dX", 0, 1, 32, 5000, 10, 'M', 0},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

typedef struct operands {
  int ta, tb, M, N, K, lda, ldb;
  float *A, *B, *C;
} operands;

#define BENCH_OURS 0
#define BENCH_BLAS 1

static void bench_call(int which, cnn_threads *pool, const operands *o) {
#ifdef BENCH_WITH_BLAS
  if (which == BENCH_BLAS) {
    cblas_sgemm(CblasRowMajor, o->ta ? CblasTrans : CblasNoTrans, o->tb ? CblasTrans : CblasNoTrans,
                o->M, o->N, o->K, 1.0f, o->A, o->lda, o->B, o->ldb, 0.0f, o->C, o->N);
    return;
  }
#endif
  (void)which;
  cnn_gemm(pool, o->ta, o->tb, o->M, o->N, o->K, 1.0f, o->A, o->lda, o->B, o->ldb, 0.0f, o->C,
           o->N);
}

/* Median seconds of one call, over repeats filling about `budget` seconds. */
static double bench_time(int which, cnn_threads *pool, const operands *o, double budget) {
  static double times[101];
  int n = 0;
  bench_call(which, pool, o); /* warm caches, pages and thread-local buffers */
  double start = bench_now();
  while (n < 101 && (n < 5 || bench_now() - start < budget)) {
    double t = bench_now();
    bench_call(which, pool, o);
    times[n++] = bench_now() - t;
  }
  qsort(times, (size_t)n, sizeof times[0], bench_cmp);
  return times[n / 2];
}

/* OpenBLAS' idle threads spin for a while (about 2^28 cycles) before they
 * sleep; timing cnn_gemm meanwhile would measure it against a busy core. */
static void bench_let_blas_sleep(void) {
  struct timespec t = {0, 300000000};
  nanosleep(&t, NULL);
}

/* The table of every shape on one instruction set: times, GFLOP/s and the
 * share of that set's measured FMA peak, on 1 and 2 threads (and OpenBLAS
 * beside it when with_blas). Returns nonzero when the two disagree. */
static int bench_isa(cnn_isa isa, double budget, const double peak[2], int with_blas) {
  int nimpl = with_blas ? 2 : 1;
  cnn_threads *pools[2] = {NULL, NULL};
  char err[CNN_ERRMAX];
  for (int t = 0; t < 2; t++) {
    if (cnn_threads_new(&pools[t], t + 1, err) != CNN_OK) {
      fprintf(stderr, "bench_gemm: %s\n", err);
      exit(1);
    }
    cnn_threads_set_isa(pools[t], isa);
  }
  printf(
      "\ncnn_gemm, %s kernel (%s)%s; times are medians in ms, rates in GFLOP/s and %% of the "
      "measured FMA peak\n",
      cnn_isa_name(isa), cnn_isa_gemm_kernel(isa), nimpl == 2 ? " vs OpenBLAS cblas_sgemm" : "");
  printf("%-12s %5s %5s %6s %6s %3s", "shape", "batch", "M", "N", "K", "op");
  for (int t = 1; t <= 2; t++) {
    printf(" | ours %dT ms  GF/s  peak", t);
    if (nimpl == 2) printf(" | blas %dT ms  GF/s", t);
  }
  printf("\n");

  double step[2][2] = {{0}}; /* [impl][threads-1], batch 32 only */
  int status = 0;
  const int batches[] = {32, 128, 1};
  for (int bi = 0; bi < 3; bi++) {
    int batch = batches[bi];
    for (int s = 0; s < NSHAPES; s++) {
      const shape *sh = &shapes[s];
      if (batch == 1 && !sh->infer) continue;
      operands o = {sh->ta, sh->tb, sh->M, sh->N, sh->K, 0, 0, NULL, NULL, NULL};
      if (sh->scale == 'M')
        o.M = (int)((long long)o.M * batch / 32);
      else
        o.K = o.K * batch / 32;
      o.lda = o.ta ? o.M : o.K;
      o.ldb = o.tb ? o.K : o.N;
      size_t na = (size_t)o.M * o.K, nb = (size_t)o.K * o.N, nc = (size_t)o.M * o.N;
      /* The engine's allocator, as the network's operands get (big blocks
       * on huge pages, see base.c). */
      o.A = cnn_malloc(na * sizeof(float));
      o.B = cnn_malloc(nb * sizeof(float));
      o.C = cnn_malloc(nc * sizeof(float));
      float *ours = malloc(nc * sizeof(float));
      if (!o.A || !o.B || !o.C || !ours) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
      }
      for (size_t i = 0; i < na; i++) o.A[i] = bench_rand();
      for (size_t i = 0; i < nb; i++) o.B[i] = bench_rand();

      printf("%-12s %5d %5d %6d %6d %s%s ", sh->name, batch, o.M, o.N, o.K, o.ta ? "T" : "N",
             o.tb ? "T" : "N");
      double gflop = 2.0 * o.M * o.N * o.K * 1e-9;
      for (int t = 0; t < 2; t++) {
#ifdef BENCH_WITH_BLAS
        openblas_set_num_threads(t + 1);
#endif
        double sec[2];
        for (int impl = 0; impl < nimpl; impl++) {
          sec[impl] = bench_time(impl, pools[t], &o, budget);
          printf(" | %11.3f %5.1f", sec[impl] * 1e3, gflop / sec[impl]);
          if (impl == BENCH_OURS) {
            if (peak[t] > 0)
              printf(" %4.0f%%", 100 * gflop / sec[impl] / peak[t]);
            else
              printf("     -");
          }
          if (batch == 32) step[impl][t] += sec[impl];
        }
        fflush(stdout);
        if (nimpl == 2) {
          /* Both sum K products of numbers in [-0.5, 0.5). */
          bench_call(BENCH_OURS, pools[t], &o);
          memcpy(ours, o.C, nc * sizeof(float));
          bench_call(BENCH_BLAS, pools[t], &o);
          double worst = 0;
          for (size_t i = 0; i < nc; i++) {
            double d = fabs((double)ours[i] - o.C[i]);
            if (!(d <= worst)) worst = d;
          }
          if (!(worst <= 1e-5 * o.K + 1e-5)) {
            fprintf(stderr, "\nbench_gemm: %s: ours and OpenBLAS differ by %g\n", sh->name, worst);
            status = 1;
          }
          bench_let_blas_sleep();
        }
      }
      printf("\n");
      cnn_free(o.A);
      cnn_free(o.B);
      cnn_free(o.C);
      free(ours);
    }
  }
  printf(
      "one training step at batch 32, GEMMs only (sum of the batch-32 medians; every\n"
      "convolution through im2col, where fp32 training runs the second by Winograd), %s:\n",
      cnn_isa_name(isa));
  for (int t = 0; t < 2; t++) {
    printf("  %d thread%s: ours %.2f ms", t + 1, t ? "s" : " ", step[BENCH_OURS][t] * 1e3);
    if (nimpl == 2) printf(", OpenBLAS %.2f ms", step[BENCH_BLAS][t] * 1e3);
    printf("\n");
  }
  cnn_threads_free(pools[0]);
  cnn_threads_free(pools[1]);
  return status;
}

int main(int argc, char **argv) {
  double budget = argc > 1 ? atof(argv[1]) : 0.25;
  if (!(budget > 0)) budget = 0.25;
  int with_blas = 0;
#ifdef BENCH_WITH_BLAS
  with_blas = 1;
#endif
  cnn_isa best = cnn_threads_isa(NULL);
  printf("cpu: %s\nfeatures: %s\n", cnn_isa_cpu_name(), cnn_isa_features());
  double peaks[CNN_ISA_COUNT][2] = {{0}};
  for (int i = CNN_ISA_AVX2; i <= CNN_ISA_AVX512; i++) {
    cnn_isa isa = (cnn_isa)i;
    if ((int)isa > (int)best) {
      printf("FMA peak, %s: not supported by this CPU\n", cnn_isa_name(isa));
      continue;
    }
    peaks[i][0] = peak_gflops(isa, 1);
    peaks[i][1] = peak_gflops(isa, 2);
    printf("FMA peak, %s: %.1f GFLOP/s on 1 thread, %.1f on 2\n", cnn_isa_name(isa), peaks[i][0],
           peaks[i][1]);
  }
  /* Each vector set this CPU runs (amx runs the avx512 products), the best
   * last, beside OpenBLAS when built with it. */
  int status = 0;
  int top = best > CNN_ISA_AVX512 ? (int)CNN_ISA_AVX512 : (int)best;
  for (int i = CNN_ISA_AVX2; i <= top; i++)
    status |= bench_isa((cnn_isa)i, budget, peaks[i], with_blas && i == top);
  if (top < CNN_ISA_AVX2) status |= bench_isa((cnn_isa)top, budget, peaks[0], with_blas);
  return status;
}
