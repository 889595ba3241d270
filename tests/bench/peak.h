/*
 * peak.h - the machine's measured single-precision FMA peak, per
 * instruction set, for the benchmarks to state their figures as a share of
 * it: 12 independent chains of vector FMAs (enough to cover the FMA latency
 * on two ports) on 1 and on 2 threads, median of 5 runs of about 50 ms.
 * A measurement, not the data sheet's number: it includes the clock the
 * CPU actually runs at under this load (AVX-512 may lower it).
 */
#ifndef CNN_BENCH_PEAK_H
#define CNN_BENCH_PEAK_H

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "isa.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define PEAK_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* Returns a sum that depends on every chain, so nothing is optimised away. */
__attribute__((target("avx2,fma"))) static float peak_chains_avx2(long iters) {
#define PEAK_DECL(i) __m256 c##i = _mm256_set1_ps(1.0f + (i)*1e-3f);
  PEAK_CHAINS(PEAK_DECL)
  const __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
  for (long n = 0; n < iters; n++) {
#define PEAK_FMA(i) c##i = _mm256_fmadd_ps(c##i, m, a);
    PEAK_CHAINS(PEAK_FMA)
  }
  __m256 s = _mm256_setzero_ps();
#define PEAK_SUM(i) s = _mm256_add_ps(s, c##i);
  PEAK_CHAINS(PEAK_SUM)
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

__attribute__((target("avx2,fma,avx512f"))) static float peak_chains_avx512(long iters) {
#undef PEAK_DECL
#undef PEAK_FMA
#undef PEAK_SUM
#define PEAK_DECL(i) __m512 c##i = _mm512_set1_ps(1.0f + (i)*1e-3f);
  PEAK_CHAINS(PEAK_DECL)
  const __m512 m = _mm512_set1_ps(0.9999999f), a = _mm512_set1_ps(1e-7f);
  for (long n = 0; n < iters; n++) {
#define PEAK_FMA(i) c##i = _mm512_fmadd_ps(c##i, m, a);
    PEAK_CHAINS(PEAK_FMA)
  }
  __m512 s = _mm512_setzero_ps();
#define PEAK_SUM(i) s = _mm512_add_ps(s, c##i);
  PEAK_CHAINS(PEAK_SUM)
  return _mm512_reduce_add_ps(s);
}
#undef PEAK_DECL
#undef PEAK_FMA
#undef PEAK_SUM
#endif

typedef struct peak_job {
  cnn_isa isa;
  long iters;
  volatile float sink;
} peak_job;

static void *peak_thread(void *arg) {
  peak_job *j = arg;
#if defined(__x86_64__)
  j->sink = j->isa >= CNN_ISA_AVX512 ? peak_chains_avx512(j->iters) : peak_chains_avx2(j->iters);
#endif
  return NULL;
}

/* GFLOP/s of `threads` threads (1 or 2) running FMAs of isa (avx2 or
 * avx512); 0 where this CPU cannot run them. */
static double peak_gflops(cnn_isa isa, int threads) {
  cnn_isa got;
  if (isa < CNN_ISA_AVX2 || cnn_isa_parse(cnn_isa_name(isa), &got, NULL) != 0) return 0;
  int lanes = isa >= CNN_ISA_AVX512 ? 16 : 8;
  long iters = 4000000;
  double rates[5];
  for (int r = 0; r < 5; r++) {
    peak_job jobs[2] = {{isa, iters, 0}, {isa, iters, 0}};
    pthread_t th;
    double t = bench_now();
    int started = threads > 1 && pthread_create(&th, NULL, peak_thread, &jobs[1]) == 0;
    peak_thread(&jobs[0]);
    if (started) pthread_join(th, NULL);
    t = bench_now() - t;
    rates[r] = (started ? 2.0 : 1.0) * iters * 12.0 * lanes * 2.0 / t * 1e-9;
  }
  qsort(rates, 5, sizeof rates[0], bench_cmp);
  return rates[2];
}

#endif
