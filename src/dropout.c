/*
 * dropout.c - inverted dropout, training only: each value is kept with
 * probability 1 - rate and scaled by 1 / (1 - rate), so inference is the
 * identity. The mask (0 or the scale, per value) is kept for backward; a
 * frozen network reuses it, which is what the gradient check needs.
 */
#include <string.h>

#include "layer.h"

static size_t size_of(cnn_shape s) { return (size_t)s.h * s.w * s.c; }

static int dropout_setup(cnn_layer *l, char *err) {
  (void)err;
  l->out = l->in;
  l->nweights = l->nbias = l->work_per_sample = 0;
  l->aux_per_sample = (size_of(l->in) * sizeof(float) + 63) / 64 * 64;
  return CNN_OK;
}

static float *mask_of(const cnn_layer *l, int i) {
  return (float *)(l->aux + (size_t)i * l->aux_per_sample);
}

static void dropout_forward(cnn_layer *l, const cnn_run *run, float *restrict y,
                            const float *restrict x, int n) {
  size_t m = size_of(l->in);
  float rate = l->spec->rate;
  if (!run->training || rate <= 0) {
    memcpy(y, x, (size_t)n * m * sizeof *y);
    return;
  }
  float scale = 1.0f / (1.0f - rate);
  for (int i = 0; i < n; i++) {
    float *mask = mask_of(l, i);
    if (!run->freeze)
      for (size_t j = 0; j < m; j++) mask[j] = cnn_rng_float(run->rng) < rate ? 0.0f : scale;
    for (size_t j = 0; j < m; j++) y[i * m + j] = x[i * m + j] * mask[j];
  }
}

static void dropout_backward(cnn_layer *l, const cnn_run *run, float *restrict dx,
                             const float *restrict dy, const float *restrict x, int n) {
  (void)x;
  if (!dx) return;
  size_t m = size_of(l->in);
  if (!run->training || l->spec->rate <= 0) {
    memcpy(dx, dy, (size_t)n * m * sizeof *dx);
    return;
  }
  for (int i = 0; i < n; i++) {
    const float *mask = mask_of(l, i);
    for (size_t j = 0; j < m; j++) dx[i * m + j] = dy[i * m + j] * mask[j];
  }
}

const cnn_layer_ops cnn_dropout_ops = {"Dropout",       "dropout",        dropout_setup,
                                       dropout_forward, dropout_backward, 0};
