/*
 * layer.c - what several layers share: the sliding-window arithmetic of conv
 * and pooling (Keras' rules), and the bias gradient of conv2d and dense (their
 * forward bias is part of the product: cnn_gemm_bias).
 */
#include <string.h>

#include "layer.h"

int cnn_window(int in, int k, int s, cnn_padding pad, int *pad_before) {
  if (pad == CNN_PAD_SAME) {
    int out = (in + s - 1) / s;
    long total = (long)(out - 1) * s + k - in;
    if (total < 0) total = 0;
    *pad_before = (int)(total / 2); /* the odd pixel goes after, as in TF */
    return out;
  }
  *pad_before = 0;
  return in < k ? 0 : (in - k) / s + 1;
}

/* Columns per task when a pool shares the bias gradient: a multiple of a
 * 64-byte line, so that the tasks of a narrow dy (a convolution's 32 or 64
 * channels) each read their own lines of every row. */
#define BIAS_COLS 16
#define BIAS_MIN_VALUES 32768 /* below this one thread does it all */

typedef struct bias_job {
  float *db;
  const float *dy;
  size_t rows, cols;
} bias_job;

/* Each column summed over the rows in order, whoever sums it. */
static void bias_cols(float *restrict db, const float *restrict dy, size_t rows, size_t cols,
                      size_t j0, size_t j1) {
  memset(db + j0, 0, (j1 - j0) * sizeof *db);
  for (size_t r = 0; r < rows; r++)
    for (size_t j = j0; j < j1; j++) db[j] += dy[r * cols + j];
}

static void bias_range(void *ctx, size_t j0, size_t j1, int thread) {
  (void)thread;
  const bias_job *b = ctx;
  bias_cols(b->db, b->dy, b->rows, b->cols, j0, j1);
}

void cnn_bias_grad(cnn_threads *pool, float *db, const float *dy, size_t rows, size_t cols) {
  size_t threads = (size_t)cnn_threads_size(pool), per = cols;
  if (threads > 1 && rows * cols >= BIAS_MIN_VALUES && cols >= 2 * BIAS_COLS) {
    /* About two tasks a thread, in whole lines. */
    per = (cols + 2 * threads - 1) / (2 * threads);
    per = (per + BIAS_COLS - 1) / BIAS_COLS * BIAS_COLS;
  }
  bias_job b = {db, dy, rows, cols};
  cnn_threads_for(pool, cols, per, bias_range, &b);
}
