/*
 * bench_predict.c - inference of the notebook's model in the engine alone
 * (no SQLite): one image per call, as scalar cnn_predict does, and batches,
 * as cnn_predictions does, with 1 and 2 threads, in fp32 and (where the
 * CPU has a bf16 kernel) in bf16 (cnn_net_set_bf16_inference).
 *
 * Prints the median time per call over repeats, µs per image, and the best
 * (on a shared machine, the least disturbed figure). Images are
 * pseudo-random bytes: inference time does not depend on the pixels.
 * Usage: bench_predict [calls per scalar measurement, default 2000]
 * A benchmark, not a test: it prints figures and exits 0 unless memory runs out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cnn.h"
#include "rng.h"

#define IMAGES 1024
#define CNN_MNIST_BYTES 784 /* 28 x 28 x 1 bytes */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median over `reps` of the time of one call predicting n images; *best
 * gets the fastest (on a shared machine, the figure least disturbed). */
static double median_call(cnn_net *net, float *probs, const uint8_t *images, int n, int reps,
                          double *best) {
  double *t = malloc(sizeof *t * (size_t)reps);
  char err[CNN_ERRMAX];
  if (!t) return -1;
  for (int r = 0; r < reps; r++) {
    const uint8_t *img = images + (size_t)(n == 1 ? r % IMAGES : 0) * CNN_MNIST_BYTES;
    double t0 = now();
    if (cnn_net_predict(net, probs, img, (size_t)n, err)) {
      fprintf(stderr, "bench_predict: %s\n", err);
      exit(1);
    }
    t[r] = now() - t0;
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_double);
  double m = t[reps / 2];
  *best = t[0];
  free(t);
  return m;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 2000;
  char err[CNN_ERRMAX];
  cnn_spec spec;
  cnn_net *net = NULL;
  uint8_t *images = malloc((size_t)IMAGES * CNN_MNIST_BYTES);
  float *probs = malloc(sizeof(float) * IMAGES * 10);
  if (reps < 1 || !images || !probs || cnn_spec_parse(&spec, NULL, err) ||
      cnn_net_new(&net, &spec, err)) {
    fprintf(stderr, "bench_predict: setup failed\n");
    return 1;
  }
  cnn_net_init(net, 1);
  cnn_rng rng;
  cnn_rng_seed(&rng, 7);
  for (size_t i = 0; i < (size_t)IMAGES * CNN_MNIST_BYTES; i++)
    images[i] = (uint8_t)(cnn_rng_next(&rng) >> 56);

  printf("%-9s %-8s %-8s %10s %10s %10s\n", "precision", "threads", "images", "ms/call", "us/image",
         "best us/im");
  for (int run = 0; run < 4; run++) {
    int threads = 1 + run % 2, bf16 = run / 2;
    cnn_threads *pool = NULL;
    if (cnn_threads_new(&pool, threads, err)) return 1;
    cnn_net_set_pool(net, pool);
    if (cnn_net_set_bf16_inference(net, bf16, err)) {
      printf("bf16: %s\n", err);
      cnn_net_set_pool(net, NULL);
      cnn_threads_free(pool);
      break;
    }
    static const int sizes[] = {1, 128, IMAGES};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      int n = sizes[s], r = n == 1 ? reps : n == 128 ? 50 : 10;
      double best;
      median_call(net, probs, images, n, n == 1 ? 50 : 2, &best); /* warm caches and arenas */
      double t = median_call(net, probs, images, n, r, &best);
      printf("%-9s %-8d %-8d %10.3f %10.1f %10.1f\n", bf16 ? "bf16" : "fp32", threads, n, t * 1e3,
             t * 1e6 / n, best * 1e6 / n);
    }
    cnn_net_set_pool(net, NULL);
    cnn_threads_free(pool);
  }
  cnn_net_free(net);
  free(images);
  free(probs);
  return 0;
}
