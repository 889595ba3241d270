/*
 * bench.h - what the C benchmarks share: a monotonic clock, a comparison
 * for qsort over doubles (medians), and random operands in [-0.5, 0.5).
 */
#ifndef CNN_BENCH_H
#define CNN_BENCH_H

#include <time.h>

static double bench_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int bench_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static unsigned long long bench_rng = 88172645463325252ull;
static float bench_rand(void) {
  bench_rng ^= bench_rng << 13;
  bench_rng ^= bench_rng >> 7;
  bench_rng ^= bench_rng << 17;
  return (float)((bench_rng >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

#endif
