/*
 * batchnorm.c - batch normalisation over the last axis, Keras 3's
 * BatchNormalization (axis -1): the channels of an NHWC image, the features
 * of a vector.
 *
 *   x [n, H, W, C] read as [M, C], M = n*H*W rows
 *   training   mean = sum_r x[r] / M,  var = sum_r (x[r] - mean)^2 / M (biased)
 *              moving = moving * momentum + batch * (1 - momentum), the biased
 *              variance into the moving one too (Keras 3; Keras 2's fused
 *              kernel corrected it by M / (M - 1))
 *   inference  mean, var = the moving statistics
 *   y = (x - mean) * gamma * inv + beta,  inv = 1 / sqrt(var + epsilon)
 *       (gamma 1 without scale, beta 0 without center)
 *   backward (training; xh = (x - mean) * inv):
 *     dbeta = sum_r dy,  dgamma = sum_r dy * xh
 *     dx = gamma * inv * (dy - dbeta / M - xh * dgamma / M)
 * The exact gradient of the batch statistics: every x moves the mean and
 * variance the whole batch is normalised with.
 *
 * Buffers: l->w gamma [C], l->b beta [C] (trainable); l->state moving mean
 * [C] then moving variance [C] (non-trainable, updated here by a training
 * forward); l->keep the batch's mean [C] and inv [C] for backward
 * (keep_fixed: they do not grow with the batch); run->work per-channel
 * coefficients [5C].
 * Sums run in double, each channel's in one task in row order (tasks over
 * blocks of channels), so the statistics, the moving ones and the gradients
 * do not depend on the thread count; the elementwise passes run one image per
 * task, compiled for each instruction set (isa.h).
 */
#include <math.h>
#include <string.h>

#include "layer.h"

#define BN_BLOCK 8 /* channels per statistics task */

static int bn_setup(cnn_layer *l, char *err) {
  (void)err;
  size_t c = (size_t)l->in.c;
  l->out = l->in;
  l->nweights = l->spec->scale ? c : 0;
  l->nbias = l->spec->center ? c : 0;
  l->nstate = 2 * c;
  l->work_per_sample = 5 * c;
  l->aux_per_sample = 0;
  l->keep_per_sample = 0;
  l->keep_fixed = 2 * c;
  return CNN_OK;
}

typedef struct {
  const cnn_layer *l;
  float *out;      /* y or dx */
  const float *x;  /* the layer's input */
  const float *dy; /* backward */
  float *work;     /* [5C]: mean, gamma * inv, beta; backward: mean, inv, gamma * inv,
                      dbeta / M, dgamma / M */
  size_t rows;     /* M */
  cnn_isa isa;     /* of the run's pool */
} bn_task;

/* Training statistics of channels [c0, c1): mean and inv into keep, the
 * forward's coefficients into work, the moving statistics updated. */
static void stats_task(void *ctx, int task, int thread) {
  (void)thread;
  const bn_task *t = ctx;
  const cnn_layer *l = t->l;
  size_t C = (size_t)l->in.c, c0 = (size_t)task * BN_BLOCK;
  size_t c1 = c0 + BN_BLOCK < C ? c0 + BN_BLOCK : C, k = c1 - c0;
  double sum[BN_BLOCK] = {0}, sq[BN_BLOCK] = {0}, mean[BN_BLOCK];
  for (size_t r = 0; r < t->rows; r++)
    for (size_t j = 0; j < k; j++) sum[j] += t->x[r * C + c0 + j];
  for (size_t j = 0; j < k; j++) mean[j] = sum[j] / (double)t->rows;
  /* Two passes: the mean first, so the variance of values far from zero
   * does not cancel away. */
  for (size_t r = 0; r < t->rows; r++)
    for (size_t j = 0; j < k; j++) {
      double d = t->x[r * C + c0 + j] - mean[j];
      sq[j] += d * d;
    }
  float mom = l->spec->momentum;
  for (size_t j = 0; j < k; j++) {
    size_t c = c0 + j;
    double var = sq[j] / (double)t->rows;
    double inv = 1.0 / sqrt(var + l->spec->epsilon);
    l->keep[c] = (float)mean[j];
    l->keep[C + c] = (float)inv;
    t->work[c] = (float)mean[j];
    t->work[C + c] = (float)((l->nweights ? l->w[c] : 1.0) * inv);
    t->work[2 * C + c] = l->nbias ? l->b[c] : 0.0f;
    /* In float, as Keras assigns its float32 variables. */
    l->state[c] = l->state[c] * mom + (float)mean[j] * (1.0f - mom);
    l->state[C + c] = l->state[C + c] * mom + (float)var * (1.0f - mom);
  }
}

/* y = (x - mean) * (gamma * inv) + beta over one image's rows. */
CNN_INLINE void normalise_body(const bn_task *t, int i) {
  const cnn_layer *l = t->l;
  size_t C = (size_t)l->in.c, m = (size_t)l->in.h * l->in.w;
  const float *restrict mean = t->work, *restrict a = t->work + C, *restrict beta = t->work + 2 * C;
  const float *restrict x = t->x + (size_t)i * m * C;
  float *restrict y = t->out + (size_t)i * m * C;
  for (size_t r = 0; r < m; r++)
    for (size_t c = 0; c < C; c++) y[r * C + c] = (x[r * C + c] - mean[c]) * a[c] + beta[c];
}

CNN_ISA_CLONES(normalise, (const bn_task *t, int i), (t, i))

static void normalise_task(void *ctx, int i, int thread) {
  (void)thread;
  const bn_task *t = ctx;
  normalise_isa(t->isa, t, i);
}

static void bn_forward(cnn_layer *l, const cnn_run *run, float *restrict y, const float *restrict x,
                       int n) {
  size_t C = (size_t)l->in.c;
  bn_task t = {l, y, x, NULL, run->work, (size_t)n * l->in.h * l->in.w, cnn_threads_isa(run->pool)};
  if (run->training) {
    cnn_threads_run(run->pool, stats_task, &t, (int)((C + BN_BLOCK - 1) / BN_BLOCK));
  } else {
    for (size_t c = 0; c < C; c++) {
      double inv = 1.0 / sqrt((double)l->state[C + c] + l->spec->epsilon);
      t.work[c] = l->state[c];
      t.work[C + c] = (float)((l->nweights ? l->w[c] : 1.0) * inv);
      t.work[2 * C + c] = l->nbias ? l->b[c] : 0.0f;
    }
  }
  cnn_threads_run(run->pool, normalise_task, &t, n);
}

/* dgamma, dbeta of channels [c0, c1), and dx's coefficients into work. */
static void grad_task(void *ctx, int task, int thread) {
  (void)thread;
  const bn_task *t = ctx;
  const cnn_layer *l = t->l;
  size_t C = (size_t)l->in.c, c0 = (size_t)task * BN_BLOCK;
  size_t c1 = c0 + BN_BLOCK < C ? c0 + BN_BLOCK : C, k = c1 - c0;
  const float *mean = l->keep, *inv = l->keep + C;
  double sdy[BN_BLOCK] = {0}, sdyxh[BN_BLOCK] = {0};
  for (size_t r = 0; r < t->rows; r++)
    for (size_t j = 0; j < k; j++) {
      size_t c = c0 + j;
      float xh = (t->x[r * C + c] - mean[c]) * inv[c];
      sdy[j] += t->dy[r * C + c];
      sdyxh[j] += (double)t->dy[r * C + c] * xh;
    }
  for (size_t j = 0; j < k; j++) {
    size_t c = c0 + j;
    if (l->nweights) l->dw[c] = (float)sdyxh[j];
    if (l->nbias) l->db[c] = (float)sdy[j];
    t->work[c] = mean[c];
    t->work[C + c] = inv[c];
    t->work[2 * C + c] = (l->nweights ? l->w[c] : 1.0f) * inv[c];
    t->work[3 * C + c] = (float)(sdy[j] / (double)t->rows);
    t->work[4 * C + c] = (float)(sdyxh[j] / (double)t->rows);
  }
}

/* dx = gamma * inv * (dy - mean(dy) - xh * mean(dy * xh)) over one image. */
CNN_INLINE void dx_body(const bn_task *t, int i) {
  const cnn_layer *l = t->l;
  size_t C = (size_t)l->in.c, m = (size_t)l->in.h * l->in.w;
  const float *restrict mean = t->work, *restrict inv = t->work + C, *restrict k = t->work + 2 * C;
  const float *restrict mdy = t->work + 3 * C, *restrict mdyxh = t->work + 4 * C;
  const float *restrict x = t->x + (size_t)i * m * C, *restrict dy = t->dy + (size_t)i * m * C;
  float *restrict dx = t->out + (size_t)i * m * C;
  for (size_t r = 0; r < m; r++)
    for (size_t c = 0; c < C; c++) {
      float xh = (x[r * C + c] - mean[c]) * inv[c];
      dx[r * C + c] = k[c] * (dy[r * C + c] - mdy[c] - xh * mdyxh[c]);
    }
}

CNN_ISA_CLONES(dx, (const bn_task *t, int i), (t, i))

static void dx_task(void *ctx, int i, int thread) {
  (void)thread;
  const bn_task *t = ctx;
  dx_isa(t->isa, t, i);
}

static void bn_backward(cnn_layer *l, const cnn_run *run, float *restrict dx,
                        const float *restrict dy, const float *restrict x, int n) {
  size_t C = (size_t)l->in.c;
  bn_task t = {l, dx, x, dy, run->work, (size_t)n * l->in.h * l->in.w, cnn_threads_isa(run->pool)};
  cnn_threads_run(run->pool, grad_task, &t, (int)((C + BN_BLOCK - 1) / BN_BLOCK));
  if (dx) cnn_threads_run(run->pool, dx_task, &t, n);
}

const cnn_layer_ops cnn_batchnorm_ops = {"BatchNormalization", "batch_normalization", bn_setup,
                                         bn_forward,           bn_backward,           0};
