/*
 * flatten.c - the flatten layer: NHWC is already Keras' flattened order, so
 * forward and backward are copies and the output shape is (1, 1, h*w*c).
 */
#include <string.h>

#include "layer.h"

static size_t size_of(cnn_shape s) { return (size_t)s.h * s.w * s.c; }

static int flatten_setup(cnn_layer *l, char *err) {
  (void)err;
  l->out = (cnn_shape){1, 1, l->in.h * l->in.w * l->in.c};
  l->nweights = l->nbias = l->work_per_sample = l->aux_per_sample = 0;
  return CNN_OK;
}

static void copy_forward(cnn_layer *l, const cnn_run *run, float *restrict y,
                         const float *restrict x, int n) {
  (void)run;
  memcpy(y, x, (size_t)n * size_of(l->in) * sizeof *y);
}

static void copy_backward(cnn_layer *l, const cnn_run *run, float *restrict dx,
                          const float *restrict dy, const float *restrict x, int n) {
  (void)run, (void)x;
  if (dx) memcpy(dx, dy, (size_t)n * size_of(l->in) * sizeof *dx);
}

const cnn_layer_ops cnn_flatten_ops = {"Flatten",    "flatten",     flatten_setup,
                                       copy_forward, copy_backward, 0};
