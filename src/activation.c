/*
 * activation.c - the activation layer, Keras' Activation: y = f(x) on its
 * own, for blocks like conv2d (linear, no bias) -> batchnorm -> relu, where
 * the activation comes after the normalisation.
 *
 * The layer itself is the identity; the network applies the activation after
 * it exactly as after conv2d and dense (keeping z for backward when the
 * derivative needs it, in place at inference), so every activation,
 * custom formulas too, works here with no code of its own. A ReLU is fused
 * into the copy (run->relu), which then costs one pass and keeps nothing.
 */
#include <string.h>

#include "layer.h"

static size_t size_of(cnn_shape s) { return (size_t)s.h * s.w * s.c; }

static int act_setup(cnn_layer *l, char *err) {
  (void)err;
  l->out = l->in;
  l->nweights = l->nbias = l->work_per_sample = l->aux_per_sample = 0;
  return CNN_OK;
}

static void act_layer_forward(cnn_layer *l, const cnn_run *run, float *restrict y,
                              const float *restrict x, int n) {
  size_t m = (size_t)n * size_of(l->in);
  if (!run->relu) {
    memcpy(y, x, m * sizeof *y);
    return;
  }
  for (size_t i = 0; i < m; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
}

/* dy already carries f'(z): what is left is the identity's gradient. */
static void act_layer_backward(cnn_layer *l, const cnn_run *run, float *restrict dx,
                               const float *restrict dy, const float *restrict x, int n) {
  (void)run, (void)x;
  if (dx) memcpy(dx, dy, (size_t)n * size_of(l->in) * sizeof *dx);
}

const cnn_layer_ops cnn_activation_ops = {"Activation",      "activation",       act_setup,
                                          act_layer_forward, act_layer_backward, 1};
