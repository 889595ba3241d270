/*
 * act.c - activation functions and their derivatives, applied by the network
 * after conv2d and dense (the "fused activation" of Keras layers).
 *
 * Forward writes y = f(z) (in place allowed); backward turns dy into dz using
 * the stored pre-activation z (and y for softmax). Definitions follow Keras 3:
 * leaky_relu slope 0.2 (alpha), elu alpha 1, exact (erf) gelu, swish =
 * x*sigmoid(x), hard_sigmoid = clip(x/6 + 1/2, 0, 1).
 */
#include <math.h>
#include <string.h>

#include "expr.h"
#include "layer.h"

static const char *const act_names[] = {
    [CNN_ACT_LINEAR] = "linear",
    [CNN_ACT_RELU] = "relu",
    [CNN_ACT_SIGMOID] = "sigmoid",
    [CNN_ACT_TANH] = "tanh",
    [CNN_ACT_SOFTMAX] = "softmax",
    [CNN_ACT_LEAKY_RELU] = "leaky_relu",
    [CNN_ACT_ELU] = "elu",
    [CNN_ACT_SELU] = "selu",
    [CNN_ACT_GELU] = "gelu",
    [CNN_ACT_SWISH] = "swish",
    [CNN_ACT_SOFTPLUS] = "softplus",
    [CNN_ACT_SOFTSIGN] = "softsign",
    [CNN_ACT_HARD_SIGMOID] = "hard_sigmoid",
    [CNN_ACT_EXPONENTIAL] = "exponential",
    [CNN_ACT_EXPR] = "expr",
};

const char *cnn_act_name(const cnn_act *a) {
  if (a->kind == CNN_ACT_EXPR && a->expr) return cnn_expr_source(a->expr);
  return act_names[a->kind];
}

#define SELU_ALPHA 1.6732632423543772f
#define SELU_SCALE 1.0507009873554805f

CNN_INLINE float sigmoidf(float z) {
  /* Never exponentiates a large positive number. */
  if (z >= 0) return 1.0f / (1.0f + expf(-z));
  float e = expf(z);
  return e / (1.0f + e);
}

CNN_INLINE void softmax_rows(float *y, const float *z, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; r++) {
    const float *zr = z + r * cols;
    float *yr = y + r * cols;
    float m = zr[0];
    for (size_t j = 1; j < cols; j++) m = zr[j] > m ? zr[j] : m;
    double sum = 0;
    for (size_t j = 0; j < cols; j++) sum += yr[j] = expf(zr[j] - m);
    float inv = (float)(1.0 / sum);
    for (size_t j = 0; j < cols; j++) yr[j] *= inv;
  }
}

CNN_INLINE void act_forward_body(const cnn_act *a, float *y, const float *z, size_t rows,
                                 size_t cols) {
  size_t n = rows * cols;
  float al = a->alpha;
  switch (a->kind) {
  case CNN_ACT_LINEAR:
    if (y != z) memcpy(y, z, n * sizeof *y);
    break;
  case CNN_ACT_RELU:
    for (size_t i = 0; i < n; i++) y[i] = z[i] > 0 ? z[i] : 0;
    break;
  case CNN_ACT_SIGMOID:
    for (size_t i = 0; i < n; i++) y[i] = sigmoidf(z[i]);
    break;
  case CNN_ACT_TANH:
    for (size_t i = 0; i < n; i++) y[i] = tanhf(z[i]);
    break;
  case CNN_ACT_SOFTMAX:
    softmax_rows(y, z, rows, cols);
    break;
  case CNN_ACT_LEAKY_RELU:
    for (size_t i = 0; i < n; i++) y[i] = z[i] > 0 ? z[i] : al * z[i];
    break;
  case CNN_ACT_ELU:
    for (size_t i = 0; i < n; i++) y[i] = z[i] > 0 ? z[i] : al * expm1f(z[i]);
    break;
  case CNN_ACT_SELU:
    for (size_t i = 0; i < n; i++)
      y[i] = SELU_SCALE * (z[i] > 0 ? z[i] : SELU_ALPHA * expm1f(z[i]));
    break;
  case CNN_ACT_GELU:
    for (size_t i = 0; i < n; i++) y[i] = 0.5f * z[i] * (1.0f + erff(z[i] * 0.70710678f));
    break;
  case CNN_ACT_SWISH:
    for (size_t i = 0; i < n; i++) y[i] = z[i] * sigmoidf(z[i]);
    break;
  case CNN_ACT_SOFTPLUS:
    for (size_t i = 0; i < n; i++) y[i] = log1pf(expf(-fabsf(z[i]))) + (z[i] > 0 ? z[i] : 0);
    break;
  case CNN_ACT_SOFTSIGN:
    for (size_t i = 0; i < n; i++) y[i] = z[i] / (1.0f + fabsf(z[i]));
    break;
  case CNN_ACT_HARD_SIGMOID:
    for (size_t i = 0; i < n; i++) y[i] = fminf(fmaxf(z[i] / 6.0f + 0.5f, 0.0f), 1.0f);
    break;
  case CNN_ACT_EXPONENTIAL:
    for (size_t i = 0; i < n; i++) y[i] = expf(z[i]);
    break;
  case CNN_ACT_EXPR:
    cnn_expr_eval(a->expr, y, NULL, z, n);
    break;
  }
}

CNN_INLINE void act_backward_body(const cnn_act *a, float *dz, const float *dy, const float *z,
                                  const float *y, size_t rows, size_t cols) {
  size_t n = rows * cols;
  float al = a->alpha;
  switch (a->kind) {
  case CNN_ACT_LINEAR:
    if (dz != dy) memcpy(dz, dy, n * sizeof *dz);
    break;
  case CNN_ACT_RELU: /* y > 0 exactly where z > 0 (NaN included): no z needed */
    for (size_t i = 0; i < n; i++) dz[i] = y[i] > 0 ? dy[i] : 0;
    break;
  case CNN_ACT_SIGMOID:
    for (size_t i = 0; i < n; i++) {
      float s = sigmoidf(z[i]);
      dz[i] = dy[i] * s * (1 - s);
    }
    break;
  case CNN_ACT_TANH:
    for (size_t i = 0; i < n; i++) {
      float t = tanhf(z[i]);
      dz[i] = dy[i] * (1 - t * t);
    }
    break;
  case CNN_ACT_SOFTMAX:
    /* dz_j = y_j (dy_j - sum_k dy_k y_k) */
    for (size_t r = 0; r < rows; r++) {
      const float *yr = y + r * cols, *dyr = dy + r * cols;
      float *dzr = dz + r * cols;
      double dot = 0;
      for (size_t j = 0; j < cols; j++) dot += (double)dyr[j] * yr[j];
      for (size_t j = 0; j < cols; j++) dzr[j] = yr[j] * (dyr[j] - (float)dot);
    }
    break;
  case CNN_ACT_LEAKY_RELU:
    for (size_t i = 0; i < n; i++) dz[i] = z[i] > 0 ? dy[i] : al * dy[i];
    break;
  case CNN_ACT_ELU:
    for (size_t i = 0; i < n; i++) dz[i] = z[i] > 0 ? dy[i] : dy[i] * al * expf(z[i]);
    break;
  case CNN_ACT_SELU:
    for (size_t i = 0; i < n; i++)
      dz[i] = dy[i] * SELU_SCALE * (z[i] > 0 ? 1.0f : SELU_ALPHA * expf(z[i]));
    break;
  case CNN_ACT_GELU:
    for (size_t i = 0; i < n; i++) {
      float x = z[i];
      float cdf = 0.5f * (1.0f + erff(x * 0.70710678f));
      float pdf = 0.39894228f * expf(-0.5f * x * x);
      dz[i] = dy[i] * (cdf + x * pdf);
    }
    break;
  case CNN_ACT_SWISH:
    for (size_t i = 0; i < n; i++) {
      float s = sigmoidf(z[i]);
      dz[i] = dy[i] * (s + z[i] * s * (1 - s));
    }
    break;
  case CNN_ACT_SOFTPLUS:
    for (size_t i = 0; i < n; i++) dz[i] = dy[i] * sigmoidf(z[i]);
    break;
  case CNN_ACT_SOFTSIGN:
    for (size_t i = 0; i < n; i++) {
      float d = 1.0f + fabsf(z[i]);
      dz[i] = dy[i] / (d * d);
    }
    break;
  case CNN_ACT_HARD_SIGMOID:
    for (size_t i = 0; i < n; i++) dz[i] = (z[i] > -3.0f && z[i] < 3.0f) ? dy[i] / 6.0f : 0;
    break;
  case CNN_ACT_EXPONENTIAL:
    for (size_t i = 0; i < n; i++) dz[i] = dy[i] * expf(z[i]);
    break;
  case CNN_ACT_EXPR: {
    /* Chunks on the stack: the formula gives value and derivative together. */
    float val[256], der[256];
    for (size_t i = 0; i < n; i += 256) {
      size_t m = n - i < 256 ? n - i : 256;
      cnn_expr_eval(a->expr, val, der, z + i, m);
      for (size_t j = 0; j < m; j++) dz[i + j] = dy[i + j] * der[j];
    }
    break;
  }
  }
}

/* Both compiled for each instruction set (isa.h): the loops without calls
 * into libm (relu, leaky_relu, softsign, hard_sigmoid, the derivatives
 * that multiply) vectorise at each width. */
CNN_ISA_CLONES(act_forward, (const cnn_act *a, float *y, const float *z, size_t rows, size_t cols),
               (a, y, z, rows, cols))
CNN_ISA_CLONES(act_backward,
               (const cnn_act *a, float *dz, const float *dy, const float *z, const float *y,
                size_t rows, size_t cols),
               (a, dz, dy, z, y, rows, cols))

/* Values per task when a pool shares the work: 128 KB of each array, enough
 * to pay for handing out a task. Tasks take whole rows (softmax needs
 * them); each value's arithmetic does not depend on the split. */
#define ACT_TASK 32768

typedef struct act_job {
  const cnn_act *a;
  float *out;              /* y forward, dz backward */
  const float *in, *z, *y; /* z forward, dy backward; z and y backward only */
  size_t rows, cols;
  cnn_isa isa;
  int backward;
} act_job;

/* Rows r0..r1. */
static void act_rows(void *ctx, size_t r0, size_t r1, int thread) {
  (void)thread;
  const act_job *j = ctx;
  size_t off = r0 * j->cols;
  if (j->backward)
    act_backward_isa(j->isa, j->a, j->out + off, j->in + off, j->z ? j->z + off : NULL, j->y + off,
                     r1 - r0, j->cols);
  else
    act_forward_isa(j->isa, j->a, j->out + off, j->in + off, r1 - r0, j->cols);
}

static void act_run(cnn_threads *pool, act_job *j) {
  j->isa = cnn_threads_isa(pool);
  cnn_threads_for(pool, j->rows, j->cols >= ACT_TASK ? 1 : ACT_TASK / j->cols, act_rows, j);
}

void cnn_act_forward(cnn_threads *pool, const cnn_act *a, float *y, const float *z, size_t rows,
                     size_t cols) {
  act_job j = {a, y, z, NULL, NULL, rows, cols, 0, 0};
  if (rows && cols) act_run(pool, &j);
}

void cnn_act_backward(cnn_threads *pool, const cnn_act *a, float *dz, const float *dy,
                      const float *z, const float *y, size_t rows, size_t cols) {
  act_job j = {a, dz, dy, z, y, rows, cols, 0, 1};
  if (rows && cols) act_run(pool, &j);
}
